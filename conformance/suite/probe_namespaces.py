"""The probe namespaces of a namespaced live verify: four namespaces that someone with cluster rights
creates once (``gim-netpol rbac`` prints them), one per role of the CNI canaries, labelled as the canaries
need. Here, below ``verify``, so that the pytest entry point can check ``--verify-probe-namespaces``
before the session starts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from conformance.errors import UserError
from conformance.netpol.model import K8sObject, Namespace
from conformance.suite.cni_canaries import TEAM

PROBE_NAMESPACE_LABEL = "conformance.gitguardian.com/probe-namespace"  # role of a probe namespace
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
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
    def parse(cls, text: str, source: str = "--probe-namespaces") -> ProbeNamespaces:
        """``a,b,c,d`` as ``--probe-namespaces`` (or ``source``) takes it, the default names when ``text`` is
        empty; UserError naming the option otherwise."""
        if not text:
            return cls()
        names = tuple(n.strip() for n in text.split(","))
        if len(names) != len(ROLES):
            raise UserError(
                f"needs {len(ROLES)} comma-separated namespaces ({', '.join(ROLES)}: "
                + "; ".join(f"{r}: {ROLE_PURPOSE[r]}" for r in ROLES)
                + f"), got {len(names)}",
                source=source,
            )
        for name in names:
            if not DNS_LABEL.fullmatch(name):
                raise UserError(f"{name!r} is not a namespace name (DNS-1123 label)", source=source)
        if len(set(names)) != len(names):
            raise UserError("the four namespaces must differ", source=source)
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
