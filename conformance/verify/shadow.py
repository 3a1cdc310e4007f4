"""Who needs to reach GIM, from what the API shows: Ingress controllers and Prometheus servers.

- An Ingress in the GIM namespace that routes to a GIM Service is served by the controller pods of its
  IngressClass: pods whose container args carry ``--controller-class`` equal to the IngressClass's
  ``spec.controller``, or ``--ingress-class`` equal to the class name. ingress-nginx's documented
  defaults (``--controller-class=k8s.io/ingress-nginx``, ``--ingress-class=nginx``, docs "Command line
  arguments", controller v1.x) apply to a ``/nginx-ingress-controller`` container that omits the flag.
- A ServiceMonitor / PodMonitor (monitoring.coreos.com/v1) that selects GIM Services / pods is scraped
  by the Prometheus objects that select it. Per the Prometheus CRD reference: a null
  ``serviceMonitorSelector`` selects no ServiceMonitor, an empty one all; a null
  ``serviceMonitorNamespaceSelector`` means the Prometheus's own namespace only, an empty one all
  namespaces (the same for the podMonitor fields).

The sources found this way are real pods; when a Prometheus has no pod in the snapshot, its namespace
is represented by a client pod with no labels. Host-network sources reach GIM from their node's IP,
which no namespaceSelector matches: they are reported apart, with a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from conformance.netpol.model import K8sObject, object_key
from conformance.netpol.selectors import matches as selector_matches
from conformance.netpol.snapshot import FINISHED_PHASES
from conformance.verify import routes, scrapes
from conformance.verify.discovery import ClusterView
from conformance.verify.evidence import (
    Add,
    Target,
    container_tokens,
    flag_value,
    pod_port,
    service_targets,
)

CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
NGINX_BINARY = "/nginx-ingress-controller"
NGINX_DEFAULTS = {"--controller-class": "k8s.io/ingress-nginx", "--ingress-class": "nginx"}
PROMETHEUS_POD_LABELS = ("operator.prometheus.io/name", "prometheus")


# One evidence source: (view, GIM namespace, add, unresolved, notes) -> None. Each reads the kinds it
# knows from the view and calls ``add`` for every namespace it shows needing GIM.
Source = Callable[[ClusterView, str, Add, list[str], list[str]], None]


@dataclass
class Need:
    """A namespace whose pods need to reach GIM, with the API objects that show it."""

    namespace: str
    evidence: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # pod keys; empty: any pod of the namespace
    targets: list[Target] = field(default_factory=list)

    advice: list[str] = field(default_factory=list)  # what to do if these sources use the host network
    observed: list[str] = field(default_factory=list)  # evidence from flow logs (traffic seen, not API)

    def merge(
        self,
        evidence: str,
        sources: list[str],
        targets: list[Target],
        advice: str = "",
        observed: bool = False,
    ) -> None:
        if advice and advice not in self.advice:
            self.advice.append(advice)
        listed = self.observed if observed else self.evidence
        if evidence not in listed:
            listed.append(evidence)
        self.sources.extend(s for s in sources if s not in self.sources)
        self.targets.extend(t for t in targets if t not in self.targets)


@dataclass
class Shadow:
    needs: list[Need]  # by namespace name, the GIM namespace excluded
    host_network: list[Need]  # sources that use the node's network: namespace rules do not apply
    unresolved: list[str]  # evidence of a need whose source namespace the API does not show
    notes: list[str]
    observed_only: list[Need] = field(default_factory=list)  # seen in flow logs, no API evidence

    def need(self, namespace: str) -> Need | None:
        return next((n for n in self.needs if n.namespace == namespace), None)


def _controller_match(pod: K8sObject, class_name: str, controller: str | None) -> str | None:
    """The flag by which this pod serves the class, or None."""
    for tokens in container_tokens(pod):
        nginx = any(t.endswith(NGINX_BINARY) for t in tokens)
        for flag, wanted in (("--controller-class", controller), ("--ingress-class", class_name)):
            if wanted is None:
                continue
            value = flag_value(tokens, flag)
            if value is None and nginx:
                value = NGINX_DEFAULTS[flag]
                if value == wanted:
                    return f"{NGINX_BINARY} default {flag}={value}"
            elif value == wanted:
                return f"{flag}={value}"
    return None


def _backends(ingress: K8sObject) -> list[tuple[str, int | str | None]]:
    """(service name, port number or name) of every backend of an Ingress (v1, or v1beta1 fields)."""
    spec = ingress.get("spec") or {}
    backends = []
    default = spec.get("defaultBackend") or spec.get("backend")
    if default:
        backends.append(default)
    for rule in spec.get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            if path.get("backend"):
                backends.append(path["backend"])
    out: list[tuple[str, int | str | None]] = []
    for b in backends:
        service = b.get("service")
        if service:
            port = service.get("port") or {}
            out.append((service.get("name"), port.get("number") or port.get("name")))
        elif b.get("serviceName"):
            out.append((b["serviceName"], b.get("servicePort")))
    return [(name, port) for name, port in out if name]


def _ingress_class(view: ClusterView, ingress: K8sObject) -> tuple[str | None, str | None, str]:
    """(class name, controller, how the class was found)."""
    spec = ingress.get("spec") or {}
    annotations = (ingress.get("metadata") or {}).get("annotations") or {}
    name, how = spec.get("ingressClassName"), "spec.ingressClassName"
    if not name and annotations.get(CLASS_ANNOTATION):
        name, how = annotations[CLASS_ANNOTATION], f"annotation {CLASS_ANNOTATION}"
    classes = view.objects("IngressClass")
    if not name:
        defaults = [
            c
            for c in classes
            if ((c.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
        ]
        if len(defaults) == 1:
            name, how = defaults[0]["metadata"]["name"], "the default IngressClass"
    if not name:
        return None, None, "no class"
    cls = next((c for c in classes if (c.get("metadata") or {}).get("name") == name), None)
    controller = (cls.get("spec") or {}).get("controller") if cls else None
    return name, controller, how


def ingress_needs(view: ClusterView, gim: str, add: Add, unresolved: list[str], notes: list[str]) -> None:
    cluster = view.cluster
    services = {s.name: s for s in cluster.services if s.namespace == gim}
    for ingress in view.objects("Ingress"):
        if ((ingress.get("metadata") or {}).get("namespace") or "default") != gim:
            continue  # an Ingress routes only to Services of its own namespace
        targets: list[Target] = []
        routed = []
        for name, port in _backends(ingress):
            svc = services.get(name)
            if svc is not None:
                targets.extend(t for t in service_targets(cluster, svc, port) if t not in targets)
                routed.append(f"{gim}/{name}" + (f" port {port}" if port is not None else ""))
        if not routed:
            continue
        class_name, controller, how = _ingress_class(view, ingress)
        what = f"{object_key(ingress)} routes to Service {', '.join(routed)}"
        if class_name is None:
            unresolved.append(f"{what}, but has no IngressClass (and there is no default class)")
            continue
        label = f"class {class_name} from {how}" + (f", controller {controller}" if controller else "")
        serving = []
        for pod in view.objects("Pod"):
            if (pod.get("status") or {}).get("phase") in FINISHED_PHASES:
                continue
            flag = _controller_match(pod, class_name, controller)
            if flag:
                serving.append((pod, flag))
        if not serving:
            unresolved.append(f"{what} ({label}), but no pod's args name that class or controller")
            continue
        for pod, flag in serving:
            meta = pod["metadata"]
            key = f"{meta.get('namespace') or 'default'}/{meta['name']}"
            evidence = f"{what} ({label}); served by pod {key} ({flag})"
            add(meta.get("namespace") or "default", evidence, [key], targets)


def _prometheus_selects(view: ClusterView, prom: K8sObject, monitor: K8sObject, kind: str) -> bool:
    spec = prom.get("spec") or {}
    field_prefix = "serviceMonitor" if kind == "ServiceMonitor" else "podMonitor"
    selector = spec.get(f"{field_prefix}Selector")
    ns_selector = spec.get(f"{field_prefix}NamespaceSelector")
    prom_ns = (prom.get("metadata") or {}).get("namespace") or "default"
    mon_meta = monitor.get("metadata") or {}
    mon_ns = mon_meta.get("namespace") or "default"
    if selector is None or not selector_matches(selector, mon_meta.get("labels") or {}):
        return False
    if ns_selector is None:
        return mon_ns == prom_ns
    ns = view.cluster.namespaces.get(mon_ns)
    return ns is not None and selector_matches(ns_selector, ns.labels)


def _monitor_namespaces(monitor: K8sObject) -> tuple[bool, list[str]]:
    """(any namespace, names) of a monitor's spec.namespaceSelector (absent: its own namespace)."""
    selector = (monitor.get("spec") or {}).get("namespaceSelector") or {}
    if selector.get("any"):
        return True, []
    names = selector.get("matchNames") or []
    return False, list(names) if names else [(monitor.get("metadata") or {}).get("namespace") or "default"]


def _monitor_targets(view: ClusterView, monitor: K8sObject, kind: str, gim: str) -> list[Target]:
    cluster = view.cluster
    spec = monitor.get("spec") or {}
    selector = spec.get("selector") or {}
    targets: list[Target] = []
    if kind == "ServiceMonitor":
        for svc in cluster.services:
            if svc.namespace != gim:
                continue
            raw = view.raw_object("Service", gim, svc.name) or {}
            if not selector_matches(selector, (raw.get("metadata") or {}).get("labels") or {}):
                continue
            for ep in spec.get("endpoints") or [{}]:
                if ep.get("targetPort") is not None and not ep.get("port"):
                    found = [
                        Target(p.key, n, "TCP")
                        for p in cluster.pods
                        if svc.selects(p) and (n := pod_port(p, ep["targetPort"], "TCP")) is not None
                    ]
                else:  # endpoints[].port names a Service port; without it, every port of the Service
                    found = service_targets(cluster, svc, ep.get("port"))
                targets.extend(t for t in found if t not in targets)
    else:
        for pod in cluster.pods_in(gim):
            if not selector_matches(selector, pod.labels):
                continue
            for ep in spec.get("podMetricsEndpoints") or [{}]:
                port = ep.get("port") or ep.get("portNumber") or ep.get("targetPort")
                if isinstance(port, str) and port.isdigit():
                    port = int(port)
                if port is None:
                    numbers = [(p.port, p.protocol) for p in pod.ports]
                else:
                    number = pod_port(pod, port, "TCP")
                    numbers = [(number, "TCP")] if number is not None else []
                targets.extend(
                    Target(pod.key, n, proto)
                    for n, proto in numbers
                    if Target(pod.key, n, proto) not in targets
                )
    return targets


def monitoring_needs(view: ClusterView, gim: str, add: Add, unresolved: list[str], notes: list[str]) -> None:
    monitors = [(k, m) for k in ("ServiceMonitor", "PodMonitor") for m in view.objects(k)]
    prometheuses = view.objects("Prometheus")
    for kind, monitor in monitors:
        any_ns, names = _monitor_namespaces(monitor)
        if not any_ns and gim not in names:
            continue
        targets = _monitor_targets(view, monitor, kind, gim)
        if not targets:
            continue
        what = f"{object_key(monitor)} selects GIM {'Services' if kind == 'ServiceMonitor' else 'pods'}"
        scrapers = [p for p in prometheuses if _prometheus_selects(view, p, monitor, kind)]
        if not scrapers:
            unresolved.append(f"{what}, but no Prometheus in the input selects it")
            continue
        for prom in scrapers:
            meta = prom.get("metadata") or {}
            ns, name = meta.get("namespace") or "default", meta.get("name")
            pods = [
                p.key
                for p in view.cluster.pods_in(ns)
                if any(p.labels.get(label) == name for label in PROMETHEUS_POD_LABELS)
            ]
            shown = f"pods {', '.join(pods)}" if pods else "no pod of it in the input"
            add(ns, f"{what}; scraped by {object_key(prom)} ({shown})", pods, targets)


def _sources() -> tuple[Source, ...]:
    return (ingress_needs, monitoring_needs, *routes.SOURCES, *scrapes.SOURCES)


def shadow(view: ClusterView, gim_namespace: str, extra_sources: Sequence[Source] = ()) -> Shadow:
    """The namespaces that need to reach ``gim_namespace``, with their evidence; ``extra_sources`` add
    evidence from outside the API (flow logs)."""
    needs: dict[str, Need] = {}
    host: dict[str, Need] = {}
    unresolved: list[str] = []
    notes: list[str] = []
    pods = {p.key: p for p in view.cluster.pods}

    def add(
        namespace: str,
        evidence: str,
        sources: list[str],
        targets: list[Target],
        advice: str = "",
        *,
        observed: bool = False,
    ) -> None:
        if namespace == gim_namespace:
            return
        on_host = [s for s in sources if s in pods and pods[s].host_network]
        others = [s for s in sources if s not in on_host]
        if on_host:
            host.setdefault(namespace, Need(namespace)).merge(evidence, on_host, targets, advice, observed)
        if others or not sources:
            needs.setdefault(namespace, Need(namespace)).merge(evidence, others, targets, "", observed)

    for source in (*_sources(), *extra_sources):
        source(view, gim_namespace, add, unresolved, notes)
    if not view.has_kind("Ingress"):
        notes.append(
            "no Ingress in the input: Ingress controllers were not checked (add ingress,ingressclass)"
        )
    return Shadow(
        needs=[needs[k] for k in sorted(needs) if needs[k].evidence],
        observed_only=[needs[k] for k in sorted(needs) if not needs[k].evidence],
        host_network=[host[k] for k in sorted(host)],
        unresolved=unresolved,
        notes=notes,
    )
