"""Istio (networking.istio.io): a VirtualService's ``http|tcp|tls[].route[].destination.host`` names a
Service (a short name resolves in the VirtualService's own namespace, istio.io reference
"Virtual Service", ``Destination.host``); its ``spec.gateways`` (``ns/name`` or ``name`` in its own
namespace; absent means ``mesh``: sidecars only) name Gateways whose ``spec.selector`` picks the
ingress-gateway pods, in any namespace by default (istio.io "Gateway" reference; the scoping flag
PILOT_SCOPE_GATEWAY_TO_NAMESPACE is off by default).
"""

from __future__ import annotations

from conformance.netpol.model import K8sObject
from conformance.netpol.selectors import matches as selector_matches
from conformance.verify.discovery import ClusterView
from conformance.verify.evidence import Add, pod_key, running_pods
from conformance.verify.routes.common import BackendRef, obj_labels, obj_name, obj_ns, route_targets


def istio_host(host: str, namespace: str) -> tuple[str, str] | None:
    """(namespace, Service) a VirtualService destination host names, or None for a host outside the
    cluster's Services (a ServiceEntry, a wildcard)."""
    if "*" in host:
        return None
    parts = host.split(".")
    if len(parts) == 1:
        return namespace, parts[0]
    if len(parts) == 2 or (len(parts) >= 3 and parts[2] == "svc"):
        return parts[1], parts[0]
    return None


def _virtual_service_refs(vs: K8sObject) -> list[BackendRef]:
    spec = vs.get("spec") or {}
    refs = []
    for section in ("http", "tcp", "tls"):
        for rule in spec.get(section) or []:
            for route in rule.get("route") or []:
                destination = route.get("destination") or {}
                found = istio_host(str(destination.get("host") or ""), obj_ns(vs))
                if found:
                    port = (destination.get("port") or {}).get("number")
                    refs.append((found[0], found[1], port))
    return refs


def istio_needs(view: ClusterView, gim: str, add: Add, unresolved: list[str], notes: list[str]) -> None:
    for vs in view.objects("VirtualService"):
        targets, routed = route_targets(view, gim, _virtual_service_refs(vs))
        if not routed:
            continue
        what = f"VirtualService {obj_ns(vs)}/{obj_name(vs)} routes to Service {', '.join(routed)}"
        for ref in (vs.get("spec") or {}).get("gateways") or ["mesh"]:
            if ref == "mesh":
                continue  # sidecar-to-sidecar: the callers are the clients themselves, not a gateway
            gateway_ns, _, name = ref.rpartition("/")
            gateway_ns = gateway_ns or obj_ns(vs)
            gateway = view.raw_object("IstioGateway", gateway_ns, name)
            if gateway is None:
                unresolved.append(
                    f"{what}, through Istio Gateway {gateway_ns}/{name}, which is not in the input"
                )
                continue
            selector = (gateway.get("spec") or {}).get("selector") or {}
            pods = [
                p
                for p in running_pods(view)
                if selector and selector_matches({"matchLabels": selector}, obj_labels(p))
            ]
            shown = ", ".join(f"{k}={v}" for k, v in selector.items()) or "(none)"
            if not pods:
                unresolved.append(
                    f"{what} via Istio Gateway {gateway_ns}/{name}, but no pod matches its selector {shown}"
                )
                continue
            for pod in pods:
                via = f"via Istio Gateway {gateway_ns}/{name} (selector {shown})"
                evidence = f"{what} {via}; gateway pod {pod_key(pod)}"
                add(obj_ns(pod), evidence, [pod_key(pod)], targets)
    _sidecar_note(view, gim, notes)


def _sidecar_note(view: ClusterView, gim: str, notes: list[str]) -> None:
    """GIM in the Istio mesh: NetworkPolicy still applies at L3/L4 to sidecar traffic (istio.io
    "Security / Network policy": Istio authorization is applied on top of, not instead of, it)."""
    ns_labels = view.cluster.namespaces[gim].labels if gim in view.cluster.namespaces else {}
    injected = ns_labels.get("istio-injection") == "enabled" or "istio.io/rev" in ns_labels
    pods = [p for p in view.objects("Pod") if obj_ns(p) == gim]
    sidecars = [
        pod_key(p)
        for p in pods
        if "sidecar.istio.io/status" in ((p.get("metadata") or {}).get("annotations") or {})
        or any(c.get("name") == "istio-proxy" for c in (p.get("spec") or {}).get("containers") or [])
    ]
    if injected or sidecars:
        how = (
            "namespace labelled for sidecar injection"
            if injected
            else f"{len(sidecars)} pods with an istio-proxy"
        )
        notes.append(
            f"{gim} is in the Istio mesh ({how}): NetworkPolicies still filter mesh traffic at L3/L4, so"
            " ingress gateways and Prometheus scraping the sidecars (port 15020/15090) need allowedNamespaces"
            " like any client; istiod is reached by egress only"
        )
