"""The model backend's nodes and scheduler: a kind cluster's nodes, and where kube-scheduler puts a pod.

Nodes (``--model-nodes N``, default 3: clusters/kind-calico.yaml's control plane and two workers) are
named as kind names them (``kind-control-plane``, ``kind-worker``, ``kind-worker2``...). The control
plane carries kubeadm's ``node-role.kubernetes.io/control-plane:NoSchedule`` taint, except in a
single-node cluster: kind removes it there (its kubeadm-init action untaints the control plane when the
cluster has no worker). A ``cordoned=NODE@START+SECONDS`` fault (model_faults) cordons a node for a window.

The scheduler follows kube-scheduler v1.34's default profile for the pods the suite creates:

- filters (nodes.why_not): the node is Ready, not cordoned, and carries no NoSchedule/NoExecute taint
  the pod does not tolerate. A pod no node fits stays Pending (``PodScheduled`` False, reason
  ``Unschedulable``, no IP) and is scheduled as soon as one fits, as the scheduler retries it;
- ``topologySpreadConstraints`` on ``kubernetes.io/hostname`` (kubernetes.io/docs/concepts/
  scheduling-eviction/topology-spread-constraints/): a node's count is the number of pods of the pod's own
  namespace on it that match ``labelSelector`` (the page's "implicit conventions": only pods of the same
  namespace are matching candidates). ``DoNotSchedule`` filters out a node where the count + 1
  would exceed the smallest count by more than ``maxSkew`` (the smallest over every node: the default
  ``nodeTaintsPolicy: Ignore`` counts tainted nodes too; ``Honor`` counts only the nodes the pod fits);
  ``ScheduleAnyway`` scores: the fewest matching pods first;
- then the least loaded node (NodeResourcesFit's LeastAllocated and NodeResourcesBalancedAllocation: pods
  that request nothing, as the probe pods, are scored at the scheduler's non-zero defaults, 100m CPU and
  200 MB each, so fewer pods means a higher score);
- a tie goes to the first node in the cluster's order (kube-scheduler picks one of the best at random: the
  model stays reproducible).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from conformance.backends.nodes import Node, Taint, why_not
from conformance.errors import UserError
from conformance.netpol.model import K8sObject
from conformance.netpol.selectors import matches

DEFAULT_NODES = 3
CONTROL_PLANE_TAINT = Taint("node-role.kubernetes.io/control-plane", "NoSchedule")
HOSTNAME = "kubernetes.io/hostname"


def kind_nodes(count: int = DEFAULT_NODES, cluster: str = "kind") -> tuple[Node, ...]:
    """The nodes of a kind cluster of ``count`` nodes: one control plane, then workers."""
    if count < 1:
        raise ValueError("a cluster has at least one node")
    taints = (CONTROL_PLANE_TAINT,) if count > 1 else ()
    workers = [f"{cluster}-worker{n if n > 1 else ''}" for n in range(1, count)]
    return (Node(f"{cluster}-control-plane", taints=taints), *(Node(w) for w in workers))


def check_cordoned(windows: Iterable[tuple[str, float, float]], nodes: Sequence[Node]) -> None:
    """A cordon fault must name a node of the model's cluster. Raises UserError."""
    names = [n.name for n in nodes]
    for node, _, _ in windows:
        if node not in names:
            raise UserError(
                f"cordoned={node}: no such node; the model's nodes are {', '.join(names)} (--model-nodes)",
                source="--model-faults",
            )


def nodes_at(nodes: Sequence[Node], cordoned: Iterable[tuple[str, float, float]], t: float) -> list[Node]:
    """The nodes at virtual second ``t``: a node in a cordon window is ``unschedulable``, as ``kubectl
    cordon`` leaves it."""
    now = {node for node, start, end in cordoned if start <= t < end}
    return [replace(n, unschedulable=True) if n.name in now else n for n in nodes]


def choose(pod: K8sObject, nodes: Sequence[Node], placed: Iterable[K8sObject]) -> str | None:
    """The node kube-scheduler puts ``pod`` on, given the pods ``placed`` already; None: no node fits."""
    spec = pod.get("spec") or {}
    tolerations = spec.get("tolerations") or ()
    fits = [n for n in nodes if why_not(n, tolerations) is None]
    placed = [p for p in placed if (p.get("spec") or {}).get("nodeName")]
    load = {n.name: 0 for n in nodes}
    for p in placed:
        name = p["spec"]["nodeName"]
        load[name] = load.get(name, 0) + 1
    spread = 0  # ScheduleAnyway: fewest matching pods first, per node
    scores = {n.name: 0 for n in fits}
    for constraint in spec.get("topologySpreadConstraints") or ():
        if constraint.get("topologyKey") != HOSTNAME:
            continue  # the model's nodes carry no other topology label: no domain, nothing counted
        counts = _matching(pod, constraint, nodes, placed)
        if constraint.get("whenUnsatisfiable") == "DoNotSchedule":
            domain = fits if constraint.get("nodeTaintsPolicy") == "Honor" else nodes
            least = min((counts[n.name] for n in domain), default=0)
            skew = int(constraint.get("maxSkew") or 1)
            fits = [n for n in fits if counts[n.name] + 1 - least <= skew]
        else:
            spread += 1
            for n in fits:
                scores[n.name] += counts[n.name]
    if not fits:
        return None
    best = min(fits, key=lambda n: (scores[n.name] if spread else 0, load[n.name]))
    return best.name


def _matching(
    pod: K8sObject, constraint: Mapping, nodes: Sequence[Node], placed: Iterable[K8sObject]
) -> dict[str, int]:
    namespace = (pod.get("metadata") or {}).get("namespace")
    selector = constraint.get("labelSelector")
    counts = {n.name: 0 for n in nodes}
    for p in placed:
        meta = p.get("metadata") or {}
        node = p["spec"]["nodeName"]
        same_namespace = meta.get("namespace") == namespace and node in counts
        if same_namespace and selector is not None and matches(selector, meta.get("labels") or {}):
            counts[node] += 1
    return counts
