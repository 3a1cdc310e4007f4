"""What the route sources share: an object's namespace, name and labels, and the GIM Services a
route's (namespace, Service, port) references point at."""

from __future__ import annotations

from collections.abc import Iterable

from conformance.netpol.model import K8sObject, Service
from conformance.verify.discovery import ClusterView
from conformance.verify.evidence import Target, service_targets

BackendRef = tuple[str, str | None, int | str | None]  # (namespace, Service name, port)


def obj_ns(obj: K8sObject) -> str:
    return (obj.get("metadata") or {}).get("namespace") or "default"


def obj_name(obj: K8sObject) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def obj_labels(obj: K8sObject) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def gim_service(view: ClusterView, gim: str, namespace: str, name: str | None) -> Service | None:
    if namespace != gim or not name:
        return None
    return next((s for s in view.cluster.services if s.namespace == gim and s.name == name), None)


def route_targets(view: ClusterView, gim: str, refs: Iterable[BackendRef]) -> tuple[list[Target], list[str]]:
    """Targets of (namespace, Service name, port) references that point at GIM Services."""
    targets: list[Target] = []
    routed: list[str] = []
    for namespace, name, port in refs:
        svc = gim_service(view, gim, namespace, name)
        if svc is None:
            continue
        targets.extend(t for t in service_targets(view.cluster, svc, port) if t not in targets)
        shown = f"{gim}/{name}" + (f" port {port}" if port is not None else "")
        if shown not in routed:
            routed.append(shown)
    return targets, routed
