"""Gateway API (gateway.networking.k8s.io, spec v1.2): an HTTPRoute / GRPCRoute / TLSRoute / TCPRoute whose
``rules[].backendRefs`` name a GIM Service (group "" and kind Service by default, namespace defaulting
to the route's) attaches through ``spec.parentRefs`` (kind Gateway by default, namespace defaulting to
the route's) to Gateways; a Gateway's ``spec.gatewayClassName`` names a GatewayClass whose
``spec.controllerName`` says which implementation runs its data plane. The data-plane pods are found by
each project's documented labels (``DATA_PLANES``); GEP-1762 "In Cluster Gateway Deployments" (Standard)
requires in-cluster implementations to label what they generate with
``gateway.networking.k8s.io/gateway-name: <gateway>`` in the Gateway's namespace: that is the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.netpol.model import K8sObject, object_key
from conformance.verify.discovery import ClusterView
from conformance.verify.evidence import Add, Target, pod_key, running_pods
from conformance.verify.routes.common import BackendRef, obj_labels, obj_name, obj_ns, route_targets

GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"  # GEP-1762
GATEWAY_ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute")


@dataclass(frozen=True)
class DataPlane:
    """How one Gateway API implementation labels the pods that carry a Gateway's traffic."""

    project: str
    labels: tuple[tuple[str, str], ...]  # values may hold {name} and {namespace} of the Gateway
    same_namespace: bool  # the pods run in the Gateway's namespace
    doc: str
    host_network_advice: str = ""

    def selects(self, pod: K8sObject, gateway_ns: str, gateway: str) -> bool:
        if self.same_namespace and obj_ns(pod) != gateway_ns:
            return False
        pod_labels = obj_labels(pod)
        return all(pod_labels.get(k) == v.format(name=gateway, namespace=gateway_ns) for k, v in self.labels)

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
    gateway_ns, name = obj_ns(gateway), obj_name(gateway)
    pods = running_pods(view)
    for plane in planes:
        found = [p for p in pods if plane.selects(p, gateway_ns, name)]
        if found:
            return found, plane.describe(gateway_ns, name)
    return [], " or ".join(p.describe(gateway_ns, name) for p in planes)


def _backend_refs(route: K8sObject) -> list[BackendRef]:
    refs = []
    for rule in (route.get("spec") or {}).get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            if (ref.get("group") or "") != "" or (ref.get("kind") or "Service") != "Service":
                continue
            refs.append((ref.get("namespace") or obj_ns(route), ref.get("name"), ref.get("port")))
    return refs


def gateway_api_needs(view: ClusterView, gim: str, add: Add, unresolved: list[str], notes: list[str]) -> None:
    for kind in GATEWAY_ROUTE_KINDS:
        for route in view.objects(kind):
            targets, routed = route_targets(view, gim, _backend_refs(route))
            if not routed:
                continue
            what = f"{object_key(route)} routes to Service {', '.join(routed)}"
            if obj_ns(route) != gim:
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
                gateway_ns, gateway_name = parent.get("namespace") or obj_ns(route), parent.get("name")
                refused = not_accepted(route, gateway_ns, gateway_name)
                if refused:
                    notes.append(
                        f"{what}: Gateway {gateway_ns}/{gateway_name} has not accepted it ({refused}),"
                        " so it carries no traffic: not taken as evidence"
                    )
                    continue
                _gateway_chain(view, what, gateway_ns, gateway_name, targets, add, unresolved)


def not_accepted(route: K8sObject, gateway_ns: str, gateway_name: str | None) -> str | None:
    """The reason a Gateway reports in the route's ``status.parents[]`` for refusing it (condition
    Accepted=False, Gateway API RouteParentStatus), or None: accepted, or no status recorded."""
    for parent in (route.get("status") or {}).get("parents") or []:
        ref = parent.get("parentRef") or {}
        if ref.get("name") != gateway_name or (ref.get("namespace") or obj_ns(route)) != gateway_ns:
            continue
        for condition in parent.get("conditions") or []:
            if condition.get("type") == "Accepted" and condition.get("status") == "False":
                return str(condition.get("reason") or condition.get("message") or "Accepted=False")
    return None


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
    cls = next((c for c in view.objects("GatewayClass") if obj_name(c) == class_name), None)
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
            obj_ns(pod),
            f"{what} via {chain}; data plane pod {pod_key(pod)} ({how})",
            [pod_key(pod)],
            targets,
            advice,
        )
