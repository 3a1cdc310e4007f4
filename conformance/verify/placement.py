"""Where a live ``gim-netpol verify`` puts what it creates, and the objects each of its steps creates.

Two placements:

- **namespaced** (the default): the run creates no namespace. It uses four probe namespaces that someone
  with cluster rights created once (``gim-netpol rbac`` prints them, labelled as below), one per role of
  the CNI canaries: ``srv`` (servers), ``cli`` (clients, and verify's own probe client), ``team`` and
  ``other`` (the namespaceSelector canaries' client namespaces). Its pods, Services and policies there
  carry the run label and names with the run id, and are deleted at the end; the namespaces stay.
- **cluster-wide**: the run creates namespaces of its own (``gim-netpol-verify-<run>-*``) and deletes
  them at the end (the behaviour of earlier releases).

The RBAC verify needs is derived from the objects listed here (``planned_objects``), so the rules that
``gim-netpol rbac`` prints and what the run creates come from the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from conformance.backends.base import Backend
from conformance.netpol.model import ContainerPort, K8sObject
from conformance.probes import agnhost
from conformance.suite import cni_features as cf
from conformance.suite.cni_canaries import Canary
from conformance.suite.probe_namespaces import RESTRICTED, ProbeNamespaces

RUN_LABEL = agnhost.RUN_LABEL
CANARY_LABEL = "conformance.gitguardian.com/canary"  # on the CNI feature canaries' namespaces
SCRATCH_PREFIX = "gim-netpol-verify"
CANARY_PORT = 8080


@dataclass(frozen=True)
class Placement:
    """Where one run (``run_id``) puts its objects: ``probe`` namespaces, or (None) namespaces of its own."""

    run_id: str
    image: str = agnhost.AGNHOST_IMAGE
    probe: ProbeNamespaces | None = None

    @property
    def namespaced(self) -> bool:
        return self.probe is not None

    def _scratch(self, role: str) -> K8sObject:
        """A namespace the run owns (cluster-wide). Pod Security "restricted" is enforced in it: the probe
        pods meet it, and a stricter cluster-wide policy shows up here first, with a clear message."""
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": f"{SCRATCH_PREFIX}-{self.run_id}-{role}",
                "labels": {RUN_LABEL: self.run_id, **RESTRICTED},
            },
        }

    def canary(self) -> tuple[list[K8sObject], K8sObject]:
        """The deny-all canary: (namespace if the run makes one, server, client), and the policy applied
        once the baseline connected, selecting this run's canary server only."""
        if self.probe is None:
            ns = self._scratch("canary")
            server_ns = client_ns = ns["metadata"]["name"]
            namespaces, server, client, policy = [ns], "server", "client", "canary-deny-all"
        else:
            server_ns, client_ns = self.probe.roles["srv"], self.probe.roles["cli"]
            namespaces = []
            server, client, policy = (f"canary-{self.run_id}-{x}" for x in ("server", "client", "deny-all"))
        objects = [
            *namespaces,
            agnhost.server_pod(
                server_ns,
                server,
                {"app": "canary-server"},
                [ContainerPort(CANARY_PORT, "TCP", "http")],
                image=self.image,
                run_id=self.run_id,
            ),
            agnhost.client_pod(
                client_ns, client, {"app": "canary-client"}, image=self.image, run_id=self.run_id
            ),
        ]
        deny = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": policy, "namespace": server_ns, "labels": {RUN_LABEL: self.run_id}},
            "spec": {
                "podSelector": {"matchLabels": {"app": "canary-server", RUN_LABEL: self.run_id}},
                "policyTypes": ["Ingress"],
            },
        }
        return objects, deny

    def layout(self) -> cf.Layout:
        """Where the CNI feature canaries go (restricted: the host-network canary is not checked)."""
        if self.probe is None:
            prefix = f"{SCRATCH_PREFIX}-{self.run_id}"
            return cf.Layout(self.run_id, host_network=False, namespace_labels=RESTRICTED, prefix=prefix)
        return cf.Layout(self.run_id, host_network=False, shared=self.probe.roles)

    def probe_client(self) -> list[K8sObject]:
        """verify's probe client (a namespace not allowed to reach GIM), and its namespace if the run
        makes one."""
        if self.probe is None:
            ns = self._scratch("probe")
            name = ns["metadata"]["name"]
            return [ns, agnhost.client_pod(name, "client", {}, image=self.image, run_id=self.run_id)]
        return [self.allowed_client(self.probe.roles["cli"])]

    def allowed_client(self, namespace: str) -> K8sObject:
        """The short-lived client pod of ``--probe-allowed-namespaces`` in an existing namespace."""
        return agnhost.client_pod(
            namespace, f"{SCRATCH_PREFIX}-{self.run_id}", {}, image=self.image, run_id=self.run_id
        )


def is_client(obj: K8sObject) -> bool:
    """A probe client pod: probes exec ``agnhost connect`` in it."""
    containers = (obj.get("spec") or {}).get("containers") or ()
    return obj.get("kind") == "Pod" and any(c.get("name") == "client" for c in containers)


def planned_objects(
    placement: Placement, canaries: Sequence[Canary], allowed_clients: Sequence[str], planner: Backend
) -> list[K8sObject]:
    """Every object a run with these CNI canaries and clients in ``allowed_clients`` creates, as
    ``planner`` (an empty in-memory model: the ipBlock canary's policy needs pod IPs) would hold them."""
    canary, deny = placement.canary()
    layout = placement.layout()
    runnable = [c for c in canaries if cf.runs_in(layout, c)]
    if placement.probe is not None:
        planner.apply(placement.probe.objects())
    features = cf.plan_objects(layout, runnable, placement.image, planner)
    clients = [placement.allowed_client(ns) for ns in allowed_clients]
    return [*canary, deny, *features, *placement.probe_client(), *clients]
