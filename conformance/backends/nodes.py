"""Which nodes can run a pod, as kube-scheduler's filters decide it, and why the others cannot.

Followed (Kubernetes v1.34):

- taints and tolerations (kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/; the
  matching is k8s.io/api core/v1 toleration.go ``Toleration.ToleratesTaint``): a ``NoSchedule`` or
  ``NoExecute`` taint keeps a pod off the node unless one of its tolerations matches it (the same effect,
  or none; the same key, or none; operator ``Exists``, or ``Equal``, the default, with the same value).
  ``PreferNoSchedule`` is a preference of the scoring, never a filter;
- ``kubectl cordon`` sets ``spec.unschedulable``: the NodeUnschedulable filter keeps off the node every
  pod that does not tolerate ``node.kubernetes.io/unschedulable:NoSchedule``;
- a node whose ``Ready`` condition is not ``True`` is tainted ``node.kubernetes.io/not-ready`` (or
  ``unreachable``) ``NoSchedule`` by the node lifecycle controller
  (kubernetes.io/docs/reference/labels-annotations-taints/): read here from the condition itself;
- the DefaultTolerationSeconds admission plugin gives every pod tolerations of ``not-ready`` and
  ``unreachable`` for ``NoExecute`` (300 s): they keep a running pod on a node that fails, they never let
  a new pod be scheduled on a NotReady node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from conformance.netpol.model import K8sObject

FILTERING_EFFECTS = ("NoSchedule", "NoExecute")
UNSCHEDULABLE_TAINT_KEY = "node.kubernetes.io/unschedulable"
# What the DefaultTolerationSeconds admission plugin adds to every pod that does not set them
# (kubernetes plugin/pkg/admission/defaulttolerationseconds).
ADMISSION_TOLERATIONS: tuple[Mapping[str, object], ...] = tuple(
    {"key": f"node.kubernetes.io/{k}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    for k in ("not-ready", "unreachable")
)


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str = ""

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


@dataclass(frozen=True)
class Node:
    name: str
    ready: bool = True
    unschedulable: bool = False  # cordoned
    taints: tuple[Taint, ...] = ()


@dataclass(frozen=True)
class Schedulable:
    """The nodes that can run a pod, and each other node with why it cannot."""

    nodes: tuple[str, ...]
    excluded: tuple[tuple[str, str], ...] = ()


def node_from_object(obj: K8sObject) -> Node:
    """A Node as the API serves it (``kubectl get node -o json``)."""
    spec = obj.get("spec") or {}
    conditions = (obj.get("status") or {}).get("conditions") or ()
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = tuple(
        Taint(str(t.get("key") or ""), str(t.get("effect") or ""), str(t.get("value") or ""))
        for t in spec.get("taints") or ()
    )
    return Node(str((obj.get("metadata") or {}).get("name")), ready, bool(spec.get("unschedulable")), taints)


def tolerates(toleration: Mapping[str, object], taint: Taint) -> bool:
    """``Toleration.ToleratesTaint`` (k8s.io/api core/v1 toleration.go)."""
    effect, key = toleration.get("effect") or "", toleration.get("key") or ""
    if effect and effect != taint.effect:
        return False
    if key and key != taint.key:
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == taint.value


def why_not(node: Node, tolerations: Sequence[Mapping[str, object]] = ()) -> str | None:
    """Why a pod with ``tolerations`` (plus the admission defaults) cannot be scheduled on ``node``; None
    when it can."""
    every = (*tolerations, *ADMISSION_TOLERATIONS)
    if not node.ready:
        return "NotReady"
    unschedulable = Taint(UNSCHEDULABLE_TAINT_KEY, "NoSchedule")
    if node.unschedulable and not any(tolerates(t, unschedulable) for t in every):
        return "cordoned (spec.unschedulable)"
    for taint in node.taints:
        if taint.effect in FILTERING_EFFECTS and not any(tolerates(t, taint) for t in every):
            return f"taint {taint}"
    return None


def schedulable(nodes: Iterable[Node], tolerations: Sequence[Mapping[str, object]] = ()) -> Schedulable:
    """The nodes a pod with ``tolerations`` can be scheduled on, in the order given."""
    fit: list[str] = []
    excluded: list[tuple[str, str]] = []
    for node in nodes:
        why = why_not(node, tolerations)
        if why is None:
            fit.append(node.name)
        else:
            excluded.append((node.name, why))
    return Schedulable(tuple(fit), tuple(excluded))
