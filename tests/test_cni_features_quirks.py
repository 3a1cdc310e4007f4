"""CNI quirks caught by the feature canaries, on the model backend with each CNI quirk profile.

Each quirk is detected by exactly the canary of its feature and by no other; the suite fails the session
naming the policy and the feature; a mismatch names the features of its rules and the canary's result;
``verify`` reports a "CNI features" section and exits 1.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import yaml

from conformance.backends.cni_profiles import parse_profile
from conformance.backends.model import ModelBackend
from conformance.gim.values import NetpolValues
from conformance.suite import cni_features as cf
from conformance.suite.cni_canaries import CANARIES
from conformance.suite.probe_namespaces import ProbeNamespaces
from conformance.suite.scenario import Scenario, Timing
from conformance.suite.topology import Topology
from conformance.verify.analysis import analyse
from conformance.verify.discovery import view_from_objects
from conformance.verify.live import LiveOptions, probe_cluster
from conformance.verify.report_html import to_html
from conformance.verify.report_json import to_json
from conformance.verify.report_junit import to_junit
from conformance.verify.report_text import render_text
from tests import verify_snapshots as snap
from tests.test_suite_plugin import run_suite
from tests.test_verify_cli import ModelCluster

TIMING = {"probe_timeout_s": 2.0, "deadline_s": 30.0, "ready_timeout_s": 180.0, "retry_interval_s": 1.0}

# profile -> the canaries that must find it
QUIRKS = {
    "drops": set(),
    "rejects": set(),
    "ignores-named-ports": {"named-port"},
    "ignores-endport": {"end-port"},
    "node-unfiltered": {"node-traffic"},
    "weave-npc": {"named-port", "end-port", "node-traffic"},
    "rejects,ignores-endport": {"end-port"},
}


def allow_web(port: str | int = "http") -> dict:
    """An extraPolicies entry: every namespace may reach nginx on its http port."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-web"},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/component": "nginx"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": port}]}],
        },
    }


def canaries(profile: str, which=CANARIES, **kw) -> tuple[ModelBackend, cf.CniFeatureReport]:
    backend = ModelBackend(cni=parse_profile(profile))
    report = cf.run_canaries(backend, which, cf.Layout("abcdef12"), image="agnhost", **TIMING, **kw)
    return backend, report


@pytest.mark.parametrize("profile", list(QUIRKS))
def test_each_quirk_is_found_by_exactly_the_canary_of_its_feature(profile):
    _, report = canaries(profile)
    not_enforced = {f for f, r in report.results.items() if r.status == cf.NOT_ENFORCED}
    assert not_enforced == QUIRKS[profile], report.lines()
    assert all(r.status == cf.ENFORCED for f, r in report.results.items() if f not in QUIRKS[profile])
    for feature in QUIRKS[profile]:
        assert report.results[feature].mismatches, "a canary not enforced lists its mismatching flows"


def test_named_ports_ignored_show_the_port_the_skipped_policy_should_have_closed():
    _, report = canaries("ignores-named-ports")
    (line,) = report.results["named-port"].mismatches
    assert line.endswith("named-port-srv/server:8081/TCP via pod: expected blocked, observed connected")


def test_endport_ignored_shows_the_end_of_the_range_blocked():
    _, report = canaries("ignores-endport")
    (line,) = report.results["end-port"].mismatches
    assert "server:8080/TCP via pod: expected connected, observed blocked" in line


def test_a_rejecting_cni_enforces_everything_and_the_report_says_it_rejects():
    _, report = canaries("rejects")
    assert {r.status for r in report.results.values()} == {cf.ENFORCED}
    assert any("rejects denied connections" in n for n in report.notes)


def test_cost_is_counted_in_probes_and_simulated_seconds():
    backend, report = canaries("drops")
    checks = sum(len(c.checks) for c in CANARIES)
    assert report.probes >= 2 * checks - 1  # the baseline and the policy round, a few retries
    assert 0 < report.seconds <= backend.clock.now()
    assert f"{len(CANARIES)} canaries, {report.probes} probes" in report.cost()


def test_a_needed_feature_not_enforced_is_one_line_naming_the_policy_and_the_feature():
    policy = {**allow_web(), "metadata": {"name": "allow-web", "namespace": "gitguardian"}}
    needed = cf.needed_features([policy])
    _, report = canaries("weave-npc", cf.chosen("needed", needed), needed=needed)
    (line,) = report.failures()
    assert line.startswith(
        "CNI does not enforce named-port: ingress rule 0 of gitguardian/allow-web uses a named port (http);"
    )
    assert "expected blocked, observed connected" in line


# -- the suite ------------------------------------------------------------------------------------------
def _values(tmp_path, extra: list[dict]) -> str:
    path = tmp_path / "values.yaml"
    values = {"networkPolicy": {"enabled": True, "mode": "enforce", "allowedNamespaces": ["monitoring"]}}
    values["networkPolicy"]["extraPolicies"] = extra
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_the_suite_fails_the_session_when_the_values_need_a_feature_the_cni_ignores(tmp_path):
    values = _values(tmp_path, [allow_web()])
    run = run_suite("--backend", "model", "--model-cni", "weave-npc", "--values", values, "-p", "no:randomly")
    assert run.returncode == 1, run.output
    assert (
        "CNI does not enforce named-port: ingress rule 0 of gitguardian/allow-web uses a named port (http)"
        in run.output
    )
    assert "passed" not in run.output.splitlines()[-1]
    assert "During handling of the above exception" not in run.output, "one line, not a chained traceback"


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one process", "xdist"])
def test_a_session_failed_by_the_canaries_still_reports_the_features_table_and_its_json(tmp_path, workers):
    values = _values(tmp_path, [allow_web()])
    reports = tmp_path / "reports"
    run = run_suite(
        "--backend", "model", "--model-cni", "weave-npc", "--values", values, "-p", "no:randomly",
        "--report-dir", str(reports), *workers,
    )  # fmt: skip
    assert run.returncode == 1, run.output
    summary = run.output.split("gim-netpol conformance (model backend)", 1)[1]
    assert "CNI features: " in summary and "  named-port: not enforced" in summary
    assert "  default-deny-ingress: enforced" in summary
    entries = json.loads((reports / "gim-netpol-checks.json").read_text())
    cni = [e for e in entries if e["kind"] == "gim-netpol-cni-features"]
    assert cni and all(
        {c["feature"]: c["status"] for c in e["canaries"]}["named-port"] == cf.NOT_ENFORCED for e in cni
    )
    assert cni[0]["failures"][0].startswith(
        "CNI does not enforce named-port: ingress rule 0 of gitguardian/allow-web"
    )


def test_the_same_values_pass_on_a_cni_that_enforces_named_ports(tmp_path):
    values = _values(tmp_path, [allow_web()])
    run = run_suite("--backend", "model", "--values", values)
    assert run.returncode == 0, run.output
    assert "  named-port: enforced" in run.output


def test_all_canaries_on_weave_list_its_three_quirks_and_pass_when_the_policies_do_not_need_them():
    run = run_suite("--backend", "model", "--model-cni", "weave-npc", "--cni-features", "all")
    assert run.returncode == 0, run.output
    for feature in ("named-port", "end-port", "node-traffic"):
        assert f"  {feature}: not enforced" in run.output
    assert "  numbered-port: enforced" in run.output and "CNI features: 16 canaries" in run.output


def _allow_web_on_a_cni_ignoring_named_ports(not_allowed: tuple[str, ...]) -> Scenario:
    """A deployed enforce scenario whose allow-web names its port, on a CNI that skips such policies, with
    the needed canaries' report for the explanations."""
    backend = ModelBackend(cni=parse_profile("ignores-named-ports"))
    values = NetpolValues(
        enabled=True, mode="enforce", allowed_namespaces=("monitoring",), extra_policies=(allow_web(),)
    )
    topology = Topology("abcdef12", "gim-abcdef", ("monitoring",), not_allowed)
    sc = Scenario.standalone(backend, topology, values, Timing(retry_interval_s=1.0))
    needed = cf.needed_features(sc.policies_for(values))
    sc.cni = cf.run_canaries(
        backend, cf.chosen("needed", needed), cf.Layout("abcdef12"), image="agnhost", needed=needed, **TIMING
    )
    sc.setup()
    sc.deploy()
    return sc


def test_a_mismatch_names_the_feature_of_its_rule_and_points_at_the_canary():
    sc = _allow_web_on_a_cni_ignoring_named_ports(("not-allowed",))
    sc.check("enforce + allow-web, while the CNI programs the policies")
    report = sc.check("enforce + allow-web, once the policies hold")
    assert not report.ok
    text = report.explain()
    assert "MISMATCH not-allowed/client -> gim-abcdef/nginx" in text
    assert (
        "ingress rule 0 of gim-abcdef/allow-web uses a named port (http): CNI canary named-port: NOT ENFORCED"
        in text
    )


def test_mismatches_that_share_an_explanation_print_it_once_under_their_flows():
    sc = _allow_web_on_a_cni_ignoring_named_ports(("not-allowed", "other"))
    text = sc.check("enforce + allow-web").explain()
    flows = [line for line in text.splitlines() if line.startswith("  MISMATCH ")]
    assert len(flows) == 4  # two namespaces not allowed, to nginx by pod IP and by Service
    assert text.count("    repro: kubectl exec") == 4, "each flow keeps its observations and repro command"
    hint = (
        "ingress rule 0 of gim-abcdef/allow-web uses a named port (http): CNI canary named-port: NOT ENFORCED"
    )
    assert text.count(hint) == 1 and text.count("why expected: ") == 1
    assert "    these 4 flows, why expected: ingress allowed by gim-abcdef/allow-web rule 0" in text


# -- verify ---------------------------------------------------------------------------------------------
class QuirkyCluster(ModelCluster):
    """test_verify_cli's live-run model cluster, with a CNI quirk profile."""

    def __init__(self, profile: str) -> None:
        ModelBackend.__init__(self, cni=parse_profile(profile))
        self.enforcing = True


def _verify(profile: str, extra: list[dict], choice: str = "needed", probe: ProbeNamespaces | None = None):
    backend = QuirkyCluster(profile)
    objects = snap.cluster("enforce", ["ingress-nginx"], extra=extra)
    backend.apply([*objects, *(probe.objects() if probe else [])])
    view = view_from_objects([("model", o) for o in backend.objects()], source="model")
    result = analyse(view, snap.GIM)
    options = LiveOptions(timeout_s=2, deadline_s=30, cni_features=choice, probe_namespaces=probe)
    probe_cluster(backend, result, view, options, "run1")
    return result


def test_namespaced_verify_finds_the_quirks_with_its_canaries_sharing_the_probe_namespaces():
    """In the probe namespaces the canaries run one at a time: each still sees its own feature only, so
    the verdicts are those of the canaries in namespaces of their own."""
    result = _verify("weave-npc", [allow_web()], choice="all", probe=ProbeNamespaces())
    statuses = {f: r.status for f, r in result.cni_features.results.items()}
    own = _verify("weave-npc", [allow_web()], choice="all").cni_features.results
    assert statuses == {f: r.status for f, r in own.items()}
    assert {"named-port", "end-port"} <= {f for f, s in statuses.items() if s == cf.NOT_ENFORCED}
    assert statuses["node-traffic"] == cf.NOT_CHECKED  # the probe namespaces are 'restricted'
    assert statuses["namespace-selector"] == statuses["pod-selector"] == cf.ENFORCED
    assert any(p.startswith("CNI does not enforce named-port") for p in result.problems)


def test_verify_fails_when_gims_policies_use_a_feature_the_cni_ignores():
    result = _verify("weave-npc", [allow_web()])
    assert result.exit_status == 1
    assert any(
        p.startswith("CNI does not enforce named-port: ingress rule 0 of gitguardian/allow-web")
        for p in result.problems
    )
    probe_problems = [p for p in result.problems if p.startswith("probe ") and "nginx" in p]
    hint = "ingress rule 0 of gitguardian/allow-web uses a named port (http): CNI canary named-port: "
    hint += "NOT ENFORCED"
    assert probe_problems and all(hint in p for p in probe_problems), probe_problems
    text = render_text(result)
    assert "CNI features (" in text and "named-port: not enforced" in text
    data = to_json(result)["cniFeatures"]
    statuses = {c["feature"]: c["status"] for c in data["canaries"]}
    assert statuses["named-port"] == cf.NOT_ENFORCED and "end-port" not in statuses
    root = ET.fromstring(to_junit(result))
    suite = next(s for s in root.findall("testsuite") if s.get("name").endswith("CNI features"))
    failed = [c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None]
    assert failed == ["CNI feature named-port"]
    assert "<h2>CNI features</h2>" in to_html(result) and "NOT ENFORCED" in to_html(result)
    json.dumps(to_json(result))  # the JSON report is serialisable


def test_verify_passes_the_features_on_a_cni_that_enforces_them_and_never_checks_node_traffic():
    result = _verify("drops", [allow_web(8080)], choice="all")
    assert result.exit_status == 0, result.problems
    report = result.cni_features
    assert report.results["node-traffic"].status == cf.NOT_CHECKED
    assert {r.status for f, r in report.results.items() if f != "node-traffic"} == {cf.ENFORCED}
    root = ET.fromstring(to_junit(result))
    suite = next(s for s in root.findall("testsuite") if s.get("name").endswith("CNI features"))
    skipped = [c.get("name") for c in suite.findall("testcase") if c.find("skipped") is not None]
    assert skipped == ["CNI feature node-traffic"]


def test_the_report_dir_holds_the_canaries_once_and_none_runs_no_canary(tmp_path):
    run = run_suite("--backend", "model", "--report-dir", str(tmp_path), "-k", "not_listed or reach_each")
    assert run.returncode == 0, run.output
    entries = json.loads((tmp_path / "gim-netpol-checks.json").read_text())
    (cni,) = [e for e in entries if e["kind"] == "gim-netpol-cni-features"]
    assert {c["feature"]: c["status"] for c in cni["canaries"]}["namespace-selector"] == cf.ENFORCED
    quiet = run_suite("--backend", "model", "--cni-features", "none", "-k", "not_listed")
    assert quiet.returncode == 0 and "CNI features:" not in quiet.output


def test_verify_from_a_snapshot_refuses_to_run_every_canary(tmp_path, capsys):
    from conformance.commands.cli import main

    path = snap.write(tmp_path / "snap.yaml", snap.cluster("enforce", ["ingress-nginx"]))
    status = main(["verify", "--gim-namespace", snap.GIM, "--snapshot", str(path), "--cni-features", "all"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--cni-features" in err and "live cluster" in err


def test_egress_to_dns_follows_the_cluster_dns_the_client_uses_openshift_included():
    from conformance.backends.model_faults import parse_faults

    canary = cf.BY_FEATURE["egress-dns"]
    report = cf.run_canaries(
        ModelBackend(faults=parse_faults("openshift-dns")),
        [canary],
        cf.Layout("abcdef12"),
        image="a",
        **TIMING,
    )
    assert report.results["egress-dns"].status == cf.ENFORCED, report.lines()
    backend = ModelBackend(faults=parse_faults("openshift-dns"))
    layout = cf.Layout("abcdef12", dns_service="openshift-dns/dns-default")
    cf.plan_objects(layout, [canary], "agnhost", backend)
    state = backend.state(layout.state_namespaces([canary]))
    (policy,) = layout.policies(canary, state)
    assert {p["port"] for p in policy["spec"]["egress"][0]["ports"]} == {5353}  # after the Service's DNAT


def test_egress_to_dns_is_not_checked_without_a_cluster_dns_service():
    from conformance.backends.model_faults import parse_faults

    backend = ModelBackend(faults=parse_faults("no-dns"))
    report = cf.run_canaries(
        backend, [cf.BY_FEATURE["egress-dns"]], cf.Layout("abcdef12"), image="agnhost", **TIMING
    )
    result = report.results["egress-dns"]
    assert result.status == cf.NOT_CHECKED and "no cluster DNS Service found" in result.reason
