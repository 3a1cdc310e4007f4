"""Cross-node coverage: on a cluster where the probe pods can run on several nodes, every check must probe
across nodes.

A CNI enforces NetworkPolicy on two paths: between pods of one node, and between nodes (through its
overlay or routes: VXLAN, IPIP, BGP routes...), where its rules may sit on another hook. The probe pods
are spread over the nodes (``topologySpreadConstraints``, probes/agnhost.py) so that each check exercises
both. When more than one node can run them (Ready, not cordoned, no NoSchedule/NoExecute taint they do
not tolerate: backends/nodes.py) and a check's pod-IP flows include no cross-node flow, the check fails
with one line saying where the pods landed: its verdicts say nothing of the path between nodes. With a
single such node there is no cross-node path to probe: the run's summary says so once, nothing fails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from conformance.backends.base import Backend, Forbidden
from conformance.probes.agnhost import RUN_LABEL
from conformance.suite.flows import Flow

PROBE_TOLERATIONS: tuple[dict, ...] = ()  # the probe pods declare none (probes/agnhost.py)


def same_node(f: Flow) -> bool:
    return f.source.node is not None and f.source.node == f.destination.node


def cross_node(f: Flow) -> bool:
    return None not in (f.source.node, f.destination.node) and f.source.node != f.destination.node


@dataclass(frozen=True)
class NodeCoverage:
    """The nodes that can run the probe pods, and where a check's pod-IP flows ran."""

    schedulable: tuple[str, ...] | None  # None: the nodes could not be listed (``unknown`` says why)
    excluded: tuple[tuple[str, str], ...] = ()  # each other node, with why the probe pods cannot run there
    pods_by_node: tuple[tuple[str, int], ...] = ()  # node ("?" unknown) -> the check's pods on it
    cross_node: int = 0
    run_id: str = ""
    unknown: str = ""

    @property
    def problem(self) -> str:
        """One line when the check must fail: several nodes could run the pods, no flow crossed nodes."""
        if self.schedulable is None or len(self.schedulable) < 2 or self.cross_node or not self.pods_by_node:
            return ""
        landed = dict(self.pods_by_node)
        pods = sum(landed.values())
        nodes = (*self.schedulable, *sorted(set(landed) - set(self.schedulable)))
        where = ", ".join(f"{n} {landed.get(n, 0)}" for n in nodes)
        used = [n for n, count in self.pods_by_node if count]
        cause = (
            "the probe pods' topologySpreadConstraints were not honoured (ScheduleAnyway is only a "
            "preference), or the other nodes were cordoned, NotReady or tainted when the pods were scheduled"
        )
        if len(used) > 1:
            cause = "this check pairs only pods of the same node"
        return (
            f"NO CROSS-NODE FLOW: {len(self.schedulable)} nodes can run the probe pods"
            f" ({', '.join(self.schedulable)}), but none of this check's pod-IP flows crosses nodes"
            f" (its {pods} pods by node: {where}); likely cause: {cause}"
            f" (kubectl get nodes; kubectl get pods -A -o wide -l {RUN_LABEL}={self.run_id})"
        )

    def note(self) -> str:
        """What the run's summary says once about the nodes."""
        if self.schedulable is None:
            return f"cross-node coverage not checked: {self.unknown}"
        others = f"; not for the probe pods: {'; '.join(f'{n}: {why}' for n, why in self.excluded)}"
        nodes = f"({', '.join(self.schedulable)}{others if self.excluded else ''})"
        if len(self.schedulable) < 2:
            return (
                f"{len(self.schedulable)} node can run the probe pods {nodes}: no cross-node path exists, "
                "every pod-IP flow is same-node"
            )
        return f"{len(self.schedulable)} nodes can run the probe pods {nodes}: every check must cross nodes"

    def to_json(self) -> dict:
        return {
            "schedulable_nodes": list(self.schedulable) if self.schedulable is not None else None,
            "cross_node_problem": self.problem,
            "nodes_note": self.note(),
        }


def coverage(backend: Backend, flows: Sequence[Flow], run_id: str = "") -> NodeCoverage:
    """The nodes the probe pods can run on now, and where the pods of ``flows``' pod-IP probes are."""
    via_pod = [f for f in flows if f.probe.via == "pod"]
    pods = {p.key: p.node or "?" for f in via_pod for p in (f.source, f.destination)}
    landed = tuple(sorted(Counter(pods.values()).items()))
    crossing = sum(1 for f in via_pod if cross_node(f))
    try:
        fit = backend.schedulable_nodes(PROBE_TOLERATIONS)
    except Forbidden as exc:
        return NodeCoverage(None, (), landed, crossing, run_id, f"cannot list nodes: {exc}")
    if fit is None:
        why = f"the {backend.name} backend cannot list nodes"
        return NodeCoverage(None, (), landed, crossing, run_id, why)
    return NodeCoverage(fit.nodes, fit.excluded, landed, crossing, run_id)
