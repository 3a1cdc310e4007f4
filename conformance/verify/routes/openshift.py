"""OpenShift (route.openshift.io/v1): a Route in the GIM namespace (``spec.to`` and
``spec.alternateBackends`` name Services; ``spec.port.targetPort`` is a pod port, or a Service port
name) is served by the router pods of ``openshift-ingress``
(``ingresscontroller.operator.openshift.io/deployment-ingresscontroller`` label). A router published
with ``endpointPublishingStrategy: HostNetwork`` runs on the node's network: OpenShift documents the
namespace selector label ``policy-group.network.openshift.io/ingress: ""`` to admit it (OCP 4.7+
release notes, "Network policy supports selecting host network Ingress Controllers", OpenShift SDN and
OVN-Kubernetes; the older ``network.openshift.io/policy-group: ingress`` is kept as legacy).
"""

from __future__ import annotations

from conformance.netpol.model import K8sObject
from conformance.verify.discovery import ClusterView
from conformance.verify.evidence import Add, Target, pod_key, running_pods, service_targets
from conformance.verify.routes.common import gim_service, obj_labels, obj_name, obj_ns

OPENSHIFT_ROUTER_NAMESPACE = "openshift-ingress"
OPENSHIFT_ROUTER_LABEL = "ingresscontroller.operator.openshift.io/deployment-ingresscontroller"
OPENSHIFT_INGRESS_POLICY_GROUP = "policy-group.network.openshift.io/ingress"


def _openshiftroute_targets(view: ClusterView, gim: str, route: K8sObject) -> tuple[list[Target], list[str]]:
    spec = route.get("spec") or {}
    backends = [spec.get("to") or {}, *(spec.get("alternateBackends") or [])]
    target_port = (spec.get("port") or {}).get("targetPort")
    targets: list[Target] = []
    routed = []
    for backend in backends:
        if (backend.get("kind") or "Service") != "Service":
            continue
        svc = gim_service(view, gim, gim, backend.get("name"))
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
        if obj_ns(route) != gim:
            continue  # a Route serves Services of its own namespace
        targets, routed = _openshiftroute_targets(view, gim, route)
        if not routed:
            continue
        what = f"Route {gim}/{obj_name(route)} routes to Service {', '.join(routed)}"
        routers = [
            p
            for p in running_pods(view)
            if obj_ns(p) == OPENSHIFT_ROUTER_NAMESPACE and OPENSHIFT_ROUTER_LABEL in obj_labels(p)
        ]
        if not routers:
            unresolved.append(
                f"{what}, but no router pod ({OPENSHIFT_ROUTER_LABEL}) in {OPENSHIFT_ROUTER_NAMESPACE}"
            )
            continue
        for pod in routers:
            controller = obj_labels(pod)[OPENSHIFT_ROUTER_LABEL]
            evidence = f"{what}; served by router pod {pod_key(pod)} (IngressController {controller})"
            add(OPENSHIFT_ROUTER_NAMESPACE, evidence, [pod_key(pod)], targets, advice)
