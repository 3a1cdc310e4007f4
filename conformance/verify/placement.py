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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conformance.backends.base import Backend
from conformance.errors import UserError
from conformance.netpol.model import ContainerPort, K8sObject, Namespace
from conformance.probes import agnhost
from conformance.suite import cni_features as cf
from conformance.suite.cni_canaries import TEAM, Canary

RUN_LABEL = agnhost.RUN_LABEL
CANARY_LABEL = "conformance.gitguardian.com/canary"  # on the CNI feature canaries' namespaces
PROBE_NAMESPACE_LABEL = "conformance.gitguardian.com/probe-namespace"  # role of a probe namespace
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
SCRATCH_PREFIX = "gim-netpol-verify"
CANARY_PORT = 8080

ROLES = ("srv", "cli", "team", "other")
ROLE_LABELS: dict[str, dict[str, str]] = {
    "srv": {},
    "cli": {},
    "team": {TEAM: "allowed"},
    "other": {TEAM: "other"},
}
ROLE_PURPOSE = {
    "srv": "servers of the canaries",
    "cli": "verify's probe client and the canaries' clients",
    "team": "a client namespace namespaceSelector canaries allow",
    "other": "a client namespace namespaceSelector canaries do not allow",
}
DEFAULT_PROBE_NAMESPACES = (
    "gim-netpol-probe-srv",
    "gim-netpol-probe-cli",
    "gim-netpol-probe-team",
    "gim-netpol-probe-other",
)
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # a namespace name (DNS-1123 label)


@dataclass(frozen=True)
class ProbeNamespaces:
    """The four namespaces a namespaced run uses, in role order (srv, cli, team, other)."""

    names: tuple[str, ...] = DEFAULT_PROBE_NAMESPACES

    @classmethod
    def parse(cls, text: str) -> ProbeNamespaces:
        """``a,b,c,d`` as ``--probe-namespaces`` takes it; UserError naming the option otherwise."""
        names = tuple(n.strip() for n in text.split(","))
        if len(names) != len(ROLES):
            raise UserError(
                f"needs {len(ROLES)} comma-separated namespaces ({', '.join(ROLES)}: "
                + "; ".join(f"{r}: {ROLE_PURPOSE[r]}" for r in ROLES)
                + f"), got {len(names)}",
                source="--probe-namespaces",
            )
        for name in names:
            if not DNS_LABEL.fullmatch(name):
                raise UserError(
                    f"{name!r} is not a namespace name (DNS-1123 label)", source="--probe-namespaces"
                )
        if len(set(names)) != len(names):
            raise UserError("the four namespaces must differ", source="--probe-namespaces")
        return cls(names)

    @property
    def roles(self) -> dict[str, str]:
        return dict(zip(ROLES, self.names, strict=True))

    def labels(self, role: str) -> dict[str, str]:
        return {PROBE_NAMESPACE_LABEL: role, **RESTRICTED, **ROLE_LABELS[role]}

    def objects(self) -> list[K8sObject]:
        """The Namespaces, as someone with cluster rights creates them once."""
        return [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": self.labels(role)}}
            for role, name in self.roles.items()
        ]

    def check(self, namespaces: Mapping[str, Namespace]) -> None:
        """UserError when a probe namespace is missing or lacks a label the canaries rely on."""
        for role, name in self.roles.items():
            ns = namespaces.get(name)
            if ns is None:
                raise UserError(
                    f"probe namespace {name} does not exist: have it created once with"
                    " `gim-netpol rbac --probe-namespaces ... | kubectl apply -f -` (cluster rights needed)",
                    source="--probe-namespaces",
                )
            wrong = {k: v for k, v in self.labels(role).items() if ns.labels.get(k) != v}
            if wrong:
                shown = ", ".join(f"{k}={v}" for k, v in wrong.items())
                raise UserError(
                    f"probe namespace {name} ({role}) lacks the labels {shown}", source="--probe-namespaces"
                )


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
