"""What verify reads from a cluster: the Cluster model, plus the raw objects the model leaves out.

The simulator needs only namespaces, pods, Services and NetworkPolicies (``conformance.netpol.snapshot``
builds those). The shadow diff also needs Ingresses, IngressClasses, the Prometheus-operator objects,
pods' container args and Services' labels, so the raw documents are kept beside the model. A live run
lists the same kinds from the API and goes through the same code (see ``conformance.verify.live``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from conformance.errors import UserError
from conformance.netpol.model import Cluster, K8sObject
from conformance.netpol.snapshot import STDIN, cluster_from_objects, read_documents, source_name
from conformance.verify.kinds import OPTIONAL, file_key

MODEL_KINDS = frozenset({"Namespace", "Pod", "Service", "NetworkPolicy"})


@dataclass
class ClusterView:
    """A cluster as verify sees it. ``raw`` holds every object read, by its ``kinds.file_key``, as the
    API prints it."""

    cluster: Cluster
    raw: dict[str, list[K8sObject]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source: str = ""

    def objects(self, kind: str) -> list[K8sObject]:
        return self.raw.get(kind, [])

    def raw_object(self, kind: str, namespace: str, name: str) -> K8sObject | None:
        for obj in self.objects(kind):
            meta = obj.get("metadata") or {}
            if meta.get("name") == name and (meta.get("namespace") or "default") == namespace:
                return obj
        return None

    def has_kind(self, kind: str) -> bool:
        return kind in self.raw


def view_from_objects(
    pairs: Iterable[tuple[str, K8sObject]], *, source: str, listed_kinds: Iterable[str] = ()
) -> ClusterView:
    """The view of (source file, object) pairs. ``listed_kinds`` are kinds that were read even if none
    exists (a live run lists them), so "no ServiceMonitor" differs from "ServiceMonitors not collected".
    """
    notes: list[str] = []
    raw: dict[str, list[K8sObject]] = {kind: [] for kind in listed_kinds}
    model_pairs: list[tuple[str, K8sObject]] = []
    ignored: dict[str, int] = {}
    for origin, obj in pairs:
        kind = obj.get("kind") if isinstance(obj, dict) else None
        key = file_key(obj) if isinstance(obj, dict) else None
        if kind in MODEL_KINDS and key == kind:
            model_pairs.append((origin, obj))
            raw.setdefault(kind, []).append(obj)
        elif key is not None:
            raw.setdefault(key, []).append(obj)
        else:
            ignored[str(kind)] = ignored.get(str(kind), 0) + 1
    cluster = cluster_from_objects(model_pairs, notes=notes.append)
    for kind, count in sorted(ignored.items()):
        notes.append(f"ignored {count} {kind} object{'s' if count != 1 else ''} (verify does not use them)")
    return ClusterView(cluster=cluster, raw=raw, notes=notes, source=source)


def load_view(paths: Sequence[str]) -> ClusterView:
    """The view of snapshot files (``kubectl get ns,pods,svc,netpol,ingress,ingressclass -A -o yaml``)."""
    if not paths:
        raise UserError("give at least one snapshot file", source="--snapshot")
    if list(paths).count(STDIN) > 1:
        raise UserError("stdin ('-') can be read only once", source="--snapshot")
    pairs = [(source_name(path), obj) for path in paths for obj in read_documents(path)]
    view = view_from_objects(pairs, source=", ".join(source_name(p) for p in paths))
    absent = sorted({k.shown for k in OPTIONAL if not view.has_kind(k.file_key)})
    if absent:
        view.notes.append(
            "not in the input, so not checked: " + ", ".join(absent) + " (if your cluster has them, export"
            " each API group with its own kubectl get: see gim-netpol verify --help)"
        )
    if not view.objects("Namespace"):
        view.notes.append(
            "the snapshot has no Namespace objects: namespaces are known only from the objects in them,"
            " without their labels (add 'ns' to the kubectl get command)"
        )
    return view
