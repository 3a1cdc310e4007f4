"""The ``model`` backend: no cluster. Objects are kept in memory and probes answered by the simulator.

It behaves like an API server and a policy-enforcing CNI as far as the suite can tell: pods get IPs
and Services ClusterIPs on apply, every namespace carries its ``kubernetes.io/metadata.name`` label,
deleting a namespace deletes what is in it, and a probe is ``blocked`` when the simulator denies it,
``refused`` when it is allowed but the destination does not listen on that port, ``connected``
otherwise. A cluster's DNS (kube-system/kube-dns) is there from the start, as in a real cluster.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterable, Sequence

from conformance.backends.base import Backend
from conformance.errors import UserError
from conformance.netpol.model import Cluster, K8sObject, Pod
from conformance.netpol.probing import Observation, Outcome, Probe
from conformance.netpol.simulator import Simulator
from conformance.netpol.snapshot import cluster_from_objects

POD_CIDR = ipaddress.ip_network("10.244.0.0/16")
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")
NODES = ("kind-worker", "kind-worker2")
CLUSTER_SCOPED = ("Namespace",)
KINDS = ("Namespace", "Pod", "Service", "NetworkPolicy")

_DNS_LABELS = {"k8s-app": "kube-dns"}
_DNS_PORTS = [
    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
]


def _key(obj: K8sObject) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    ns = "" if obj.get("kind") in CLUSTER_SCOPED else (meta.get("namespace") or "default")
    return (str(obj.get("kind")), ns, str(meta.get("name")))


class ModelBackend(Backend):
    name = "model"

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str, str], K8sObject] = {}
        self._pod_ips = (str(ip) for ip in POD_CIDR.hosts())
        self._service_ips = (str(ip) for ip in list(SERVICE_CIDR.hosts())[9:])
        self._scheduled = 0
        self._simulator: Simulator | None = None
        self._state: Cluster | None = None
        self.apply(self._cluster_dns())

    @staticmethod
    def _cluster_dns() -> list[K8sObject]:
        meta = {"namespace": "kube-system"}
        return [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}},
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {**meta, "name": "coredns", "labels": _DNS_LABELS},
                "spec": {"containers": [{"name": "coredns", "ports": _DNS_PORTS}]},
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {**meta, "name": "kube-dns", "labels": _DNS_LABELS},
                "spec": {
                    "selector": _DNS_LABELS,
                    "ports": [
                        {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
                        {"name": "dns-tcp", "port": 53, "targetPort": 53, "protocol": "TCP"},
                    ],
                },
            },
        ]

    # -- objects -------------------------------------------------------------------------------------
    def apply(self, objects: Sequence[K8sObject]) -> None:
        ordered = sorted(objects, key=lambda o: o.get("kind") != "Namespace")
        for obj in ordered:
            kind, ns, name = key = _key(obj)
            if kind not in KINDS:
                continue
            if kind != "Namespace" and ("Namespace", "", ns) not in self._objects:
                raise UserError(f'namespaces "{ns}" not found', source=f"{kind}/{ns}/{name}")
            new = copy.deepcopy(obj)
            new.setdefault("metadata", {})
            if kind != "Namespace":
                new["metadata"]["namespace"] = ns
            old = self._objects.get(key)
            if kind == "Pod":
                new.setdefault("status", {})["podIP"] = old["status"]["podIP"] if old else next(self._pod_ips)
                new.setdefault("spec", {}).setdefault("nodeName", NODES[self._scheduled % len(NODES)])
                self._scheduled += 1
            elif kind == "Service":
                spec = new.setdefault("spec", {})
                if spec.get("clusterIP") != "None":
                    spec["clusterIP"] = old["spec"]["clusterIP"] if old else next(self._service_ips)
            self._objects[key] = new
        self._invalidate()

    def delete(self, objects: Sequence[K8sObject]) -> None:
        for obj in objects:
            kind, ns, name = key = _key(obj)
            self._objects.pop(key, None)
            if kind == "Namespace":
                for k in [k for k in self._objects if k[1] == name]:
                    del self._objects[k]
        self._invalidate()

    def wait_ready(self, namespaces: Iterable[str], timeout_s: float) -> None:
        return None  # pods are ready as soon as they are applied

    def objects(self, kind: str | None = None) -> list[K8sObject]:
        return [copy.deepcopy(o) for k, o in self._objects.items() if kind is None or k[0] == kind]

    def _invalidate(self) -> None:
        self._simulator = None
        self._state = None

    def _full_state(self) -> Cluster:
        if self._state is None:
            self._state = cluster_from_objects(("model", o) for o in self._objects.values())
        return self._state

    def state(self, namespaces: Iterable[str]) -> Cluster:
        full = self._full_state()
        wanted = set(namespaces)
        return Cluster(
            dict(full.namespaces),
            [p for p in full.pods if p.namespace in wanted],
            [s for s in full.services if s.namespace in wanted],
            [p for p in full.policies if (p.get("metadata") or {}).get("namespace") in wanted],
        )

    # -- probes --------------------------------------------------------------------------------------
    def probe(self, probes: Sequence[Probe], timeout_s: float) -> list[Observation]:
        state = self._full_state()
        if self._simulator is None:
            self._simulator = Simulator(state)
        pods_by_key = {p.key: p for p in state.pods}
        pods_by_ip = {p.ip: p for p in state.pods if p.ip and not p.host_network}
        services_by_ip = {s.cluster_ip: s for s in state.services if s.cluster_ip}
        return [self._probe_one(p, pods_by_key, pods_by_ip, services_by_ip, state) for p in probes]

    def _probe_one(
        self, probe: Probe, pods_by_key, pods_by_ip, services_by_ip, state: Cluster
    ) -> Observation:
        assert self._simulator is not None
        client = pods_by_key.get(probe.client)
        if client is None:
            return Observation(probe, Outcome.ERROR, f'pods "{probe.client}" not found')
        destination: Pod | str = probe.host
        port = probe.port
        service = services_by_ip.get(probe.host)
        if service is not None:
            sp = next((p for p in service.ports if p.port == port and p.protocol == probe.protocol), None)
            endpoints = [p for p in state.pods if service.selects(p) and p.ip]
            if sp is None or not endpoints:
                return Observation(probe, Outcome.REFUSED, "no endpoints for this Service port")
            destination = endpoints[0]
            if isinstance(sp.target_port, int):
                port = sp.target_port
            else:
                named = destination.named_port(sp.target_port, probe.protocol)
                if named is None:
                    return Observation(probe, Outcome.REFUSED, f"no port named {sp.target_port}")
                port = named.port
        elif probe.host in pods_by_ip:
            destination = pods_by_ip[probe.host]
        verdict = self._simulator.verdict(client, destination, port, probe.protocol)
        if not verdict.allowed:
            return Observation(probe, Outcome.BLOCKED, f"TIMEOUT ({verdict.reason})")
        if isinstance(destination, Pod) and not any(
            cp.port == port and cp.protocol == probe.protocol for cp in destination.ports
        ):
            return Observation(probe, Outcome.REFUSED, f"REFUSED: nothing listens on {port}/{probe.protocol}")
        if isinstance(destination, str):
            return Observation(probe, Outcome.BLOCKED, f"TIMEOUT: no host at {destination}")
        return Observation(probe, Outcome.CONNECTED, verdict.reason)

    def diagnose(self, pod_key: str) -> str:
        return (
            "" if any(p.key == pod_key for p in self._full_state().pods) else f"pod {pod_key} does not exist"
        )
