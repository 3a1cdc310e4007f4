"""Controls that must hold before any verdict is trusted.

- baseline: with no policy, every probe connects (proves the probe pods, images and exec work);
- canary: a deny-all policy in a scratch namespace blocks (proves the CNI enforces NetworkPolicy).
A live cluster that fails the canary would make every 'allowed' verdict meaningless. Given the session's
probe fleet, both run on it (the very pods the tests probe, no namespace to create and wait for); the
canary's deny-all is deleted before any test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from conformance.backends.base import Backend
from conformance.gim.workloads import REFERENCE_WORKLOADS
from conformance.netpol.model import K8sObject
from conformance.probes.agnhost import RUN_LABEL
from conformance.suite import cni_features
from conformance.suite.cni_features import CanaryRounds, CanaryRun
from conformance.suite.fleet import Fleet
from conformance.suite.flows import Flow, plan_flows
from conformance.suite.scenario import Timing
from conformance.suite.topology import Topology
from conformance.suite.verdicts import CheckReport, FlowResult, check

NOT_ENFORCED = "policies deployed but not enforced: this cluster's CNI does not enforce NetworkPolicy"


class ControlFailed(Exception):
    """A control failed; ``cni`` holds the feature canaries' report when they are what failed."""

    def __init__(self, message: str, cni: cni_features.CniFeatureReport | None = None) -> None:
        super().__init__(message)
        self.cni = cni


@dataclass(frozen=True)
class ControlResults:
    baseline: CheckReport
    canary: CheckReport
    cni: cni_features.CniFeatureReport | None = None  # the feature canaries (--cni-features)


def deny_all(namespace: str, labels: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "canary-deny-all", "namespace": namespace, "labels": dict(labels or {})},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def run_controls(
    backend: Backend,
    run_id: str,
    timing: Timing,
    *,
    image: str,
    suffix: str = "",
    cni_features_choice: str = "none",
    policies: Sequence[K8sObject] = (),
    fleet: Callable[[], Fleet] | None = None,
) -> ControlResults:
    """The CNI feature canaries ``cni_features_choice`` asks for (those of the features ``policies`` use,
    all, or none) are started first, in their own namespaces; their pods get Ready while the probe fleet
    comes up (``fleet()``) and the baseline and canary run on it (in scratch namespaces without a fleet);
    then the feature canaries are judged. Raises ControlFailed, with one line per feature the policies use
    that the CNI does not enforce."""
    needed = cni_features.needed_features(policies)
    canaries = cni_features.chosen(cni_features_choice, needed)
    started = (
        cni_features.start_canaries(
            backend, canaries, cni_features.Layout(run_id, suffix), image=image, needed=needed
        )
        if canaries
        else None
    )
    try:
        if fleet is not None:
            results = _run_controls_on(fleet(), timing, started)
        else:
            results = _run_controls(backend, run_id, timing, image=image, suffix=suffix)
        if started is None:
            return results
        if fleet is None:  # the canaries' own rounds, after the scratch controls
            started.finish(
                probe_timeout_s=timing.probe_timeout_s,
                deadline_s=timing.converge_timeout_s,
                ready_timeout_s=timing.ready_timeout_s,
                retry_interval_s=timing.retry_interval_s,
            )
    finally:
        if started is not None:
            started.delete()  # idempotent: whatever is still there
    report = started.report
    failures = report.failures()
    if failures:
        raise ControlFailed("\n".join(failures), cni=report)
    return ControlResults(results.baseline, results.canary, report)


def _run_controls_on(fleet: Fleet, timing: Timing, canaries: CanaryRun | None = None) -> ControlResults:
    """Baseline and canary on the session's fleet, to the GIM stand-ins from every client in a namespace
    the fleet created (a borrowed namespace may hold policies of its own: no baseline there). The CNI
    feature canaries, once Ready, ride along: their baseline is probed in the same rounds as the fleet's,
    their policies are applied with the deny-all and probed in the same rounds as the canary."""
    topo = fleet.topology
    backend = fleet.backend
    clients = [topo.client_key(ns) for ns in topo.namespaces if ns not in fleet.borrowed]
    riders = None
    if canaries is not None and canaries.ready(timing.ready_timeout_s, timing.retry_interval_s):
        riders = canaries.rounds()

    run = _checker(backend, topo, clients, timing, before=fleet.confirm_ready)
    canary_policy = deny_all(topo.gim_namespace, {RUN_LABEL: topo.run_id})  # the fleet's reset deletes it

    def deploy_canary() -> None:
        backend.apply([canary_policy])
        if riders is not None:
            riders.apply_policies()

    try:
        return _judge(backend, run, deploy_canary, riders)
    finally:
        fleet.reset()


def _checker(
    backend: Backend,
    topo: Topology,
    clients: Sequence[str],
    timing: Timing,
    before: Callable[[], object] = lambda: None,
) -> Callable[..., tuple[CheckReport, list[FlowResult]]]:
    """A control check: pod-IP probes from ``clients`` to the GIM stand-ins, no contract; ``extra``
    flows are probed in the same rounds, their results returned apart."""

    def run(label: str, extra: Sequence[Flow] = ()) -> tuple[CheckReport, list[FlowResult]]:
        before()
        state = backend.state(topo.namespaces)
        flows = plan_flows(state, clients, topo.gim_namespace, contract=None, via=("pod",))
        report = check(
            backend,
            [*flows, *extra],
            label=label,
            probe_timeout_s=timing.probe_timeout_s,
            deadline_s=timing.converge_timeout_s,
            retry_interval_s=timing.retry_interval_s,
        )
        mine, theirs = report.results[: len(flows)], report.results[len(flows) :]
        return replace(report, results=mine), theirs

    return run


def _judge(
    backend: Backend,
    run: Callable[..., tuple[CheckReport, list[FlowResult]]],
    deploy_canary: Callable[[], None],
    riders: CanaryRounds | None = None,
) -> ControlResults:
    """Run the baseline, deploy the canary's deny-all, run the canary; ControlFailed when one fails. The
    riders' (CNI feature canaries') baseline and verdicts come from the same rounds."""
    baseline, extra = run("control: baseline, no policy", riders.baseline_flows() if riders else ())
    if not baseline.ok:
        raise ControlFailed(
            "baseline failed: with no policy at all, probes do not connect, so the probe pods or the "
            "cluster network are broken\n" + baseline.explain()
        )
    if not baseline.results or not all(r.flow.expected.allowed for r in baseline.results):
        raise ControlFailed("baseline failed: no probe was planned, or the simulator expected a block")
    if riders is not None:
        riders.take_baseline(extra)
    deploy_canary()
    canary, extra = run("control: canary, deny-all", riders.policy_flows() if riders else ())
    if not canary.ok:
        cni = getattr(backend, "detect_cni", lambda: "unknown")()
        raise ControlFailed(f"{NOT_ENFORCED} (detected: {cni})\n" + canary.explain())
    if riders is not None:
        riders.take_verdicts(extra)
    return ControlResults(baseline, canary)


def _run_controls(
    backend: Backend, run_id: str, timing: Timing, *, image: str, suffix: str
) -> ControlResults:
    topo = Topology(
        run_id,
        f"canary-{run_id[:6]}{suffix}",
        (),
        (f"canary-client-{run_id[:6]}{suffix}",),
        REFERENCE_WORKLOADS[:1],
        image,
    )
    backend.apply(topo.objects())
    try:
        backend.wait_ready(topo.namespaces, timing.ready_timeout_s)

        run = _checker(backend, topo, topo.client_keys, timing)
        return _judge(backend, run, lambda: backend.apply([deny_all(topo.gim_namespace)]))
    finally:
        backend.delete(topo.namespace_objects())
