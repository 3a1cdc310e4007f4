"""Routes into GIM other than Ingress, each traced to the pods that open the connections to GIM.

Every source here reads optional kinds: a cluster without them (or a snapshot that did not collect
them) simply has none, and ``kinds`` / ``discovery`` say so in the notes.

Gateway API (gateway.networking.k8s.io, spec v1.2): an HTTPRoute / GRPCRoute / TLSRoute / TCPRoute whose
``rules[].backendRefs`` name a GIM Service (group "" and kind Service by default, namespace defaulting
to the route's) attaches through ``spec.parentRefs`` (kind Gateway by default, namespace defaulting to
the route's) to Gateways; a Gateway's ``spec.gatewayClassName`` names a GatewayClass whose
``spec.controllerName`` says which implementation runs its data plane. The data-plane pods are found by
each project's documented labels (``DATA_PLANES``); GEP-1762 "In Cluster Gateway Deployments" (Standard)
requires in-cluster implementations to label what they generate with
``gateway.networking.k8s.io/gateway-name: <gateway>`` in the Gateway's namespace: that is the fallback.

Istio (networking.istio.io): a VirtualService's ``http|tcp|tls[].route[].destination.host`` names a
Service (a short name resolves in the VirtualService's own namespace, istio.io reference
"Virtual Service", ``Destination.host``); its ``spec.gateways`` (``ns/name`` or ``name`` in its own
namespace; absent means ``mesh``: sidecars only) name Gateways whose ``spec.selector`` picks the
ingress-gateway pods, in any namespace by default (istio.io "Gateway" reference; the scoping flag
PILOT_SCOPE_GATEWAY_TO_NAMESPACE is off by default).

OpenShift (route.openshift.io/v1): a Route in the GIM namespace (``spec.to`` and
``spec.alternateBackends`` name Services; ``spec.port.targetPort`` is a pod port, or a Service port
name) is served by the router pods of ``openshift-ingress``
(``ingresscontroller.operator.openshift.io/deployment-ingresscontroller`` label). A router published
with ``endpointPublishingStrategy: HostNetwork`` runs on the node's network: OpenShift documents the
namespace selector label ``policy-group.network.openshift.io/ingress: ""`` to admit it (OCP 4.7+
release notes, "Network policy supports selecting host network Ingress Controllers", OpenShift SDN and
OVN-Kubernetes; the older ``network.openshift.io/policy-group: ingress`` is kept as legacy).

Traefik (traefik.io/v1alpha1, Traefik v3 and v2.10+; traefik.containo.us/v1alpha1, older v2): an
IngressRoute's ``spec.routes[].services[]`` (kind Service by default, namespace defaulting to the
IngressRoute's) is served by the Traefik pods that run the Kubernetes CRD provider
(``--providers.kubernetescrd``; with ``--providers.kubernetescrd.ingressclass=X`` only the
IngressRoutes annotated ``kubernetes.io/ingress.class: X``), Traefik docs "Kubernetes IngressRoute"
and "Providers / Kubernetes CRD".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from conformance.netpol.model import K8sObject, Service, object_key
from conformance.netpol.selectors import matches as selector_matches
from conformance.verify.discovery import ClusterView
from conformance.verify.evidence import (
    Add,
    Target,
    container_tokens,
    flag_value,
    pod_key,
    running_pods,
    service_targets,
)

GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"  # GEP-1762
GATEWAY_ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute")
OPENSHIFT_ROUTER_NAMESPACE = "openshift-ingress"
OPENSHIFT_ROUTER_LABEL = "ingresscontroller.operator.openshift.io/deployment-ingresscontroller"
OPENSHIFT_INGRESS_POLICY_GROUP = "policy-group.network.openshift.io/ingress"
TRAEFIK_CRD_PROVIDER = "--providers.kubernetescrd"
TRAEFIK_CLASS_FLAG = "--providers.kubernetescrd.ingressclass"
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def _ns(obj: K8sObject) -> str:
    return (obj.get("metadata") or {}).get("namespace") or "default"


def _name(obj: K8sObject) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def _labels(obj: K8sObject) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


@dataclass(frozen=True)
class DataPlane:
    """How one Gateway API implementation labels the pods that carry a Gateway's traffic."""

    project: str
    labels: tuple[tuple[str, str], ...]  # values may hold {name} and {namespace} of the Gateway
    same_namespace: bool  # the pods run in the Gateway's namespace
    doc: str
    host_network_advice: str = ""

    def selects(self, pod: K8sObject, gateway_ns: str, gateway: str) -> bool:
        if self.same_namespace and _ns(pod) != gateway_ns:
            return False
        labels = _labels(pod)
        return all(labels.get(k) == v.format(name=gateway, namespace=gateway_ns) for k, v in self.labels)

    def describe(self, gateway_ns: str, gateway: str) -> str:
        shown = ", ".join(f"{k}={v.format(name=gateway, namespace=gateway_ns)}" for k, v in self.labels)
        where = " in the Gateway's namespace" if self.same_namespace else ""
        return f"{self.project} pods labelled {shown}{where}"


GEP_1762 = DataPlane(
    "GEP-1762 in-cluster gateway",
    ((GATEWAY_NAME_LABEL, "{name}"),),
    True,
    "gateway-api.sigs.k8s.io/geps/gep-1762",
)
# controllerName -> the data planes to look for, in order (the first that finds pods wins).
DATA_PLANES: dict[str, tuple[DataPlane, ...]] = {
    # istio.io "Kubernetes Gateway API" task, "Automated Deployment": a Deployment and Service per
    # Gateway in its namespace, labelled gateway.networking.k8s.io/gateway-name (istio.io/gateway-name
    # before Istio 1.24).
    "istio.io/gateway-controller": (
        GEP_1762,
        DataPlane("Istio (< 1.24)", (("istio.io/gateway-name", "{name}"),), True, "istio.io"),
    ),
    # gateway.envoyproxy.io "Deployment Mode": the Envoy fleet runs in Envoy Gateway's own namespace
    # (envoy-gateway-system by default), labelled with the owning Gateway's name and namespace.
    "gateway.envoyproxy.io/gatewayclass-controller": (
        DataPlane(
            "Envoy Gateway",
            (
                ("gateway.envoyproxy.io/owning-gateway-name", "{name}"),
                ("gateway.envoyproxy.io/owning-gateway-namespace", "{namespace}"),
            ),
            False,
            "gateway.envoyproxy.io/docs/tasks/operations/deployment-mode",
        ),
    ),
    # Contour's Gateway provisioner (projectcontour.io "Gateway API" guide, dynamic provisioning): Envoy
    # in the Gateway's namespace, labelled projectcontour.io/owning-gateway-name and the GEP-1762 label.
    "projectcontour.io/gateway-controller": (
        DataPlane(
            "Contour", (("projectcontour.io/owning-gateway-name", "{name}"),), True, "projectcontour.io"
        ),
        GEP_1762,
    ),
    # NGINX Gateway Fabric 2.x ("Gateway architecture"): an NGINX Deployment per Gateway in its
    # namespace (GEP-1762 label); 1.x ran NGINX inside the control-plane pod in nginx-gateway.
    "gateway.nginx.org/nginx-gateway-controller": (
        GEP_1762,
        DataPlane(
            "NGINX Gateway Fabric 1.x",
            (("app.kubernetes.io/name", "nginx-gateway"),),
            False,
            "docs.nginx.com/nginx-gateway-fabric/overview/gateway-architecture",
        ),
    ),
    # Cilium (docs.cilium.io "Gateway API Support"): no pod per Gateway; the node's Envoy (the
    # cilium-envoy DaemonSet, or the agent's embedded Envoy) proxies on the host network and reaches
    # backends with the reserved "ingress" identity, which no namespaceSelector matches.
    "io.cilium/gateway-controller": (
        DataPlane(
            "Cilium",
            (("k8s-app", "cilium-envoy"),),
            False,
            "docs.cilium.io/en/stable/network/servicemesh/gateway-api/gateway-api/",
            host_network_advice=(
                "Cilium's Envoy reaches backends with the reserved 'ingress' identity: allow it with a"
                " CiliumNetworkPolicy (fromEntities: [ingress]) beside GIM's policies"
            ),
        ),
        DataPlane("Cilium (embedded Envoy)", (("k8s-app", "cilium"),), False, "docs.cilium.io"),
    ),
}


def gateway_pods(
    view: ClusterView, gateway: K8sObject, controller: str | None
) -> tuple[list[K8sObject], str]:
    """The data-plane pods of ``gateway`` and how they were found (or what was looked for)."""
    planes = DATA_PLANES.get(controller or "", (GEP_1762,))
    gateway_ns, name = _ns(gateway), _name(gateway)
    pods = running_pods(view)
    for plane in planes:
        found = [p for p in pods if plane.selects(p, gateway_ns, name)]
        if found:
            return found, plane.describe(gateway_ns, name)
    return [], " or ".join(p.describe(gateway_ns, name) for p in planes)


def _gim_service(view: ClusterView, gim: str, namespace: str, name: str | None) -> Service | None:
    if namespace != gim or not name:
        return None
    return next((s for s in view.cluster.services if s.namespace == gim and s.name == name), None)


def _route_targets(
    view: ClusterView, gim: str, refs: Iterable[tuple[str, str | None, int | str | None]]
) -> tuple[list[Target], list[str]]:
    """Targets of (namespace, Service name, port) references that point at GIM Services."""
    targets: list[Target] = []
    routed: list[str] = []
    for namespace, name, port in refs:
        svc = _gim_service(view, gim, namespace, name)
        if svc is None:
            continue
        targets.extend(t for t in service_targets(view.cluster, svc, port) if t not in targets)
        shown = f"{gim}/{name}" + (f" port {port}" if port is not None else "")
        if shown not in routed:
            routed.append(shown)
    return targets, routed


# -- Gateway API --------------------------------------------------------------------------------------


def _backend_refs(route: K8sObject) -> list[tuple[str, str | None, int | str | None]]:
    refs = []
    for rule in (route.get("spec") or {}).get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            if (ref.get("group") or "") != "" or (ref.get("kind") or "Service") != "Service":
                continue
            refs.append((ref.get("namespace") or _ns(route), ref.get("name"), ref.get("port")))
    return refs


def gateway_api_needs(view: ClusterView, gim: str, add: Add, unresolved: list[str], notes: list[str]) -> None:
    for kind in GATEWAY_ROUTE_KINDS:
        for route in view.objects(kind):
            targets, routed = _route_targets(view, gim, _backend_refs(route))
            if not routed:
                continue
            what = f"{object_key(route)} routes to Service {', '.join(routed)}"
            if _ns(route) != gim:
                what += f" (cross-namespace: needs a ReferenceGrant in {gim})"
            parents = [
                p
                for p in (route.get("spec") or {}).get("parentRefs") or []
                if (p.get("group") or "gateway.networking.k8s.io") == "gateway.networking.k8s.io"
                and (p.get("kind") or "Gateway") == "Gateway"
            ]
            if not parents:
                unresolved.append(f"{what}, but has no parent Gateway")
            for parent in parents:
                _gateway_chain(
                    view,
                    what,
                    parent.get("namespace") or _ns(route),
                    parent.get("name"),
                    targets,
                    add,
                    unresolved,
                )


def _gateway_chain(
    view: ClusterView,
    what: str,
    gateway_ns: str,
    gateway_name: str | None,
    targets: list[Target],
    add: Add,
    unresolved: list[str],
) -> None:
    gateway = view.raw_object("Gateway", gateway_ns, str(gateway_name))
    if gateway is None:
        unresolved.append(f"{what}, through Gateway {gateway_ns}/{gateway_name}, which is not in the input")
        return
    class_name = (gateway.get("spec") or {}).get("gatewayClassName")
    cls = next((c for c in view.objects("GatewayClass") if _name(c) == class_name), None)
    controller = (cls.get("spec") or {}).get("controllerName") if cls else None
    chain = f"Gateway {gateway_ns}/{gateway_name} (class {class_name}" + (
        f", controller {controller})" if controller else ", a GatewayClass not in the input)"
    )
    pods, how = gateway_pods(view, gateway, controller)
    if not pods:
        unresolved.append(f"{what} via {chain}, but no pod in the input is its data plane (looked for {how})")
        return
    advice = next(
        (p.host_network_advice for p in DATA_PLANES.get(controller or "", ()) if p.host_network_advice), ""
    )
    for pod in pods:
        add(
            _ns(pod),
            f"{what} via {chain}; data plane pod {pod_key(pod)} ({how})",
            [pod_key(pod)],
            targets,
            advice,
        )


# -- Istio --------------------------------------------------------------------------------------------


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


def _virtual_service_refs(vs: K8sObject) -> list[tuple[str, str | None, int | str | None]]:
    spec = vs.get("spec") or {}
    refs = []
    for section in ("http", "tcp", "tls"):
        for rule in spec.get(section) or []:
            for route in rule.get("route") or []:
                destination = route.get("destination") or {}
                found = istio_host(str(destination.get("host") or ""), _ns(vs))
                if found:
                    port = (destination.get("port") or {}).get("number")
                    refs.append((found[0], found[1], port))
    return refs


def istio_needs(view: ClusterView, gim: str, add: Add, unresolved: list[str], notes: list[str]) -> None:
    for vs in view.objects("VirtualService"):
        targets, routed = _route_targets(view, gim, _virtual_service_refs(vs))
        if not routed:
            continue
        what = f"VirtualService {_ns(vs)}/{_name(vs)} routes to Service {', '.join(routed)}"
        for ref in (vs.get("spec") or {}).get("gateways") or ["mesh"]:
            if ref == "mesh":
                continue  # sidecar-to-sidecar: the callers are the clients themselves, not a gateway
            gateway_ns, _, name = ref.rpartition("/")
            gateway_ns = gateway_ns or _ns(vs)
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
                if selector and selector_matches({"matchLabels": selector}, _labels(p))
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
                add(_ns(pod), evidence, [pod_key(pod)], targets)
    _sidecar_note(view, gim, notes)


def _sidecar_note(view: ClusterView, gim: str, notes: list[str]) -> None:
    """GIM in the Istio mesh: NetworkPolicy still applies at L3/L4 to sidecar traffic (istio.io
    "Security / Network policy": Istio authorization is applied on top of, not instead of, it)."""
    ns_labels = view.cluster.namespaces[gim].labels if gim in view.cluster.namespaces else {}
    injected = ns_labels.get("istio-injection") == "enabled" or "istio.io/rev" in ns_labels
    pods = [p for p in view.objects("Pod") if _ns(p) == gim]
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


# -- OpenShift ---------------------------------------------------------------------------------------


def _openshift_route_targets(view: ClusterView, gim: str, route: K8sObject) -> tuple[list[Target], list[str]]:
    spec = route.get("spec") or {}
    backends = [spec.get("to") or {}, *(spec.get("alternateBackends") or [])]
    target_port = (spec.get("port") or {}).get("targetPort")
    targets: list[Target] = []
    routed = []
    for backend in backends:
        if (backend.get("kind") or "Service") != "Service":
            continue
        svc = _gim_service(view, gim, gim, backend.get("name"))
        if svc is None:
            continue
        if isinstance(target_port, int) or (isinstance(target_port, str) and target_port.isdigit()):
            found = [Target(p.key, int(target_port)) for p in view.cluster.pods if svc.selects(p)]
        else:  # a name: the Service port (and endpoint port) of that name
            found = service_targets(view.cluster, svc, target_port)
        targets.extend(t for t in found if t not in targets)
        routed.append(f"{gim}/{svc.name}" + (f" targetPort {target_port}" if target_port is not None else ""))
    return targets, routed


def openshift_needs(view: ClusterView, gim: str, add: Add, unresolved: list[str], notes: list[str]) -> None:
    advice = (
        "OpenShift documents the namespace selector label"
        f' {OPENSHIFT_INGRESS_POLICY_GROUP}: "" for the router on the host network: add an extraPolicies'
        f' entry allowing ingress from namespaceSelector matchLabels {{{OPENSHIFT_INGRESS_POLICY_GROUP}: ""}}'
        " (OpenShift SDN and OVN-Kubernetes, OCP 4.7+; the legacy label network.openshift.io/policy-group:"
        " ingress also works on OpenShift SDN)"
    )
    for route in view.objects("Route"):
        if _ns(route) != gim:
            continue  # a Route serves Services of its own namespace
        targets, routed = _openshift_route_targets(view, gim, route)
        if not routed:
            continue
        what = f"Route {gim}/{_name(route)} routes to Service {', '.join(routed)}"
        routers = [
            p
            for p in running_pods(view)
            if _ns(p) == OPENSHIFT_ROUTER_NAMESPACE and OPENSHIFT_ROUTER_LABEL in _labels(p)
        ]
        if not routers:
            unresolved.append(
                f"{what}, but no router pod ({OPENSHIFT_ROUTER_LABEL}) in {OPENSHIFT_ROUTER_NAMESPACE}"
            )
            continue
        for pod in routers:
            controller = _labels(pod)[OPENSHIFT_ROUTER_LABEL]
            evidence = f"{what}; served by router pod {pod_key(pod)} (IngressController {controller})"
            add(OPENSHIFT_ROUTER_NAMESPACE, evidence, [pod_key(pod)], targets, advice)


# -- Traefik -----------------------------------------------------------------------------------------


def _traefik_refs(
    route: K8sObject, unresolved: list[str], gim: str
) -> list[tuple[str, str | None, int | str | None]]:
    refs = []
    for rule in (route.get("spec") or {}).get("routes") or []:
        for svc in rule.get("services") or []:
            namespace = svc.get("namespace") or _ns(route)
            if (svc.get("kind") or "Service") != "Service":
                if namespace == gim:
                    unresolved.append(
                        f"IngressRoute {_ns(route)}/{_name(route)} uses TraefikService {svc.get('name')}:"
                        " weighted and mirrored services are not followed"
                    )
                continue
            refs.append((namespace, svc.get("name"), svc.get("port")))
    return refs


def _traefik_class(pod: K8sObject) -> tuple[bool, str | None]:
    """(runs the CRD provider, the ingress class it is limited to)."""
    for tokens in container_tokens(pod):
        if any(t.split("=")[0].startswith(TRAEFIK_CRD_PROVIDER) for t in tokens):
            return True, flag_value(tokens, TRAEFIK_CLASS_FLAG)
    return False, None


def traefik_needs(view: ClusterView, gim: str, add: Add, unresolved: list[str], notes: list[str]) -> None:
    for route in view.objects("IngressRoute"):
        targets, routed = _route_targets(view, gim, _traefik_refs(route, unresolved, gim))
        if not routed:
            continue
        what = (
            f"IngressRoute ({route.get('apiVersion')}) {_ns(route)}/{_name(route)}"
            f" routes to Service {', '.join(routed)}"
        )
        wanted = ((route.get("metadata") or {}).get("annotations") or {}).get(INGRESS_CLASS_ANNOTATION)
        serving = []
        for pod in running_pods(view):
            crd, only = _traefik_class(pod)
            if crd and (only is None or only == wanted):
                serving.append((pod, f"{TRAEFIK_CRD_PROVIDER}" + (f", ingressclass {only}" if only else "")))
        if not serving:
            unresolved.append(
                f"{what}, but no Traefik pod runs the Kubernetes CRD provider ({TRAEFIK_CRD_PROVIDER})"
            )
            continue
        for pod, how in serving:
            add(_ns(pod), f"{what}; served by Traefik pod {pod_key(pod)} ({how})", [pod_key(pod)], targets)


SOURCES: tuple[Callable[[ClusterView, str, Add, list[str], list[str]], None], ...] = (
    gateway_api_needs,
    istio_needs,
    openshift_needs,
    traefik_needs,
)
