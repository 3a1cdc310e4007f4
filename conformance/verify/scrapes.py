"""Prometheus scraping that prometheus-operator does not describe: annotations, and Google Managed
Prometheus.

Annotations: GIM pods, or GIM Services, annotated ``prometheus.io/scrape: "true"`` (port from
``prometheus.io/port``, else every declared port) are scraped by the Prometheus servers whose
configuration keeps such targets. That is the default configuration of the prometheus-community
``prometheus`` Helm chart (values.yaml, jobs ``kubernetes-pods`` and ``kubernetes-service-endpoints``),
whose server pods carry ``app.kubernetes.io/name: prometheus`` and ``app.kubernetes.io/component:
server`` (chart v19+, templates/_helpers.tpl selectorLabels) or ``app: prometheus`` and ``component:
server`` (earlier charts). A Prometheus run by prometheus-operator (``operator.prometheus.io/name``)
does not read these annotations unless configured to, and is traced through ServiceMonitors instead.

Google Managed Prometheus (monitoring.googleapis.com/v1, cloud.google.com "Managed collection"): a
PodMonitoring selects pods of its own namespace (``spec.selector``, ``spec.endpoints[].port`` a name or
a number), a ClusterPodMonitoring pods of every namespace; the collectors that scrape them are the
``gmp-system`` DaemonSet pods labelled ``app.kubernetes.io/name: collector``.
"""

from __future__ import annotations

from collections.abc import Callable

from conformance.netpol.model import K8sObject, Pod
from conformance.netpol.selectors import matches as selector_matches
from conformance.verify.discovery import ClusterView
from conformance.verify.evidence import Add, Target, pod_key, pod_port, running_pods

SCRAPE_ANNOTATION = "prometheus.io/scrape"
PORT_ANNOTATION = "prometheus.io/port"
OPERATOR_LABEL = "operator.prometheus.io/name"
SERVER_LABELS = (
    {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"},
    {"app": "prometheus", "component": "server"},
)
GMP_NAMESPACE = "gmp-system"
GMP_COLLECTOR_LABELS = {"app.kubernetes.io/name": "collector"}


def _meta(obj: K8sObject) -> dict:
    return obj.get("metadata") or {}


def _annotations(obj: K8sObject) -> dict:
    return _meta(obj).get("annotations") or {}


def _ports(pod: Pod, port: int | str | None) -> list[Target]:
    if port is None:
        return [Target(pod.key, p.port, p.protocol) for p in pod.ports]
    number = pod_port(pod, port, "TCP")
    return [Target(pod.key, number)] if number is not None else []


def _annotated_targets(view: ClusterView, gim: str) -> tuple[list[Target], list[str]]:
    cluster = view.cluster
    pods = {p.key: p for p in cluster.pods_in(gim)}
    targets: list[Target] = []
    annotated: list[str] = []
    for raw in view.objects("Pod"):
        key = pod_key(raw)
        if key in pods and str(_annotations(raw).get(SCRAPE_ANNOTATION)).lower() == "true":
            targets += [
                t for t in _ports(pods[key], _annotations(raw).get(PORT_ANNOTATION)) if t not in targets
            ]
            annotated.append(f"pod {key}")
    for svc in cluster.services:
        raw = view.raw_object("Service", gim, svc.name) if svc.namespace == gim else None
        if raw is None or str(_annotations(raw).get(SCRAPE_ANNOTATION)).lower() != "true":
            continue
        port = _annotations(raw).get(PORT_ANNOTATION)
        for pod in (p for p in pods.values() if svc.selects(p)):
            if port is None:  # the endpoints of every Service port
                found = [
                    Target(pod.key, n, sp.protocol)
                    for sp in svc.ports
                    if (n := pod_port(pod, sp.target_port, sp.protocol)) is not None
                ]
            else:
                found = _ports(pod, port)
            targets += [t for t in found if t not in targets]
        annotated.append(f"Service {gim}/{svc.name}")
    return targets, annotated


def annotation_needs(view: ClusterView, gim: str, add: Add, unresolved: list[str], notes: list[str]) -> None:
    targets, annotated = _annotated_targets(view, gim)
    if not annotated:
        return
    what = f"{', '.join(annotated)} annotated {SCRAPE_ANNOTATION}=true"
    servers = [
        p
        for p in running_pods(view)
        if OPERATOR_LABEL not in (_meta(p).get("labels") or {})
        and any(
            all((_meta(p).get("labels") or {}).get(k) == v for k, v in labels.items())
            for labels in SERVER_LABELS
        )
    ]
    if not servers:
        unresolved.append(
            f"{what}, but no Prometheus server pod in the input (labels app.kubernetes.io/name=prometheus,"
            " app.kubernetes.io/component=server, or app=prometheus, component=server)"
        )
        return
    for pod in servers:
        evidence = f"{what}; Prometheus server pod {pod_key(pod)} (prometheus-community chart labels)"
        add(_meta(pod).get("namespace") or "default", evidence, [pod_key(pod)], targets)


def _pod_monitoring_targets(view: ClusterView, monitoring: K8sObject, gim: str) -> list[Target]:
    spec = monitoring.get("spec") or {}
    selector = spec.get("selector") or {}
    targets: list[Target] = []
    for pod in view.cluster.pods_in(gim):
        if not selector_matches(selector, pod.labels):
            continue
        for endpoint in spec.get("endpoints") or []:
            port = endpoint.get("port")
            if port is None:
                continue
            targets += [t for t in _ports(pod, port) if t not in targets]
    return targets


def gmp_needs(view: ClusterView, gim: str, add: Add, unresolved: list[str], notes: list[str]) -> None:
    collectors = [
        p
        for p in running_pods(view)
        if (_meta(p).get("namespace") == GMP_NAMESPACE)
        and all((_meta(p).get("labels") or {}).get(k) == v for k, v in GMP_COLLECTOR_LABELS.items())
    ]
    monitors = [
        ("PodMonitoring", m) for m in view.objects("PodMonitoring") if _meta(m).get("namespace") == gim
    ]
    monitors += [("ClusterPodMonitoring", m) for m in view.objects("ClusterPodMonitoring")]
    for kind, monitor in monitors:
        targets = _pod_monitoring_targets(view, monitor, gim)
        if not targets:
            continue
        where = f"{_meta(monitor).get('namespace')}/" if kind == "PodMonitoring" else ""
        what = f"{kind} {where}{_meta(monitor).get('name')} selects GIM pods"
        if not collectors:
            unresolved.append(
                f"{what}, but no GMP collector pod (app.kubernetes.io/name=collector) in {GMP_NAMESPACE}"
            )
            continue
        shown = ", ".join(pod_key(p) for p in collectors[:3]) + (" ..." if len(collectors) > 3 else "")
        add(
            GMP_NAMESPACE,
            f"{what}; scraped by the GMP collectors {shown}",
            [pod_key(p) for p in collectors],
            targets,
        )


SOURCES: tuple[Callable[[ClusterView, str, Add, list[str], list[str]], None], ...] = (
    annotation_needs,
    gmp_needs,
)
