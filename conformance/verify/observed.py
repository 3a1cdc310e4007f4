"""Observed traffic as evidence: every flow into a GIM pod from a namespace not in allowedNamespaces.

Endpoints are taken as the log names them (namespace and pod), or resolved through the snapshot when
the log gives only an IP: a pod IP names the pod, a Service ClusterIP the Service (its endpoints on
that port are the targets), a host-network pod's IP is a node, which no namespaceSelector matches.
A Calico aggregate (``billing-*``) stands for the pods of its namespace that match it. Flows from the
GIM namespace itself, between other namespaces, and from namespaces already in allowedNamespaces are
counted in a note, not evidence.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from conformance.netpol.model import Cluster, Pod, Service
from conformance.verify.discovery import ClusterView
from conformance.verify.evidence import Add, Target, service_targets
from conformance.verify.flowlogs import Endpoint, FlowLog, ObservedFlow
from conformance.verify.shadow import Source


@dataclass(frozen=True)
class Place:
    """Where one end of a flow is: a namespace and the pod keys it stands for (none: unknown pod)."""

    namespace: str | None
    pods: tuple[str, ...] = ()
    service: Service | None = None
    node: str = ""  # the IP, when it is a node's (host network)
    shown: str = ""


@dataclass
class _Group:
    count: int = 0
    start: datetime | None = None
    end: datetime | None = None
    verdicts: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    details: set[str] = field(default_factory=set)
    by_reporter: dict[str, int] = field(default_factory=dict)

    def add(self, flow: ObservedFlow, log: FlowLog) -> None:
        self.by_reporter[flow.reporter] = self.by_reporter.get(flow.reporter, 0) + flow.count
        # Calico: both ends report the same flow; count it once (the larger of the two reports)
        self.count = max(self.by_reporter.values())
        for when in (flow.start, flow.end):
            if when is not None:
                self.start = when if self.start is None else min(self.start, when)
                self.end = when if self.end is None else max(self.end, when)
        if flow.verdict:
            self.verdicts.add(flow.verdict)
        if flow.detail:
            self.details.add(flow.detail)
        self.files.add(f"{log.format}: {log.path}")


class Resolver:
    """Endpoints of flow records, placed in the snapshot's cluster."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.pods = {p.key: p for p in cluster.pods}
        self.by_ip: dict[str, Pod] = {}
        self.nodes: dict[str, list[str]] = {}
        for pod in cluster.pods:
            if not pod.ip:
                continue
            if pod.host_network:
                self.nodes.setdefault(pod.ip, []).append(pod.key)
            else:
                self.by_ip.setdefault(pod.ip, pod)
        self.services = {s.cluster_ip: s for s in cluster.services if s.cluster_ip}

    def place(self, endpoint: Endpoint) -> Place:
        if endpoint.namespace and endpoint.pod:
            if "*" in endpoint.pod:
                matching = tuple(
                    p.key
                    for p in self.cluster.pods_in(endpoint.namespace)
                    if fnmatch.fnmatchcase(p.name, endpoint.pod)
                )
                return Place(endpoint.namespace, matching, shown=endpoint.shown())
            return Place(
                endpoint.namespace, (self._pod(endpoint.namespace, endpoint.pod),), shown=endpoint.shown()
            )
        if endpoint.ip:
            if endpoint.ip in self.by_ip:
                pod = self.by_ip[endpoint.ip]
                return Place(pod.namespace, (pod.key,), shown=f"{pod.key} ({endpoint.ip})")
            if endpoint.ip in self.services:
                svc = self.services[endpoint.ip]
                return Place(
                    svc.namespace, service=svc, shown=f"Service {svc.namespace}/{svc.name} ({endpoint.ip})"
                )
            if endpoint.ip in self.nodes:
                return Place(None, node=endpoint.ip, shown=f"node {endpoint.ip}")
        return Place(endpoint.namespace, shown=endpoint.shown())

    def _pod(self, namespace: str, name: str) -> str:
        """The pod key; a pod gone since the log was taken stands for its ReplicaSet's current pods."""
        key = f"{namespace}/{name}"
        if key in self.pods or "-" not in name:
            return key
        prefix = name.rsplit("-", 1)[0] + "-"
        same = [p.key for p in self.cluster.pods_in(namespace) if p.name.startswith(prefix)]
        return same[0] if len(same) == 1 else key


def _targets(resolver: Resolver, place: Place, flow: ObservedFlow) -> list[Target]:
    if place.service is not None:
        return service_targets(resolver.cluster, place.service, flow.port)
    return [Target(k, flow.port, flow.protocol) for k in place.pods if k in resolver.pods]


def _when(group: _Group) -> str:
    def iso(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    if group.start is None or group.end is None:
        return "(no time in the log)"
    if group.start == group.end:
        return f"at {iso(group.start)}"
    return f"between {iso(group.start)} and {iso(group.end)}"


def observed_source(logs: Sequence[FlowLog], allowed: Sequence[str]) -> Source:
    """The evidence source that adds the flows of ``logs`` (``allowed``: the inferred allowedNamespaces)."""

    def source(view: ClusterView, gim: str, add: Add, unresolved: list[str], notes: list[str]) -> None:
        resolver = Resolver(view.cluster)
        groups: dict[tuple, _Group] = {}
        places: dict[tuple, tuple[Place, Place, ObservedFlow]] = {}
        ignored = {"internal": 0, "elsewhere": 0, "allowed": 0}
        for log in logs:
            notes.append(f"flow log {log.summary()}")
            for flow in log.flows:
                src, dst = resolver.place(flow.source), resolver.place(flow.destination)
                if dst.namespace != gim:
                    ignored["elsewhere"] += flow.count
                    continue
                if src.namespace == gim:
                    ignored["internal"] += flow.count
                    continue
                if src.namespace in allowed:
                    ignored["allowed"] += flow.count
                    continue
                key = (src.shown, dst.shown, flow.port, flow.protocol)
                groups.setdefault(key, _Group()).add(flow, log)
                places.setdefault(key, (src, dst, flow))
        for key, group in groups.items():
            src, dst, flow = places[key]
            targets = _targets(resolver, dst, flow)
            verdicts = "/".join(sorted(group.verdicts))
            extra = "; ".join(sorted(group.details))
            what = (
                f"observed {group.count} flow{'s' if group.count != 1 else ''} from {src.shown} to"
                f" {dst.shown}:{flow.port}/{flow.protocol} {_when(group)}"
                f" ({', '.join(sorted(group.files))}{'; ' + verdicts if verdicts else ''}"
                f"{'; ' + extra if extra else ''})"
            )
            if src.node:
                hosts = ", ".join(resolver.nodes[src.node])
                unresolved.append(
                    f"{what}: from a node's IP (host network: {hosts}), which no namespaceSelector matches"
                )
            elif src.namespace is None:
                unresolved.append(f"{what}: no pod, Service or node of the snapshot has that source IP")
            elif src.namespace not in view.cluster.namespaces:
                unresolved.append(f"{what}: namespace {src.namespace} is not in the snapshot")
            elif not targets:
                unresolved.append(f"{what}: the destination is not a pod of the snapshot")
            else:
                known = [k for k in src.pods if k in resolver.pods]
                add(src.namespace, what, known, targets, observed=True)
        counted = [
            f"{n} {what}"
            for what, n in (
                ("from GIM itself", ignored["internal"]),
                ("between other namespaces", ignored["elsewhere"]),
                ("from namespaces already in allowedNamespaces", ignored["allowed"]),
            )
            if n
        ]
        if counted:
            notes.append("flows not taken as evidence: " + ", ".join(counted))

    return source
