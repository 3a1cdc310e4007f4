"""The cluster's DNS as a pod sees it: the nameserver of its /etc/resolv.conf, the Service with that
ClusterIP, and the pods behind it (whose target ports an egress rule must allow).

Clusters differ: kind, EKS, GKE and AKS serve DNS from ``kube-system/kube-dns`` on port 53; OpenShift
from ``openshift-dns/dns-default`` (Service port 53 -> pod port 5353, openshift/cluster-dns-operator);
a node-local DNS cache answers on a link-local address that no Service has. The kubelet writes the
pod's resolv.conf from its ``clusterDNS`` setting (Kubernetes docs, "DNS for Services and Pods": a
ClusterFirst pod's nameserver is the cluster DNS Service's IP).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.backends.base import Backend
from conformance.netpol.model import Pod, Service


@dataclass(frozen=True)
class ClusterDns:
    nameserver: str  # "" when the pod's resolv.conf names none
    service: Service | None = None
    endpoints: tuple[Pod, ...] = field(default=())

    @property
    def found(self) -> bool:
        return self.service is not None and bool(self.endpoints)

    @property
    def namespace(self) -> str | None:
        return self.service.namespace if self.service else None

    def not_checked(self) -> str:
        """The reason the DNS promise is not checked, for a skip and the report."""
        if self.service is not None:
            return f"not checked: the cluster DNS Service {self.service.key} has no ready endpoints"
        where = f"nameserver {self.nameserver}" if self.nameserver else "no nameserver in /etc/resolv.conf"
        return f"not checked: no cluster DNS Service found ({where})"


def nameserver(resolv_conf: str) -> str:
    """The first ``nameserver`` of a resolv.conf (the one the resolver tries first), or ''."""
    for line in resolv_conf.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            return parts[1]
    return ""


def find_cluster_dns(backend: Backend, client_key: str) -> ClusterDns:
    """The DNS the pod ``client_key`` uses, resolved to its Service and endpoint pods."""
    server = nameserver(backend.resolv_conf(client_key))
    if not server:
        return ClusterDns(server)
    service = next((s for s in backend.services_all() if s.cluster_ip == server), None)
    if service is None:
        return ClusterDns(server)
    pods = backend.state([service.namespace]).pods
    endpoints = tuple(p for p in pods if service.selects(p) and p.ip and not p.host_network)
    return ClusterDns(server, service, endpoints)
