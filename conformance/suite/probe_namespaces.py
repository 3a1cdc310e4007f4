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

    def rbac_command(self) -> str:
        """The ``gim-netpol rbac`` command that prints these namespaces and the Roles verify needs in them."""
        named = ""
        if self.names != DEFAULT_PROBE_NAMESPACES:
            named = f" --probe-namespaces {','.join(self.names)}"
        return f"gim-netpol rbac{named} --service-account NS/NAME | kubectl apply -f -"

    def check(self, namespaces: Mapping[str, Namespace]) -> None:
        """UserError when a probe namespace is missing (saying how to create them, and the two modes that
        need none) or lacks a label the canaries rely on."""
        missing = [name for name in self.names if name not in namespaces]
        if missing:
            which = (
                f"probe namespaces {', '.join(missing)} do not exist"
                if len(missing) > 1
                else f"probe namespace {missing[0]} does not exist"
            )
            raise UserError(
                f"{which}: have a cluster administrator create them once, with the Roles verify needs"
                f" there, with `{self.rbac_command()}` (NS/NAME: the ServiceAccount verify runs as, or"
                " --user NAME); or, as a cluster administrator, run verify --cluster-wide (namespaces of"
                " its own, deleted at the end); or run verify --no-probes (read-only: nothing created or"
                " probed, the CNI not checked)",
                source="--probe-namespaces",
            )
        for role, name in self.roles.items():
            wrong = {k: v for k, v in self.labels(role).items() if namespaces[name].labels.get(k) != v}
            if wrong:
                shown = ", ".join(f"{k}={v}" for k, v in wrong.items())
                raise UserError(
                    f"probe namespace {name} ({role}) lacks the labels {shown}", source="--probe-namespaces"
                )
