"""The CNI feature canaries ride along with the session's controls (their baseline in the fleet's baseline
rounds, their policies with the deny-all canary): their verdicts are the ones they reach on their own."""

from __future__ import annotations

import pytest

from conformance.backends.cni_profiles import parse_profile
from conformance.backends.model import ModelBackend
from conformance.suite import cni_features as cf
from conformance.suite.cni_canaries import CANARIES
from conformance.suite.controls import run_controls
from conformance.suite.fleet import Fleet
from conformance.suite.scenario import Timing
from conformance.suite.topology import Topology

TIMING = Timing()


def _alone(profile: str) -> dict[str, str]:
    backend = ModelBackend(cni=parse_profile(profile))
    report = cf.run_canaries(
        backend,
        CANARIES,
        cf.Layout("run1"),
        image="agnhost",
        probe_timeout_s=TIMING.probe_timeout_s,
        deadline_s=TIMING.converge_timeout_s,
        ready_timeout_s=TIMING.ready_timeout_s,
    )
    return {f: r.status for f, r in report.results.items()}


def _riding(profile: str) -> tuple[dict[str, str], ModelBackend]:
    backend = ModelBackend(cni=parse_profile(profile))
    fleet = Fleet(backend, Topology("run1", "gim", ("ingress-nginx",), ("not-allowed",)))
    results = run_controls(
        backend,
        "run1",
        TIMING,
        image="agnhost",
        cni_features_choice="all",
        fleet=lambda: (fleet.setup(), fleet)[1],
    )
    assert results.baseline.ok and results.canary.ok
    assert results.cni is not None
    return {f: r.status for f, r in results.cni.results.items()}, backend


@pytest.mark.parametrize("profile", ["drops", "rejects", "weave-npc"])
def test_riding_along_with_the_controls_gives_the_verdicts_the_canaries_reach_alone(profile):
    riding, _ = _riding(profile)
    assert riding == _alone(profile)


def test_on_weave_npc_exactly_its_quirks_are_not_enforced_and_nothing_is_left_behind():
    riding, backend = _riding("weave-npc")
    assert sorted(f for f, s in riding.items() if s == cf.NOT_ENFORCED) == [
        "end-port",
        "named-port",
        "node-traffic",
    ]
    canary_namespaces = {
        n for n, phase in backend.namespace_phases().items() if n.startswith("cf-") and phase == "Active"
    }
    assert canary_namespaces == set(), "the canaries' namespaces are deleted"
