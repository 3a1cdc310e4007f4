"""What one scenario deploys: the GIM namespace with stand-ins for GIM's workloads, and client namespaces.

The stand-ins carry the labels and ports of GIM components (or, with ``--manifests``, those of the
chart's own workloads) so the policies under test meet pods that look like GIM's. Clients sit in
namespaces that the values allow, in namespaces they do not, and in the GIM namespace itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from conformance.gim.workloads import GIM_CLIENT, REFERENCE_WORKLOADS, Workload
from conformance.netpol.model import K8sObject
from conformance.probes import agnhost

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
