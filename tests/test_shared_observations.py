"""Checks under the same objects on the same fleet share one converged observation (suite/observations.py);
nothing else does: other objects, a redeploy within the test, an observation that did not converge."""

from __future__ import annotations

from collections.abc import Sequence

from conformance.backends.model import ModelBackend
from conformance.netpol.probing import Observation, Outcome, Probe
from conformance.suite.flows import Flow
from conformance.suite.observations import SharedObservations, fingerprint
from conformance.suite.scenario import Scenario
from conformance.suite.verdicts import check
from tests.test_fleet import TIMING, _fleet, _scenario


class CountingBackend(ModelBackend):
    """The model, counting the probes it is asked to run."""

    probes_run = 0

    def answer(self, probes: Sequence[Probe], timeout_s: float) -> list[Observation]:
        self.probes_run += len(probes)
        return super().answer(probes, timeout_s)


def _next_test(sc: Scenario, mode: str, allowed: int = 2) -> Scenario:
    """What the next test of the session does: the previous one tears down, this one deploys."""
    sc.teardown()
    return _scenario(sc.fleet, mode, allowed)


def test_a_test_deploying_the_same_objects_reuses_the_observation_and_judges_its_own_promise():
    backend = CountingBackend()
    first = _scenario(_fleet(backend), "enforce")
    origin = first.check("enforce: allowed namespaces")
    assert origin.ok and origin.shared_from == ""
    probed = backend.probes_run

    second = _next_test(first, "enforce")
    report = second.check("enforce: namespace not listed")
    assert backend.probes_run == probed, "nothing probed again"
    assert report.ok and report.shared_from == "enforce: allowed namespaces"
    assert report.summary()["shared_from"] == "enforce: allowed namespaces"
    assert [r.flow.probe for r in report.results] == [r.flow.probe for r in origin.results]
    assert [r.samples for r in report.results] == [r.samples for r in origin.results]
    # The verdicts are this test's: its flows carry its own contract promises.
    assert all(r.flow.promise is not None for r in report.results)


def test_other_objects_are_observed_for_themselves():
    backend = CountingBackend()
    first = _scenario(_fleet(backend), "enforce")
    assert first.check("enforce").ok
    probed = backend.probes_run
    other = _next_test(first, "enforce", allowed=1)  # one namespace fewer in allowedNamespaces
    report = other.check("enforce, one namespace listed")
    assert report.ok and report.shared_from == ""
    assert backend.probes_run > probed


def test_a_check_after_the_tests_own_redeploy_observes_the_transition_itself():
    backend = CountingBackend()
    first = _scenario(_fleet(backend), "enforce")
    assert first.check("enforce").ok
    switching = _next_test(first, "dryrun")
    switching.deploy(switching.with_values(mode="enforce"))  # back to the objects already observed
    probed = backend.probes_run
    report = switching.check("switch: dryrun -> enforce")
    assert report.ok and report.shared_from == "", "a switch must be seen to hold, not borrowed"
    assert backend.probes_run > probed


def _flows(sc: Scenario) -> list[Flow]:
    return sc.flows()


def test_only_a_converged_observation_is_shared():
    fleet = _fleet(ModelBackend())
    sc = _scenario(fleet, "enforce")
    flows = _flows(sc)
    key = fingerprint(sc.state(), flows)
    shared = SharedObservations()

    def observe(label: str):
        return check(fleet.backend, flows, label=label, probe_timeout_s=2.0, deadline_s=30.0)

    unconverged = observe("enforce")
    unconverged.results[0].samples[-1] = Observation(flows[0].probe, Outcome.ERROR, "exec failed")
    assert unconverged.mismatches
    shared.keep(key, unconverged)
    assert shared.reuse(key, flows, "again") is None
    shared.keep(key, observe("enforce, again"))
    reused = shared.reuse(key, flows, "once more")
    assert reused is not None and reused.shared_from == "enforce, again"
    assert shared.reuse(key, [*flows, flows[0]], "more flows") is not None, (
        "every flow was observed (one is asked twice)"
    )


def test_the_fingerprint_changes_with_any_object_the_verdicts_depend_on():
    fleet = _fleet(ModelBackend())
    sc = _scenario(fleet, "enforce")
    flows = _flows(sc)
    key = fingerprint(sc.state(), flows)
    assert fingerprint(sc.state(), flows) == key, "the same state, the same fingerprint"
    relabelled = sc.topology.namespace_objects(["not-allowed"])
    relabelled[0]["metadata"]["labels"] = {**relabelled[0]["metadata"].get("labels", {}), "team": "x"}
    fleet.backend.apply(relabelled)
    assert fingerprint(sc.state(), flows) != key, "a namespace label a selector may read"
    again = Scenario(fleet.backend, fleet, sc.topology, sc.values, TIMING)
    assert fingerprint(again.state(), _flows(again)[:-1]) != fingerprint(again.state(), _flows(again))
