"""Traefik (traefik.io/v1alpha1, Traefik v3 and v2.10+; traefik.containo.us/v1alpha1, older v2): an
IngressRoute's ``spec.routes[].services[]`` (kind Service by default, namespace defaulting to the
IngressRoute's) is served by the Traefik pods that run the Kubernetes CRD provider
(``--providers.kubernetescrd``; with ``--providers.kubernetescrd.ingressclass=X`` only the
IngressRoutes annotated ``kubernetes.io/ingress.class: X``), Traefik docs "Kubernetes IngressRoute"
and "Providers / Kubernetes CRD".
"""

from __future__ import annotations

from conformance.netpol.model import K8sObject
from conformance.verify.discovery import ClusterView
from conformance.verify.evidence import Add, container_tokens, flag_value, pod_key, running_pods
from conformance.verify.routes.common import BackendRef, obj_name, obj_ns, route_targets

TRAEFIK_CRD_PROVIDER = "--providers.kubernetescrd"
TRAEFIK_CLASS_FLAG = "--providers.kubernetescrd.ingressclass"
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def _traefik_refs(route: K8sObject, unresolved: list[str], gim: str) -> list[BackendRef]:
    refs = []
    for rule in (route.get("spec") or {}).get("routes") or []:
        for svc in rule.get("services") or []:
            namespace = svc.get("namespace") or obj_ns(route)
            if (svc.get("kind") or "Service") != "Service":
                if namespace == gim:
                    unresolved.append(
                        f"IngressRoute {obj_ns(route)}/{obj_name(route)} uses TraefikService"
                        f" {svc.get('name')}: weighted and mirrored services are not followed"
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
        targets, routed = route_targets(view, gim, _traefik_refs(route, unresolved, gim))
        if not routed:
            continue
        what = (
            f"IngressRoute ({route.get('apiVersion')}) {obj_ns(route)}/{obj_name(route)}"
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
            add(obj_ns(pod), f"{what}; served by Traefik pod {pod_key(pod)} ({how})", [pod_key(pod)], targets)
