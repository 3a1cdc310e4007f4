"""The namespaces of this tool's own runs, left out of what verify reports.

A conformance run, a verify run and its CNI canaries label what they create (``conformance.gitguardian.com/
run``, ``.../canary``), and namespaced verify's probe namespaces carry ``.../probe-namespace``. They are
not the customer's traffic sources: an earlier run's namespaces still Terminating, or the probe
namespaces, would otherwise show in the matrix as namespaces GIM's policies block. The report says how
many were left out.
"""

from __future__ import annotations

from conformance.netpol.model import Cluster, K8sObject
from conformance.suite.probe_namespaces import PROBE_NAMESPACE_LABEL
from conformance.verify.discovery import ClusterView
from conformance.verify.placement import CANARY_LABEL, RUN_LABEL

OWN_LABELS = (RUN_LABEL, CANARY_LABEL, PROBE_NAMESPACE_LABEL)
SHOWN = 5


def own_namespaces(view: ClusterView) -> dict[str, str]:
    """The namespaces of this tool's runs -> their phase (``Active``, ``Terminating``)."""
    phases = {
        (ns.get("metadata") or {}).get("name"): ((ns.get("status") or {}).get("phase") or "Active")
        for ns in view.objects("Namespace")
    }
    return {
        name: phases.get(name, "Active")
        for name, ns in view.cluster.namespaces.items()
        if any(label in ns.labels for label in OWN_LABELS)
    }


def _namespace_of(obj: K8sObject) -> str | None:
    meta = obj.get("metadata") or {}
    return meta.get("name") if obj.get("kind") == "Namespace" else meta.get("namespace")


def leave_out_own_namespaces(view: ClusterView) -> ClusterView:
    """``view`` without the namespaces of this tool's runs (and what is in them), with a note saying how
    many were left out."""
    own = own_namespaces(view)
    if not own:
        return view
    cluster = view.cluster
    kept = Cluster(
        {n: ns for n, ns in cluster.namespaces.items() if n not in own},
        [p for p in cluster.pods if p.namespace not in own],
        [s for s in cluster.services if s.namespace not in own],
        [p for p in cluster.policies if (p.get("metadata") or {}).get("namespace") not in own],
    )
    raw = {kind: [o for o in objs if _namespace_of(o) not in own] for kind, objs in view.raw.items()}
    terminating = sum(1 for phase in own.values() if phase == "Terminating")
    names = sorted(own)
    shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
    note = (
        f"left out {len(own)} namespace{'s' if len(own) != 1 else ''} of this tool's own runs"
        f" ({terminating} still Terminating; labelled {', '.join(OWN_LABELS)}): {shown}"
    )
    return ClusterView(kept, raw, [*view.notes, note], view.source)
