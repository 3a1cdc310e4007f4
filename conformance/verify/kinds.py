"""The API kinds verify reads, where they are served, and the key each is filed under in a ClusterView.

Core kinds are always served. Every other kind comes from a CRD that a cluster may or may not have,
or may have only in part (prometheus-operator's ServiceMonitor without its PodMonitor is common): each
is looked up and listed on its own, and one that is not served is a note, never an error.

Two groups share a kind name: Istio's ``Gateway`` is filed as ``IstioGateway`` so that it never mixes
with the Gateway API's. Traefik's IngressRoute is served by ``traefik.io`` (v3, and v2.10+) and by the
older ``traefik.containo.us``; both are filed as ``IngressRoute``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One listable resource: ``key`` files it in the view; ``versions`` are tried in order."""

    kind: str
    group: str  # "" for the core group
    versions: tuple[str, ...]
    plural: str
    why: str  # what verify reads it for (RBAC messages)
    key: str = ""
    optional: bool = True
    scope: str = ""  # a human name of the API the kind belongs to, for notes

    @property
    def file_key(self) -> str:
        return self.key or self.kind

    @property
    def shown(self) -> str:
        """``PodMonitors (monitoring.coreos.com)``: how notes name the kind."""
        plural = self.kind + ("es" if self.kind.endswith(("s", "x")) else "s")
        return f"{plural} ({self.group})" if self.group else plural


GATEWAY_API = "gateway.networking.k8s.io"
ISTIO_NETWORKING = "networking.istio.io"
OPENSHIFT_ROUTE = "route.openshift.io"
TRAEFIK, TRAEFIK_LEGACY = "traefik.io", "traefik.containo.us"
PROMETHEUS_OPERATOR = "monitoring.coreos.com"
GOOGLE_MANAGED_PROMETHEUS = "monitoring.googleapis.com"

# The simulator's kinds and the core kinds the shadow diff reads (the typed lists in live.py).
CORE: tuple[Kind, ...] = (
    Kind("Namespace", "", ("v1",), "namespaces", "every namespace and its labels", optional=False),
    Kind("Pod", "", ("v1",), "pods", "GIM pods, controllers, Prometheus pods", optional=False),
    Kind("Service", "", ("v1",), "services", "GIM Services and their ports", optional=False),
    Kind("NetworkPolicy", "networking.k8s.io", ("v1",), "networkpolicies", "the policies", optional=False),
    Kind("Ingress", "networking.k8s.io", ("v1",), "ingresses", "Ingresses routing to GIM", optional=False),
    Kind(
        "IngressClass", "networking.k8s.io", ("v1",), "ingressclasses", "Ingress controllers", optional=False
    ),
)

# Versions: the served ones of each project's CRDs, newest first (Gateway API v1.2 standard and
# experimental channels; Istio 1.22+ serves v1 beside v1beta1/v1alpha3; Traefik v3 docs).
OPTIONAL: tuple[Kind, ...] = (
    Kind("ServiceMonitor", PROMETHEUS_OPERATOR, ("v1",), "servicemonitors", "ServiceMonitors selecting GIM"),
    Kind("PodMonitor", PROMETHEUS_OPERATOR, ("v1",), "podmonitors", "PodMonitors selecting GIM"),
    Kind("Prometheus", PROMETHEUS_OPERATOR, ("v1",), "prometheuses", "which Prometheus scrapes them"),
    Kind("HTTPRoute", GATEWAY_API, ("v1", "v1beta1"), "httproutes", "HTTPRoutes to GIM"),
    Kind("GRPCRoute", GATEWAY_API, ("v1", "v1alpha2"), "grpcroutes", "GRPCRoutes to GIM"),
    Kind("TLSRoute", GATEWAY_API, ("v1alpha3", "v1alpha2"), "tlsroutes", "TLSRoutes to GIM"),
    Kind("TCPRoute", GATEWAY_API, ("v1alpha2",), "tcproutes", "TCPRoutes to GIM"),
    Kind("Gateway", GATEWAY_API, ("v1", "v1beta1"), "gateways", "the Gateways routes attach to"),
    Kind("GatewayClass", GATEWAY_API, ("v1", "v1beta1"), "gatewayclasses", "which controller runs them"),
    Kind(
        "VirtualService",
        ISTIO_NETWORKING,
        ("v1", "v1beta1", "v1alpha3"),
        "virtualservices",
        "Istio VirtualServices to GIM",
    ),
    Kind(
        "Gateway",
        ISTIO_NETWORKING,
        ("v1", "v1beta1", "v1alpha3"),
        "gateways",
        "Istio Gateways and their selectors",
        key="IstioGateway",
    ),
    Kind("Route", OPENSHIFT_ROUTE, ("v1",), "routes", "OpenShift Routes to GIM"),
    Kind("IngressRoute", TRAEFIK, ("v1alpha1",), "ingressroutes", "Traefik IngressRoutes to GIM"),
    Kind("IngressRoute", TRAEFIK_LEGACY, ("v1alpha1",), "ingressroutes", "Traefik (v2) IngressRoutes"),
    Kind("PodMonitoring", GOOGLE_MANAGED_PROMETHEUS, ("v1",), "podmonitorings", "GMP PodMonitorings"),
    Kind(
        "ClusterPodMonitoring",
        GOOGLE_MANAGED_PROMETHEUS,
        ("v1",),
        "clusterpodmonitorings",
        "GMP ClusterPodMonitorings",
    ),
)
ALL: tuple[Kind, ...] = CORE + OPTIONAL
_BY_GROUP_KIND = {(k.group, k.kind): k for k in ALL}
FILE_KEYS = frozenset(k.file_key for k in ALL)


def group_of(api_version: object) -> str:
    """``networking.istio.io`` of ``networking.istio.io/v1beta1``; ``""`` for ``v1``."""
    text = str(api_version or "")
    return text.rpartition("/")[0]


def file_key(obj: Mapping) -> str | None:
    """The key an object read from a snapshot or the API is filed under, or None if verify ignores it.

    An object without apiVersion is filed by its kind alone (the first group that has it)."""
    kind = obj.get("kind")
    if not isinstance(kind, str):
        return None
    if "apiVersion" in obj:
        found = _BY_GROUP_KIND.get((group_of(obj.get("apiVersion")), kind))
        return found.file_key if found else None
    return next((k.file_key for k in ALL if k.kind == kind), None)


def pick_version(kind: Kind, served: Mapping[str, Iterable[str]]) -> str | None:
    """The version to list ``kind`` at, given ``served`` (group -> versions, preferred first), or None
    when its group is not served. A group served only at versions verify does not know is listed at
    the server's preferred version (its fields have stayed compatible across these projects' versions)."""
    versions = list(served.get(kind.group) or [])
    if not versions:
        return None
    return next((v for v in kind.versions if v in versions), versions[0])


def not_served_note(kinds: Iterable[Kind]) -> str:
    """``PodMonitors (monitoring.coreos.com) are not served: not checked``."""
    return f"{', '.join(k.shown for k in kinds)} are not served by this cluster: not checked"
