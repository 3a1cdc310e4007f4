"""What one scenario deploys: the GIM namespace with stand-ins for GIM's workloads, and client namespaces.

The stand-ins carry the labels and ports of GIM components (or, with ``--manifests``, those of the
chart's own workloads) so the policies under test meet pods that look like GIM's. Clients sit in
namespaces that the values allow, in namespaces they do not, and in the GIM namespace itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from conformance.netpol.model import ContainerPort, K8sObject
from conformance.probes import agnhost

PART_OF = {"app.kubernetes.io/name": "gitguardian", "app.kubernetes.io/instance": "gim"}
COMPONENT_LABEL = "app.kubernetes.io/component"


@dataclass(frozen=True)
class Workload:
    """A GIM component: its pod labels and the ports its pods declare."""

    name: str
    labels: dict[str, str]
    ports: tuple[ContainerPort, ...]
    serves: bool = True  # False for components that only open connections (workers, beat)


def _component(name: str, *ports: ContainerPort, serves: bool = True) -> Workload:
    return Workload(name, {**PART_OF, COMPONENT_LABEL: name}, tuple(ports), serves)


# The components of GIM's topology docs that receive traffic, with ports >= 1024 so that the stand-ins
# run as non-root under Pod Security "restricted".
REFERENCE_WORKLOADS: tuple[Workload, ...] = (
    _component("nginx", ContainerPort(8080, "TCP", "http"), ContainerPort(8443, "TCP", "https")),
    _component("internal-api", ContainerPort(8000, "TCP", "http")),
    _component("public-api", ContainerPort(8001, "TCP", "http")),
    _component("app-exporter", ContainerPort(9808, "TCP", "metrics")),
)
# GIM's workers only open connections: in the GIM namespace the client is one of them.
GIM_CLIENT = _component("worker", serves=False)
CLIENT_LABELS = {"app.kubernetes.io/name": "netpol-probe-client"}

DNS_NAMESPACE = "kube-system"  # kind's; the suite finds the cluster's own DNS (conformance/suite/dns.py)


@dataclass(frozen=True)
class Topology:
    """The namespaces and pods of one scenario. Names are unique per scenario unless fixed by values."""

    run_id: str
    gim_namespace: str
    allowed_namespaces: tuple[str, ...]  # client namespaces that the values allow
    other_namespaces: tuple[str, ...]  # client namespaces that the values do not allow
    workloads: tuple[Workload, ...] = REFERENCE_WORKLOADS
    image: str = agnhost.AGNHOST_IMAGE
    extra_labels: dict[str, str] = field(default_factory=dict)
    gim_client: Workload = GIM_CLIENT  # the client in the GIM namespace: with --manifests, the chart's worker

    @property
    def client_namespaces(self) -> tuple[str, ...]:
        return (*self.allowed_namespaces, *self.other_namespaces)

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.gim_namespace, *self.client_namespaces)

    @property
    def servers(self) -> tuple[Workload, ...]:
        return tuple(w for w in self.workloads if w.serves and w.ports)

    def client_key(self, namespace: str) -> str:
        name = self.gim_client.name if namespace == self.gim_namespace else "client"
        return f"{namespace}/{name}"

    @property
    def client_keys(self) -> tuple[str, ...]:
        return tuple(self.client_key(ns) for ns in self.namespaces)

    def server_key(self, workload: Workload) -> str:
        return f"{self.gim_namespace}/{workload.name}"

    def namespace_objects(self, names: Sequence[str] | None = None) -> list[K8sObject]:
        return [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "labels": {agnhost.RUN_LABEL: self.run_id, **self.extra_labels}},
            }
            for ns in (self.namespaces if names is None else names)
        ]

    def client_objects(self, namespace: str) -> list[K8sObject]:
        labels = {**self.gim_client.labels} if namespace == self.gim_namespace else {**CLIENT_LABELS}
        name = self.client_key(namespace).split("/", 1)[1]
        return [agnhost.client_pod(namespace, name, labels, image=self.image, run_id=self.run_id)]

    def workload_objects(self) -> list[K8sObject]:
        objects: list[K8sObject] = []
        for w in self.servers:
            objects.append(
                agnhost.server_pod(
                    self.gim_namespace, w.name, w.labels, w.ports, image=self.image, run_id=self.run_id
                )
            )
            objects.append(agnhost.service(self.gim_namespace, w.name, w.labels, w.ports, run_id=self.run_id))
        return objects

    def objects(self) -> list[K8sObject]:
        """Every object the scenario creates before any policy: namespaces, servers, services, clients."""
        objects = self.namespace_objects()
        objects += self.workload_objects()
        for ns in self.namespaces:
            objects += self.client_objects(ns)
        return objects
