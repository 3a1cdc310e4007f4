"""One verify result: inferred values, expected flows, shadow diff, and the exit status they imply.

Exit status (documented in the README and ``gim-netpol verify --help``):
  0  the cluster conforms: the policies implement the inferred values' documented contract on every
     flow, no namespace that needs GIM would be blocked under enforce (``wouldBlock`` is empty) and,
     in a live run, every probe observed what the simulator expected and the CNI canary held;
  1  it does not (the reasons are listed in ``problems``);
  2  usage or permission error (``UserError``): nothing was judged.
Warnings (host-network sources, evidence without a namespace, what could not be inferred) are shown
but do not change the status: they need a person's judgement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.errors import UserError
from conformance.netpol.model import Pod
from conformance.netpol.simulator import Simulator
from conformance.verify.discovery import ClusterView
from conformance.verify.expected import (
    ExpectedFlow,
    enforce_policies,
    expected_flows,
    synthetic_client,
    with_policies,
)
from conformance.verify.flowlogs import FlowLog
from conformance.verify.inference import ENFORCE, Inference, infer
from conformance.verify.observed import observed_source
from conformance.verify.shadow import Need, Shadow, shadow

EXIT_CONFORMS, EXIT_DOES_NOT_CONFORM = 0, 1


@dataclass(frozen=True)
class Blocked:
    """A flow a namespace needs that enforce would block."""

    source: str
    target: str  # namespace/pod:port/protocol
    reason: str


@dataclass(frozen=True)
class ProbeRecord:
    """One live probe: the simulator's expectation and what the packets did."""

    client: str  # namespace/pod of the probe client
    target: str  # namespace/name of the GIM pod or Service
    host: str
    port: int
    protocol: str
    via: str  # "pod" or "service"
    expected_allowed: bool
    reason: str  # the simulator's reason
    outcome: str  # connected | blocked | refused | error
    agrees: bool
    latency_s: float
    repro: str
    detail: str = ""


@dataclass
class Suggestion:
    namespace: str
    reasons: list[str]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass
class Analysis:
    gim_namespace: str
    source: str  # where the state came from: snapshot files or a kube context
    inference: Inference
    shadow: Shadow
    flows: list[ExpectedFlow]
    would_block: dict[str, list[Blocked]]  # namespace -> what enforce would block
    host_network_blocked: dict[str, list[Blocked]]
    suggested: list[Suggestion]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why the cluster does not conform
    probes: list[ProbeRecord] = field(default_factory=list)  # live runs only
    live: bool = False
    observed_blocked: dict[str, list[Blocked]] = field(default_factory=dict)  # flow logs only, no API
    cni_features: Any = None  # live: the CNI feature canaries (a suite.cni_features.CniFeatureReport)

    @property
    def violations(self) -> list[ExpectedFlow]:
        return [f for f in self.flows if f.violation]

    @property
    def conforms(self) -> bool:
        return not self.problems

    @property
    def exit_status(self) -> int:
        return EXIT_CONFORMS if self.conforms else EXIT_DOES_NOT_CONFORM


def _would_block(view: ClusterView, inference: Inference, needs: list[Need]) -> dict[str, list[Blocked]]:
    cluster = view.cluster
    pods = {p.key: p for p in cluster.pods}
    synthetic = [synthetic_client(n.namespace) for n in needs if not n.sources]
    sim = Simulator(with_policies(cluster, enforce_policies(cluster, inference), synthetic))
    out: dict[str, list[Blocked]] = {}
    for need in needs:
        sources: list[Pod] = [pods[k] for k in need.sources if k in pods] or [
            synthetic_client(need.namespace)
        ]
        for src in sources:
            for target in need.targets:
                dst = pods.get(target.pod)
                if dst is None:
                    continue
                verdict = sim.verdict(src, dst, target.port, target.protocol)
                if not verdict.allowed:
                    where = f"{target.pod}:{target.port}/{target.protocol}"
                    out.setdefault(need.namespace, []).append(Blocked(src.key, where, verdict.reason))
    return out


def _suggest(inference: Inference, found: Shadow) -> list[Suggestion]:
    reasons: dict[str, list[str]] = {}
    for need in found.needs:
        reasons[need.namespace] = list(need.evidence)
    for name in inference.allowed_namespaces:
        reasons.setdefault(
            name,
            [
                "already allowed; nothing in the input shows it needs GIM"
                " (kept: verify cannot see every client)"
            ],
        )
    return [Suggestion(name, reasons[name]) for name in sorted(reasons)]


def analyse(view: ClusterView, gim_namespace: str, flow_logs: Sequence[FlowLog] = ()) -> Analysis:
    """Everything verify concludes from ``view`` (and the observed traffic of ``flow_logs``) about
    ``gim_namespace``."""
    cluster = view.cluster
    if gim_namespace not in cluster.namespaces:
        known = ", ".join(sorted(cluster.namespaces)) or "none"
        raise UserError(
            f"namespace {gim_namespace!r} is not in the input (namespaces: {known})", source="--gim-namespace"
        )
    inference = infer(cluster, gim_namespace)
    extra = [observed_source(flow_logs, inference.allowed_namespaces)] if flow_logs else []
    found = shadow(view, gim_namespace, extra)
    flows, flow_notes = expected_flows(cluster, inference)
    would_block = _would_block(view, inference, found.needs)
    host_blocked = _would_block(view, inference, found.host_network)
    analysis = Analysis(
        gim_namespace=gim_namespace,
        source=view.source,
        inference=inference,
        shadow=found,
        flows=flows,
        would_block=would_block,
        host_network_blocked=host_blocked,
        suggested=_suggest(inference, found),
        notes=[*view.notes, *found.notes, *flow_notes],
    )
    under = "under enforce" if inference.mode == ENFORCE else "after the switch to enforce"
    for need in found.host_network:
        pods = ", ".join(need.sources)
        fate = (
            f"the simulator says it would be blocked {under}; whether a CNI admits host traffic is"
            " implementation-defined (Calico and Cilium admit traffic from the pod's own node)"
            if need.namespace in host_blocked
            else "it is admitted by an ipBlock or an unisolated path"
        )
        analysis.warnings.append(
            f"host-network pods {pods} need GIM (evidence in the shadow diff): their traffic comes from"
            f" the node's IP, which allowedNamespaces never matches; {fate}. "
            + (
                "; ".join(need.advice)
                if need.advice
                else "Admit the node CIDRs with an extraPolicy ipBlock"
                " or run the controller without hostNetwork"
            )
        )
    analysis.observed_blocked = _would_block(view, inference, found.observed_only)
    for need in found.observed_only:
        fate = (
            f"enforce would block it ({len(analysis.observed_blocked[need.namespace])} flow(s))"
            if need.namespace in analysis.observed_blocked
            else "enforce would still let it through"
        )
        analysis.warnings.append(
            f"{need.namespace} was observed reaching GIM but nothing in the API shows it needs GIM"
            f" (observed, no API evidence): {fate}; add it to allowedNamespaces if that traffic is legitimate"
        )
    analysis.warnings.extend(f"could not place: {u}" for u in found.unresolved)
    analysis.warnings.extend(inference.notes)
    for namespace, blocked in would_block.items():
        analysis.problems.append(
            f"{namespace} needs GIM but would be blocked {under} ({len(blocked)} flow(s)):"
            " add it to allowedNamespaces"
        )
    broken: dict[tuple[str, str], list[ExpectedFlow]] = {}
    for flow in analysis.violations:
        broken.setdefault((flow.promise, flow.source_namespace), []).append(flow)
    for (promise, namespace), group in broken.items():
        first = group[0]
        analysis.problems.append(
            f"the policies break '{promise}' on {len(group)} flow(s) from {namespace}, e.g. {first.source} ->"
            f" {first.destination}:{first.port}/{first.protocol}: {first.violation}"
        )
    return analysis
