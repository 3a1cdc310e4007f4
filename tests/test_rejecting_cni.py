"""Issue 8, defect 7: a CNI that rejects denied connections (kube-router 1.2.2: ICMP port-unreachable)
instead of dropping them must not look like a CNI that enforces nothing.

A refusal on a port the destination is known to serve (a Ready probe server declaring it) is a block,
"rejected"; a refusal on a port nobody serves stays "refused". The SMTP example keeps catching a CNI
that lets GIM pods selected for egress reach each other.
"""

from __future__ import annotations

from collections.abc import Sequence

from conformance.backends.cni_profiles import parse_profile
from conformance.backends.model import ModelBackend
from conformance.gim.examples import smtp_egress_policy
from conformance.netpol.probing import Observation, Outcome, Probe
from conformance.probes.agnhost import AGNHOST_IMAGE
from conformance.suite.controls import run_controls
from conformance.suite.scenario import Scenario, Timing
from conformance.suite.verdicts import OBSERVED_SYMBOLS
from tests.model_scenarios import enforce_scenario
from tests.test_suite_plugin import run_suite

REJECTS = parse_profile("rejects")


def _scenario(backend: ModelBackend, *extra: dict) -> Scenario:
    return enforce_scenario(backend, *extra)


def test_the_canary_holds_on_a_cni_that_rejects():
    results = run_controls(ModelBackend(cni=REJECTS), "abcdef123", Timing(), image=AGNHOST_IMAGE)
    assert results.canary.ok
    assert {r.last.outcome for r in results.canary.results if r.last} == {Outcome.REJECTED}


def test_blocked_flows_show_as_rejected_in_the_tables():
    sc = _scenario(ModelBackend(cni=REJECTS))
    report = sc.assert_conforms("enforce on kube-router")
    blocked = [r for r in report.results if not r.flow.expected.allowed]
    assert blocked and all(r.last and r.last.outcome.blocked for r in blocked)
    rejected = [r for r in blocked if r.last and r.last.outcome is Outcome.REJECTED]
    # past the nodes' ICMP rate limit a rejected connect times out (model_icmp), as live
    timed_out = [r for r in blocked if r.last and r.last.outcome is Outcome.BLOCKED]
    assert rejected and len(rejected) + len(timed_out) == len(blocked)
    assert all("rejected: refused on a port the destination serves" in r.last.detail for r in rejected)
    assert all("ICMP rate limit" in r.last.detail for r in timed_out)
    assert "x" in OBSERVED_SYMBOLS and "rejected" in OBSERVED_SYMBOLS["x"]
    assert " x " in report.tables() or "x" in report.tables().split("observed", 1)[1]


def test_a_refusal_on_a_port_nobody_serves_stays_refused():
    sc = _scenario(ModelBackend(cni=REJECTS))
    server = sc.state().pod("gim/nginx")
    [seen] = sc.backend.probe([Probe("gim/worker", server.key, server.ip or "", 7777)], 2.0)
    assert seen.outcome is Outcome.REFUSED, "nothing listens on 7777: the flow is not a rejected block"


class KubeRouter121(ModelBackend):
    """kube-router 1.2.2 runs a pod's ingress and egress policies in one chain: GIM pods selected for
    egress still reach each other. Everything else it rejects as the rejects profile does."""

    def answer(self, probes: Sequence[Probe], timeout_s: float) -> list[Observation]:
        return [
            Observation(o.probe, Outcome.CONNECTED, "connected")
            if o.probe.client.startswith("gim/") and o.probe.target.startswith("gim/")
            else o
            for o in super().answer(probes, timeout_s)
        ]


def test_the_smtp_example_still_catches_gim_pods_reaching_each_other_on_a_rejecting_cni():
    ok = _scenario(ModelBackend(cni=REJECTS), smtp_egress_policy())
    assert ok.check("SMTP example on a rejecting CNI").ok
    buggy = _scenario(KubeRouter121(cni=REJECTS), smtp_egress_policy())
    report = buggy.check("SMTP example on kube-router 1.2.2")
    assert not report.ok
    assert all(
        r.flow.probe.client.startswith("gim/") and r.last and r.last.outcome is Outcome.CONNECTED
        for r in report.mismatches
    )
    assert "MISMATCH gim/worker -> gim/" in report.explain()


def test_the_whole_suite_passes_on_a_cni_that_rejects():
    run = run_suite("--backend", "model", "--model-cni", "rejects", "-q", timeout=120)
    assert run.returncode == 0, run.output
    assert "policies deployed but not enforced" not in run.output
