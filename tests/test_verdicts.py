"""Observed against expected: retries of disagreeing probes only, blocked seen twice, errors never blocked,
and explanations a person can act on."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence

from conformance.backends.base import Backend
from conformance.gim.contract import Promise
from conformance.netpol.model import Cluster, Pod
from conformance.netpol.probing import Observation, Outcome, Probe
from conformance.netpol.simulator import DirectionVerdict, Verdict
from conformance.suite.flows import Flow
from conformance.suite.verdicts import check, expected_tables

C, B, R, E = Outcome.CONNECTED, Outcome.BLOCKED, Outcome.REFUSED, Outcome.ERROR
DIAGNOSIS = "phase Pending; event: Failed to pull image agnhost: ImagePullBackOff"


class ScriptedBackend(Backend):
    """A fake of the Backend interface: each probe answers its scripted outcomes in turn, then repeats
    the last one. Records every batch it was asked to probe."""

    name = "scripted"

    def __init__(self, scripts: dict[Probe, Sequence[Outcome]]) -> None:
        self.scripts = {probe: deque(outcomes) for probe, outcomes in scripts.items()}
        self.calls: Counter[Probe] = Counter()
        self.batches: list[list[Probe]] = []
        self.diagnosed: list[str] = []

    def probe(self, probes: Sequence[Probe], timeout_s: float) -> list[Observation]:
        self.batches.append(list(probes))
        out = []
        for p in probes:
            self.calls[p] += 1
            script = self.scripts[p]
            outcome = script.popleft() if len(script) > 1 else script[0]
            out.append(Observation(p, outcome, f"agnhost said {outcome.value} (call {self.calls[p]})"))
        return out

    def diagnose(self, pod_key: str) -> str:
        self.diagnosed.append(pod_key)
        return DIAGNOSIS

    def apply(self, objects) -> None:
        raise AssertionError("check() must not change the cluster")

    def delete(self, objects) -> None:
        raise AssertionError("check() must not change the cluster")

    def wait_ready(self, namespaces: Iterable[str], timeout_s: float) -> None:
        return None

    def state(self, namespaces: Iterable[str]) -> Cluster:
        return Cluster()


def _verdict(allowed: bool, reason: str) -> Verdict:
    direction = DirectionVerdict(allowed, True, None, None, reason)
    return Verdict(allowed, reason, direction, direction)


def flow(
    client: str,
    target: str,
    *,
    allowed: bool,
    port: int = 8080,
    via: str = "pod",
    promise: Promise | None = None,
    reason: str | None = None,
) -> Flow:
    src = Pod(client.split("/")[0], client.split("/")[1], ip="10.244.0.2")
    dst = Pod(target.split("/")[0], target.split("/")[1], ip="10.244.0.3")
    host = "10.96.0.10" if via == "service" else "10.244.0.3"
    probe = Probe(client, target, host, port, "TCP", via)
    why = reason or (
        f"allowed by rule {target}" if allowed else f"ingress to {target} denied by default-deny"
    )
    return Flow(probe, src, dst, port, _verdict(allowed, why), promise)


def run(backend: Backend, flows: Sequence[Flow], *, deadline_s: float = 5.0, label: str = "test check"):
    return check(backend, flows, label=label, probe_timeout_s=1.0, deadline_s=deadline_s, retry_interval_s=0)


ALLOWED = flow("a/client", "gim/nginx", allowed=True)
DENIED = flow("b/client", "gim/nginx", allowed=False)


# -- convergence --------------------------------------------------------------------------------------
def test_flaky_then_connected_converges_and_keeps_every_sample():
    backend = ScriptedBackend({ALLOWED.probe: [E, B, C]})
    report = run(backend, [ALLOWED])
    assert report.ok
    assert [o.outcome for o in report.results[0].samples] == [E, B, C]
    assert report.explain() == ""
    assert report.summary()["mismatches"] == 0


def test_blocked_needs_two_blocked_samples_in_a_row():
    backend = ScriptedBackend({DENIED.probe: [B]})
    report = run(backend, [DENIED])
    assert report.ok
    assert backend.calls[DENIED.probe] == 2


def test_blocked_interrupted_by_a_connect_starts_over():
    backend = ScriptedBackend({DENIED.probe: [B, C, B, B]})
    report = run(backend, [DENIED])
    assert report.ok
    assert [o.outcome for o in report.results[0].samples] == [B, C, B, B]


def test_error_never_counts_as_blocked():
    backend = ScriptedBackend({DENIED.probe: [B, E, B, B]})
    report = run(backend, [DENIED])
    assert report.ok
    assert backend.calls[DENIED.probe] == 4, "B, E, B is not two blocked samples in a row"


def test_refused_is_not_connected_for_an_allowed_flow():
    backend = ScriptedBackend({ALLOWED.probe: [R]})
    report = run(backend, [ALLOWED], deadline_s=0.2)
    assert not report.ok
    assert "MISMATCH" in report.explain()


def test_a_connection_seen_before_the_policies_held_is_probed_again():
    """Right after an apply nothing holds yet: the flow expected blocked still connects, and so does the
    allowed one, whose allow policy the CNI then turns out to skip. Passing it on that first sample
    would hide the skipped policy; it is probed again once the block holds, and the mismatch shows."""
    skipped_allow = flow("a/client", "gim/nginx", allowed=True)
    backend = ScriptedBackend({skipped_allow.probe: [C, B], DENIED.probe: [C, B]})
    report = run(backend, [skipped_allow, DENIED], deadline_s=1.0)
    assert not report.ok
    assert [r.flow for r in report.mismatches] == [skipped_allow]
    assert backend.calls[skipped_allow.probe] >= 2


def test_a_connection_seen_while_the_blocks_already_held_is_not_probed_again():
    backend = ScriptedBackend({ALLOWED.probe: [C], DENIED.probe: [B]})
    report = run(backend, [ALLOWED, DENIED])
    assert report.ok
    assert backend.calls[ALLOWED.probe] == 1
    assert backend.calls[DENIED.probe] == 2


def test_the_allowed_flows_ride_along_with_the_retries_already_due():
    backend = ScriptedBackend({ALLOWED.probe: [C], DENIED.probe: [C, B]})
    report = run(backend, [ALLOWED, DENIED])
    assert report.ok
    # Round 1: both once (the denied flow leaks: still programming). Round 2: both again, the denied flow
    # blocked, so sampled once more at once (the batch [DENIED]): settled without a third round.
    assert backend.batches == [[ALLOWED.probe, DENIED.probe], [ALLOWED.probe, DENIED.probe], [DENIED.probe]]
    assert [o.outcome for o in report.results[1].samples] == [C, B, B]


def test_only_disagreeing_probes_are_probed_again():
    flaky = flow("c/client", "gim/internal-api", allowed=True, port=8000)
    backend = ScriptedBackend({ALLOWED.probe: [C], DENIED.probe: [B], flaky.probe: [B, B, C]})
    report = run(backend, [ALLOWED, DENIED, flaky])
    assert report.ok
    assert backend.calls == Counter({ALLOWED.probe: 1, DENIED.probe: 2, flaky.probe: 3})
    # The first round takes one sample each (the CNI may still be programming); the denied flow's block is
    # confirmed by the second round, the flaky one probed again until it connects.
    assert backend.batches == [
        [ALLOWED.probe, DENIED.probe, flaky.probe],
        [DENIED.probe, flaky.probe],
        [flaky.probe],
    ]


def test_deadline_is_respected_when_a_flow_never_settles():
    backend = ScriptedBackend({DENIED.probe: [C]})
    start = time.monotonic()
    report = run(backend, [DENIED], deadline_s=0.3)
    elapsed = time.monotonic() - start
    assert not report.ok
    assert 0.3 <= elapsed < 2.0
    assert report.converge_s >= 0.3
    assert backend.calls[DENIED.probe] >= 2


def test_a_settled_run_returns_long_before_its_deadline():
    backend = ScriptedBackend({ALLOWED.probe: [C], DENIED.probe: [B]})
    start = time.monotonic()
    run(backend, [ALLOWED, DENIED], deadline_s=30.0)
    assert time.monotonic() - start < 2.0


# -- infrastructure errors --------------------------------------------------------------------------
def test_persistent_error_is_an_infrastructure_error_with_the_pods_events():
    backend = ScriptedBackend({DENIED.probe: [E]})
    report = run(backend, [DENIED], deadline_s=0.2)
    assert not report.ok
    result = report.mismatches[0]
    assert result.infrastructure_error
    text = report.explain()
    assert "INFRASTRUCTURE ERROR" in text
    assert "b/client -> gim/nginx" in text
    assert DIAGNOSIS in text
    assert backend.diagnosed == ["b/client"]


def test_a_real_mismatch_is_not_called_an_infrastructure_error():
    backend = ScriptedBackend({DENIED.probe: [C]})
    report = run(backend, [DENIED], deadline_s=0.2)
    text = report.explain()
    assert "INFRASTRUCTURE ERROR" not in text
    assert "MISMATCH b/client -> gim/nginx" in text
    assert backend.diagnosed == []


def test_one_diagnosis_per_client_pod():
    other = flow("b/client", "gim/public-api", allowed=True, port=8001)
    backend = ScriptedBackend({DENIED.probe: [E], other.probe: [E]})
    run(backend, [DENIED, other], deadline_s=0.2)
    assert backend.diagnosed == ["b/client"]


# -- explanations -------------------------------------------------------------------------------------
def test_explain_has_tables_repro_and_the_simulators_reason():
    backend = ScriptedBackend({ALLOWED.probe: [C], DENIED.probe: [C]})
    report = run(backend, [ALLOWED, DENIED], deadline_s=0.2, label="enforce: not listed")
    text = report.explain()
    assert text.startswith("enforce: not listed [scripted]: 1 of 2 probes disagree")
    assert "expected blocked, observed [connected" in text
    assert f"why expected: {DENIED.expected.reason}" in text
    assert f"repro: {backend.repro(DENIED.probe, 1.0)}" in text
    assert "agnhost connect 10.244.0.3:8080" in text
    for title in ("expected", "observed", "difference"):
        assert f"enforce: not listed: via pod IP, {title}" in text
    assert "via service IP" not in text


def test_repro_only_for_the_flows_that_disagree():
    backend = ScriptedBackend({ALLOWED.probe: [C], DENIED.probe: [C]})
    report = run(backend, [ALLOWED, DENIED], deadline_s=0.2)
    assert list(report.repro.values()) == [backend.repro(DENIED.probe, 1.0)]
    assert "MISMATCH a/client" not in report.explain()


def test_explain_stays_readable_when_a_flow_was_probed_many_times():
    backend = ScriptedBackend({DENIED.probe: [E]})
    report = run(backend, [DENIED], deadline_s=0.2)
    assert backend.calls[DENIED.probe] > 50, "the premise: many samples"
    line = next(x for x in report.explain().splitlines() if "INFRASTRUCTURE ERROR" in x)
    assert len(line) < 400, line[:200]
    assert "observed [error" in line


def _table(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith(title))
    rows = []
    for line in lines[start + 2 :]:
        if not line or not line[0].isdigit() and not line.startswith(" ") and "/" not in line:
            break
        rows.append(line)
    return rows


def test_tables_mark_each_cell():
    svc = flow("a/client", "gim/nginx-svc", allowed=True, via="service")
    refused = flow("a/client", "gim/public-api", allowed=True, port=8001)
    errored = flow("b/client", "gim/public-api", allowed=False, port=8001)
    backend = ScriptedBackend(
        {ALLOWED.probe: [C], DENIED.probe: [C], svc.probe: [C], refused.probe: [R], errored.probe: [E]}
    )
    text = run(backend, [ALLOWED, DENIED, refused, errored, svc], deadline_s=0.2, label="L").tables()
    expected = [line.split() for line in _table(text, "L: via pod IP, expected") if "client" in line]
    observed = [line.split() for line in _table(text, "L: via pod IP, observed") if "client" in line]
    diff = [line.split() for line in _table(text, "L: via pod IP, difference") if "client" in line]
    # rows: a/client, b/client; columns: gim/nginx:8080, gim/public-api:8001
    assert [r[-2:] for r in expected] == [[".", "."], ["X", "X"]]
    assert [r[-2:] for r in observed] == [[".", "R"], [".", "E"]]
    assert [r[-2:] for r in diff] == [[".", "!"], ["!", "!"]]
    assert "L: via service IP, observed" in text


def test_observed_table_key_explains_refused_and_error():
    refused = flow("a/client", "gim/public-api", allowed=True, port=8001)
    backend = ScriptedBackend({refused.probe: [R], DENIED.probe: [E]})
    text = run(backend, [refused, DENIED], deadline_s=0.1, label="L").tables()
    observed = text.split("L: via pod IP, observed")[1].split("L: via pod IP, difference")[0]
    key = observed.strip().splitlines()[-1]
    assert "R refused" in key and "E error" in key


def test_explain_names_the_broken_promise_even_when_probes_agree():
    broken = flow(
        "ingress-nginx/client",
        "gim/nginx",
        allowed=False,
        promise=Promise(True, "namespace ingress-nginx is allowed"),
        reason="ingress to gim/nginx denied: no rule matches namespace ingress-nginx",
    )
    backend = ScriptedBackend({broken.probe: [B]})
    report = run(backend, [broken], label="L")
    assert report.mismatches == [], "the probes agree with the applied policies"
    assert not report.ok, "but the applied policies break the documented contract"
    text = report.explain()
    assert "1 flows where the applied policies break the documented contract" in text
    assert "promise 'namespace ingress-nginx is allowed' broken: ingress-nginx/client -> gim/nginx" in text
    assert "should be allowed" in text
    contract_rows = _table(text, "L: via pod IP, documented contract")
    assert [row.split()[-1] for row in contract_rows if "client" in row] == ["!"]
    assert "no rule matches namespace ingress-nginx" in text
    assert report.summary()["contract_breaks"] == 1


def test_kept_promise_is_not_reported():
    kept = flow("a/client", "gim/nginx", allowed=True, promise=Promise(True, "namespace a is allowed"))
    report = run(ScriptedBackend({kept.probe: [C]}), [kept])
    assert report.ok and report.contract_breaks == []


def test_summary_counts_what_went_wrong():
    backend = ScriptedBackend({ALLOWED.probe: [B], DENIED.probe: [B]})
    summary = run(backend, [ALLOWED, DENIED], deadline_s=0.2, label="L").summary()
    assert summary["label"] == "L" and summary["backend"] == "scripted"
    assert (summary["probes"], summary["mismatches"], summary["contract_breaks"]) == (2, 1, 0)
    assert summary["converge_s"] >= 0.2


# -- expected tables (gim-netpol plan --matrix) ------------------------------------------------------
def test_expected_tables_mark_allowed_blocked_and_broken_promises():
    broken = flow("c/client", "gim/nginx", allowed=False, promise=Promise(True, "namespace c is allowed"))
    svc = flow("a/client", "gim/nginx", allowed=True, via="service")
    text = expected_tables([ALLOWED, DENIED, broken, svc], "plan")
    pod_rows = {
        line.split()[0]: line.split()[-1] for line in _table(text, "plan: via pod IP") if "client" in line
    }
    assert pod_rows == {"a/client": ".", "b/client": "X", "c/client": "!"}
    assert "plan: via service IP" in text
