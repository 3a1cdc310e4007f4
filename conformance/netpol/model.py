"""The objects the suite reasons about: namespaces, pods, services and NetworkPolicies.

NetworkPolicies are kept as the plain Kubernetes objects (dicts, as ``kubectl get -o yaml`` prints
them): the renderer produces them, snapshots and manifests contain them, backends apply them and the
simulator compiles them. Namespaces, pods and services are reduced to what connectivity depends on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

NAME_LABEL = "kubernetes.io/metadata.name"
PROTOCOLS = ("TCP", "UDP", "SCTP")

# A Kubernetes object as a plain mapping (apiVersion, kind, metadata, spec, ...).
K8sObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ContainerPort:
    port: int
    protocol: str = "TCP"
    name: str | None = None


@dataclass(slots=True)
class Namespace:
    name: str
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The API server sets this label on every namespace (Kubernetes >= 1.21); GIM's
        # allowedNamespaces rule matches on it.
        self.labels = {**self.labels, NAME_LABEL: self.name}


@dataclass(slots=True)
class Pod:
    namespace: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    ip: str | None = None
    ports: tuple[ContainerPort, ...] = ()
    host_network: bool = False
    node: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def named_port(self, name: str, protocol: str | None = None) -> ContainerPort | None:
        """The container port called ``name`` (with ``protocol`` if given), as named ports resolve."""
        for p in self.ports:
            if p.name == name and (protocol is None or p.protocol == protocol):
                return p
        return None


@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    target_port: int | str
    protocol: str = "TCP"
    name: str | None = None


@dataclass(slots=True)
class Service:
    namespace: str
    name: str
    selector: dict[str, str] = field(default_factory=dict)
    ports: tuple[ServicePort, ...] = ()
    cluster_ip: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selects(self, pod: Pod) -> bool:
        return (
            bool(self.selector)
            and pod.namespace == self.namespace
            and all(pod.labels.get(k) == v for k, v in self.selector.items())
        )


@dataclass(slots=True)
class Cluster:
    """A cluster's state as far as NetworkPolicy goes."""

    namespaces: dict[str, Namespace] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    policies: list[K8sObject] = field(default_factory=list)

    def add_namespace(self, ns: Namespace) -> None:
        self.namespaces[ns.name] = ns

    def ensure_namespace(self, name: str) -> Namespace:
        """The namespace called ``name``, created with only its name label if the state lacks it."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = self.namespaces[name] = Namespace(name)
        return ns

    def pod(self, key: str) -> Pod:
        for p in self.pods:
            if p.key == key:
                return p
        raise KeyError(key)

    def pods_in(self, namespace: str) -> Iterator[Pod]:
        return (p for p in self.pods if p.namespace == namespace)

    def pod_by_ip(self, ip: str) -> Pod | None:
        for p in self.pods:
            if p.ip == ip and not p.host_network:
                return p
        return None

    def service_by_ip(self, ip: str) -> Service | None:
        for s in self.services:
            if s.cluster_ip == ip:
                return s
        return None

    def policies_in(self, namespace: str) -> list[K8sObject]:
        return [p for p in self.policies if policy_namespace(p) == namespace]


def policy_namespace(policy: K8sObject) -> str:
    return (policy.get("metadata") or {}).get("namespace") or "default"


def policy_name(policy: K8sObject) -> str:
    return (policy.get("metadata") or {}).get("name") or "<unnamed>"


def policy_key(policy: K8sObject) -> str:
    return f"{policy_namespace(policy)}/{policy_name(policy)}"


def object_key(obj: K8sObject) -> str:
    """``Kind/namespace/name`` (or ``Kind/name`` for cluster-scoped objects), for messages."""
    meta = obj.get("metadata") or {}
    parts = [str(obj.get("kind", "?")), meta.get("namespace"), meta.get("name", "<unnamed>")]
    return "/".join(p for p in parts if p)


def iter_kind(objects: Iterable[K8sObject], kind: str) -> Iterator[K8sObject]:
    return (o for o in objects if o.get("kind") == kind)
