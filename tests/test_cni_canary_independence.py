"""Issue 17, item 1: each CNI canary stands alone. A canary whose pods cannot run (an SCTP server without
the sctp kernel module crash-loops; a probe image the mirror lacks) is ``not checked`` with one line
saying why, within seconds; the other canaries go on and get their verdicts."""

from __future__ import annotations

from conformance.backends.cni_profiles import parse_profile
from conformance.backends.model import ModelBackend
from conformance.backends.model_faults import parse_faults
from conformance.suite import cni_features as cf
from conformance.suite.cni_canaries import BY_FEATURE, CANARIES
from tests.test_suite_plugin import run_suite

TIMING = {"probe_timeout_s": 2.0, "deadline_s": 30.0, "ready_timeout_s": 180.0, "retry_interval_s": 1.0}
SCTP_REASON = "the SCTP server cannot listen: protocol not supported; the nodes need the sctp kernel module"


def _statuses(report: cf.CniFeatureReport) -> dict[str, str]:
    return {f: r.status for f, r in report.results.items()}


def test_without_sctp_on_weave_every_other_canary_gets_its_verdict_in_under_a_minute():
    backend = ModelBackend(cni=parse_profile("weave-npc"), faults=parse_faults("no-sctp"))
    report = cf.run_canaries(backend, CANARIES, cf.Layout("abcdef12"), image="agnhost", **TIMING)
    today = cf.run_canaries(
        ModelBackend(cni=parse_profile("weave-npc")),
        CANARIES,
        cf.Layout("abcdef12"),
        image="agnhost",
        **TIMING,
    )
    statuses = _statuses(report)
    assert statuses.pop("named-port") == statuses.pop("end-port") == cf.NOT_ENFORCED, report.lines()
    assert statuses.pop("node-traffic") == today.status("node-traffic")
    assert report.results["sctp"].line() == f"sctp: not checked ({SCTP_REASON})"
    statuses.pop("sctp")
    assert len(statuses) == 12 and set(statuses.values()) == {cf.ENFORCED}, report.lines()
    assert report.seconds < 60, report.cost()
    assert not [n for n, p in backend.namespace_phases().items() if n.startswith("cf-") and p == "Active"]


def test_a_canary_that_cannot_start_does_not_delay_the_others():
    faulty = ModelBackend(faults=parse_faults("no-sctp"))
    report = cf.run_canaries(faulty, CANARIES, cf.Layout("abcdef12"), image="agnhost", **TIMING)
    without = [c for c in CANARIES if c.feature != "sctp"]
    alone = cf.run_canaries(ModelBackend(), without, cf.Layout("abcdef12"), image="agnhost", **TIMING)
    assert report.status("sctp") == cf.NOT_CHECKED
    assert report.seconds <= alone.seconds + 5, (report.cost(), alone.cost())


def test_an_image_the_mirror_lacks_is_one_line_naming_the_image_and_the_pull_error():
    image = "mirror.local/e2e-test-images/agnhost:2.52"
    backend = ModelBackend(faults=parse_faults(f"no-image={image}"))
    canaries = [BY_FEATURE["numbered-port"], BY_FEATURE["pod-selector"]]
    report = cf.run_canaries(backend, canaries, cf.Layout("abcdef12"), image=image, **TIMING)
    for feature in ("numbered-port", "pod-selector"):
        result = report.results[feature]
        assert result.status == cf.NOT_CHECKED
        assert result.reason.startswith(f"cannot pull image '{image}' (")
        assert result.reason.endswith(f"{image}: not found") and "\n" not in result.reason
    assert report.seconds < 30, report.cost()


def test_start_then_finish_is_run_canaries_in_two_steps():
    canaries = [BY_FEATURE["numbered-port"], BY_FEATURE["sctp"]]
    backend = ModelBackend(faults=parse_faults("no-sctp"))
    run = cf.start_canaries(backend, canaries, cf.Layout("abcdef12"), image="agnhost")
    assert {n for n in backend.namespace_phases() if n.startswith("cf-")}, "applied, not waited for"
    report = run.finish(**TIMING)
    assert _statuses(report) == {"numbered-port": cf.ENFORCED, "sctp": cf.NOT_CHECKED}


def test_the_suite_reports_sctp_not_checked_and_the_other_canaries_on_weave():
    run = run_suite(
        "--backend",
        "model",
        "--model-cni",
        "weave-npc",
        "--model-faults",
        "no-sctp",
        "--cni-features",
        "all",
        "-k",
        "not_listed",
    )
    assert run.returncode == 0, run.output
    assert f"  sctp: not checked ({SCTP_REASON})" in run.output
    assert "  numbered-port: enforced" in run.output and "  named-port: not enforced" in run.output


def test_the_server_error_is_read_from_agnhost_log_lines_old_and_new() -> None:
    from conformance.suite.cni_features import server_error

    live = "I1205 08:27:33.509521       1 log.go:245] Failed to listen SCTP. error:protocol not supported"
    assert server_error(live) == "protocol not supported"  # agnhost 2.56 on kind (issue 22)
    assert server_error("Failed to listen: listen sctp: protocol not supported") == "protocol not supported"
    assert server_error("exec format error") == "exec format error"
