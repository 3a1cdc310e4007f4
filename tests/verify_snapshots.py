"""Realistic cluster snapshots for the verify tests, as ``kubectl get ... -A -o yaml`` prints them.

The GIM namespace holds nginx, internal-api, public-api, app-exporter and worker pods with their
Services, and the policies the reference renderer gives for the values; ingress-nginx runs the
controller an Ingress of GIM uses; monitoring runs a prometheus-operator Prometheus whose
ServiceMonitor selects GIM's exporter; team-a and kube-system are unrelated; sandbox is empty.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from conformance.gim.examples import smtp_egress_policy
from conformance.gim.render import render
from conformance.gim.values import NetpolValues

GIM = "gitguardian"
PART_OF = {"app.kubernetes.io/name": "gitguardian", "app.kubernetes.io/instance": "gim"}
COMPONENT = "app.kubernetes.io/component"

_ip = itertools.count(10)


def next_ip(prefix: str = "10.244") -> str:
    n = next(_ip)
    return f"{prefix}.{n // 250 % 250}.{n % 250 + 1}"


def namespace(name: str, labels: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **(labels or {})}},
        "status": {"phase": "Active"},
    }


def pod(
    ns: str,
    name: str,
    labels: dict[str, str],
    ports: Sequence[tuple[int, str]] = (),
    *,
    args: Sequence[str] | None = None,
    host_network: bool = False,
    ip: str | None = None,
) -> dict:
    container: dict[str, Any] = {"name": "main", "image": "example/image:1"}
    if ports:
        container["ports"] = [{"containerPort": p, "name": n, "protocol": "TCP"} for p, n in ports]
    if args is not None:
        container["args"] = list(args)
    spec: dict[str, Any] = {"containers": [container], "nodeName": "worker-1"}
    if host_network:
        spec["hostNetwork"] = True
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": spec,
        "status": {"phase": "Running", "podIP": "172.18.0.3" if host_network else (ip or next_ip())},
    }


def service(
    ns: str, name: str, selector: dict[str, str], ports: Sequence[tuple[int, int | str, str]], labels=None
) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels or selector)},
        "spec": {
            "selector": dict(selector),
            "clusterIP": next_ip("10.96"),
            "ports": [{"port": p, "targetPort": t, "name": n, "protocol": "TCP"} for p, t, n in ports],
        },
    }


def ingress(
    ns: str,
    name: str,
    backends: Sequence[tuple[str, int | str]],
    *,
    class_name: str | None = "nginx",
    class_annotation: str | None = None,
) -> dict:
    paths = []
    for i, (svc, port) in enumerate(backends):
        key = "number" if isinstance(port, int) else "name"
        paths.append(
            {
                "path": f"/p{i}",
                "pathType": "Prefix",
                "backend": {"service": {"name": svc, "port": {key: port}}},
            }
        )
    spec: dict[str, Any] = {"rules": [{"host": "gim.example.com", "http": {"paths": paths}}]}
    if class_name:
        spec["ingressClassName"] = class_name
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if class_annotation:
        meta["annotations"] = {"kubernetes.io/ingress.class": class_annotation}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def ingress_class(name: str, controller: str, *, default: bool = False) -> dict:
    meta: dict[str, Any] = {"name": name}
    if default:
        meta["annotations"] = {"ingressclass.kubernetes.io/is-default-class": "true"}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": meta,
        "spec": {"controller": controller},
    }


NGINX_ARGS = (
    "/nginx-ingress-controller",
    "--publish-service=$(POD_NAMESPACE)/ingress-nginx-controller",
    "--election-id=ingress-nginx-leader",
    "--controller-class=k8s.io/ingress-nginx",
    "--ingress-class=nginx",
    "--configmap=$(POD_NAMESPACE)/ingress-nginx-controller",
)


def ingress_nginx(
    *, host_network: bool = False, args: Sequence[str] = NGINX_ARGS, ns: str = "ingress-nginx"
) -> list:
    labels = {"app.kubernetes.io/name": "ingress-nginx", COMPONENT: "controller"}
    return [
        namespace(ns),
        pod(
            ns,
            "ingress-nginx-controller-7d9f-abcde",
            labels,
            [(80, "http"), (443, "https")],
            args=args,
            host_network=host_network,
        ),
        service(ns, "ingress-nginx-controller", labels, [(80, "http", "http"), (443, "https", "https")]),
        ingress_class("nginx", "k8s.io/ingress-nginx"),
    ]


def service_monitor(
    ns: str, name: str, selector: dict, *, labels=None, namespace_selector=None, endpoints=None
) -> dict:
    spec: dict[str, Any] = {"selector": selector, "endpoints": endpoints or [{"port": "metrics"}]}
    if namespace_selector is not None:
        spec["namespaceSelector"] = namespace_selector
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels or {"release": "kube-prometheus"})},
        "spec": spec,
    }


def pod_monitor(
    ns: str, name: str, selector: dict, *, namespace_selector=None, port: str = "metrics"
) -> dict:
    spec: dict[str, Any] = {"selector": selector, "podMetricsEndpoints": [{"port": port}]}
    if namespace_selector is not None:
        spec["namespaceSelector"] = namespace_selector
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": name, "namespace": ns, "labels": {"release": "kube-prometheus"}},
        "spec": spec,
    }


_UNSET: Any = object()


def prometheus(ns: str, name: str, *, sm_selector=_UNSET, sm_ns_selector=_UNSET, pm_selector=_UNSET) -> dict:
    """A Prometheus; by default it selects monitors labelled release=kube-prometheus in every namespace."""
    release = {"matchLabels": {"release": "kube-prometheus"}}
    spec: dict[str, Any] = {}
    for field, value, default in (
        ("serviceMonitorSelector", sm_selector, release),
        ("serviceMonitorNamespaceSelector", sm_ns_selector, {}),
        ("podMonitorSelector", pm_selector, release),
        ("podMonitorNamespaceSelector", sm_ns_selector, {}),
    ):
        value = default if value is _UNSET else value
        if value is not None:
            spec[field] = value
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def monitoring(ns: str = "monitoring", **prometheus_fields: Any) -> list:
    return [
        namespace(ns),
        pod(
            ns,
            "prometheus-k8s-0",
            {"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": "k8s"},
            [(9090, "web")],
        ),
        prometheus(ns, "k8s", **prometheus_fields),
        service_monitor(
            ns,
            "gitguardian-app-exporter",
            {"matchLabels": {COMPONENT: "app-exporter"}},
            namespace_selector={"matchNames": [GIM]},
        ),
        pod(
            ns,
            "node-exporter-x1",
            {"app.kubernetes.io/name": "node-exporter"},
            [(9100, "metrics")],
            host_network=True,
        ),
    ]


def gim_workloads(ns: str = GIM) -> list:
    def labels(component: str) -> dict[str, str]:
        return {**PART_OF, COMPONENT: component}

    return [
        namespace(ns, {"team": "platform"}),
        pod(ns, "nginx-6c8d9-x2x4z", labels("nginx"), [(8080, "http"), (8443, "https")]),
        pod(ns, "internal-api-5f7b-k9m2p", labels("internal-api"), [(8000, "http")]),
        pod(ns, "public-api-7c4d-q8w3e", labels("public-api"), [(8001, "http")]),
        pod(ns, "app-exporter-55f-zz9", labels("app-exporter"), [(9808, "metrics")]),
        pod(ns, "worker-default-8b9-abcde", labels("worker")),
        service(ns, "nginx", labels("nginx"), [(80, "http", "http"), (443, "https", "https")]),
        service(ns, "internal-api", labels("internal-api"), [(8000, "http", "http")]),
        service(ns, "public-api", labels("public-api"), [(8001, 8001, "http")]),
        service(ns, "app-exporter", labels("app-exporter"), [(9808, "metrics", "metrics")]),
        ingress(ns, "gim", [("nginx", 80), ("public-api", "http")]),
    ]


def unrelated() -> list:
    return [
        namespace("team-a", {"team": "a"}),
        pod("team-a", "shop-6d5f-aaaa1", {"app": "shop"}, [(8080, "http")]),
        namespace("kube-system"),
        pod("kube-system", "coredns-5d78-bbbb2", {"k8s-app": "kube-dns"}, [(53, "dns-tcp")]),
        pod("kube-system", "kube-proxy-ccc3", {"k8s-app": "kube-proxy"}, host_network=True),
        namespace("sandbox"),
    ]


def policies(
    mode: str | None, allowed: Iterable[str] = (), extra: Sequence[dict] = (), ns: str = GIM
) -> list:
    """The reference renderer's policies; ``mode=None`` is networkPolicy.enabled=false."""
    if mode is None:
        values = NetpolValues()
    else:
        values = NetpolValues(
            enabled=True, mode=mode, allowed_namespaces=tuple(allowed), extra_policies=tuple(extra)
        )
    return render(values, ns)


def cluster(
    mode: str | None = "dryrun",
    allowed: Iterable[str] = (),
    *,
    extra: Sequence[dict] = (),
    host_network_controller: bool = False,
    with_monitoring: bool = True,
    **monitoring_fields: Any,
) -> list:
    """The whole realistic cluster, GIM's policies rendered for ``mode`` and ``allowed``."""
    objects = gim_workloads() + ingress_nginx(host_network=host_network_controller) + unrelated()
    if with_monitoring:
        objects += monitoring(**monitoring_fields)
    return objects + policies(mode, allowed, extra)


def as_list(objects: Sequence[dict]) -> dict:
    return {"apiVersion": "v1", "kind": "List", "items": list(objects), "metadata": {"resourceVersion": ""}}


def write(path: Path, objects: Sequence[dict]) -> Path:
    """Write ``objects`` as ``kubectl get -A -o yaml`` does (one ``kind: List``)."""
    path.write_text(yaml.safe_dump(as_list(objects), sort_keys=False), encoding="utf-8")
    return path


SMTP_EGRESS = smtp_egress_policy()  # the documentation's extraPolicies example


# -- routes other than Ingress, and scraping without prometheus-operator (issue 11) -----------------
# Field names follow each project's reference: Gateway API v1.2 (HTTPRoute/GRPCRoute v1, TLSRoute
# v1alpha3, TCPRoute v1alpha2), Istio networking.istio.io/v1, OpenShift route.openshift.io/v1,
# Traefik traefik.io/v1alpha1 (and traefik.containo.us/v1alpha1), GMP monitoring.googleapis.com/v1.

GATEWAY_API = "gateway.networking.k8s.io"
GATEWAY_VERSIONS = {"HTTPRoute": "v1", "GRPCRoute": "v1", "TLSRoute": "v1alpha3", "TCPRoute": "v1alpha2"}


def gateway_class(name: str, controller: str) -> dict:
    return {
        "apiVersion": f"{GATEWAY_API}/v1",
        "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {"controllerName": controller},
    }


def gateway(ns: str, name: str, class_name: str) -> dict:
    return {
        "apiVersion": f"{GATEWAY_API}/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "gatewayClassName": class_name,
            "listeners": [{"name": "https", "port": 443, "protocol": "HTTPS"}],
        },
    }


def gateway_route(
    kind: str,
    ns: str,
    name: str,
    backends: Sequence[tuple[str, int | None]],
    parent: tuple[str | None, str],
    *,
    backend_namespace: str | None = None,
) -> dict:
    parent_ns, parent_name = parent
    parent_ref: dict[str, Any] = {"name": parent_name}
    if parent_ns:
        parent_ref["namespace"] = parent_ns
    refs = []
    for svc, port in backends:
        ref: dict[str, Any] = {"name": svc}
        if port is not None:
            ref["port"] = port
        if backend_namespace:
            ref["namespace"] = backend_namespace
        refs.append(ref)
    rule: dict[str, Any] = {"backendRefs": refs}
    if kind == "HTTPRoute":
        rule["matches"] = [{"path": {"type": "PathPrefix", "value": "/"}}]
    spec: dict[str, Any] = {"parentRefs": [parent_ref], "rules": [rule]}
    if kind in ("HTTPRoute", "GRPCRoute", "TLSRoute"):
        spec["hostnames"] = ["gim.example.com"]
    return {
        "apiVersion": f"{GATEWAY_API}/{GATEWAY_VERSIONS[kind]}",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def virtual_service(ns: str, name: str, host: str, port: int | None, gateways: Sequence[str] | None) -> dict:
    destination: dict[str, Any] = {"host": host}
    if port is not None:
        destination["port"] = {"number": port}
    spec: dict[str, Any] = {"hosts": ["gim.example.com"], "http": [{"route": [{"destination": destination}]}]}
    if gateways is not None:
        spec["gateways"] = list(gateways)
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def istio_gateway(ns: str, name: str, selector: dict[str, str]) -> dict:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": dict(selector),
            "servers": [{"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"]}],
        },
    }


def openshift_route(ns: str, name: str, service_name: str, target_port: int | str | None) -> dict:
    spec: dict[str, Any] = {"host": "gim.apps.example.com", "to": {"kind": "Service", "name": service_name}}
    if target_port is not None:
        spec["port"] = {"targetPort": target_port}
    return {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def openshift_router(*, host_network: bool) -> list:
    labels = {
        "ingresscontroller.operator.openshift.io/deployment-ingresscontroller": "default",
        "ingresscontroller.operator.openshift.io/hash": "5b7c8d9f",
    }
    return [
        namespace(
            "openshift-ingress",
            {"policy-group.network.openshift.io/ingress": "", "network.openshift.io/policy-group": "ingress"},
        ),
        pod(
            "openshift-ingress",
            "router-default-6d8f9c-x7k2p",
            labels,
            [(80, "http"), (443, "https")],
            host_network=host_network,
        ),
    ]


def ingress_route(
    ns: str,
    name: str,
    services: Sequence[tuple[str, int | str]],
    *,
    group: str = "traefik.io",
    annotations=None,
) -> dict:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": f"{group}/v1alpha1",
        "kind": "IngressRoute",
        "metadata": meta,
        "spec": {
            "entryPoints": ["websecure"],
            "routes": [
                {
                    "match": "Host(`gim.example.com`)",
                    "kind": "Rule",
                    "services": [{"name": svc, "port": port} for svc, port in services],
                }
            ],
        },
    }


TRAEFIK_ARGS = (
    "--entryPoints.web.address=:8000/tcp",
    "--entryPoints.websecure.address=:8443/tcp",
    "--api.dashboard=true",
    "--providers.kubernetescrd",
    "--providers.kubernetesingress",
)


def traefik(args: Sequence[str] = TRAEFIK_ARGS, ns: str = "traefik") -> list:
    labels = {"app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": "traefik-traefik"}
    return [
        namespace(ns),
        pod(ns, "traefik-5f8d6c7b9-qwert", labels, [(8000, "web"), (8443, "websecure")], args=args),
    ]


def annotated(obj: dict, annotations: dict[str, str]) -> dict:
    out = {**obj, "metadata": {**obj["metadata"], "annotations": dict(annotations)}}
    return out


def pod_monitoring(ns: str, name: str, selector: dict, port: str | int) -> dict:
    return {
        "apiVersion": "monitoring.googleapis.com/v1",
        "kind": "PodMonitoring",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": selector, "endpoints": [{"port": port, "interval": "30s"}]},
    }


def gmp_collectors(nodes: int = 2) -> list:
    labels = {"app.kubernetes.io/name": "collector", "app.kubernetes.io/version": "0.13.0"}
    return [namespace("gmp-system")] + [
        pod("gmp-system", f"collector-{i:05d}", labels, [(19090, "prom-metrics")]) for i in range(nodes)
    ]
