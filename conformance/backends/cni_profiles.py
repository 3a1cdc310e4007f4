"""How real NetworkPolicy enforcers depart from the API: quirk profiles the model backend can take on.

A profile says what the CNI programs from the policies it is given and how it answers a denied
connection. The quirks are the ones seen on real clusters:

- ``drops`` (the default, Calico): a denied packet is dropped, so a blocked TCP connect costs the probe
  its full timeout;
- ``rejects`` (kube-router 1.2.2, the controller k3s and k0s embed): a denied connection is answered at
  once with an ICMP port-unreachable (iptables REJECT), which a client reads as "connection refused";
- ``ignores-named-ports`` (weave-npc 2.8.1): a policy any of whose rules names a port is skipped whole;
- ``ignores-endport`` (weave-npc 2.8.1): ``endPort`` is dropped, a range covers only its first port;
- ``node-unfiltered`` (weave-npc 2.8.1): traffic from the node (host-network pods) is never filtered;
- ``weave-npc``: the three weave-npc quirks together.

Profiles combine with commas: ``rejects,ignores-endport``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

from conformance.errors import UserError
from conformance.netpol.model import K8sObject


@dataclass(frozen=True)
class CniProfile:
    name: str = "drops"
    rejects: bool = False  # a denied connection is refused at once instead of timing out
    ignores_named_ports: bool = False  # a policy with a named port in any rule is not programmed
    ignores_end_port: bool = False  # endPort is dropped: the rule covers only its first port
    filters_node_traffic: bool = True  # False: traffic from host-network pods / the node always passes

    def programmed(self, policies: Iterable[K8sObject]) -> list[K8sObject]:
        """The policies as this CNI actually enforces them."""
        out = []
        for policy in policies:
            if self.ignores_named_ports and uses_named_port(policy):
                continue
            out.append(
                without_end_port(policy) if self.ignores_end_port and uses_end_port(policy) else policy
            )
        return out


PROFILES: dict[str, dict[str, bool]] = {
    "drops": {},
    "rejects": {"rejects": True},
    "ignores-named-ports": {"ignores_named_ports": True},
    "ignores-endport": {"ignores_end_port": True},
    "node-unfiltered": {"filters_node_traffic": False},
    "weave-npc": {"ignores_named_ports": True, "ignores_end_port": True, "filters_node_traffic": False},
}
DEFAULT = CniProfile()
_QUIRKS = tuple(f.name for f in fields(CniProfile) if f.name != "name")


def parse_profile(text: str, source: str = "--model-cni") -> CniProfile:
    """``"rejects,ignores-endport"`` -> one profile with both quirks. Raises UserError."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()] or ["drops"]
    quirks: dict[str, bool] = {}
    for name in names:
        if name not in PROFILES:
            raise UserError(f"unknown CNI profile {name!r}: expected {', '.join(PROFILES)}", source=source)
        quirks.update(PROFILES[name])
    return replace(DEFAULT, name=",".join(names), **quirks)


def quirks(profile: CniProfile) -> dict[str, bool]:
    return {q: getattr(profile, q) for q in _QUIRKS}


def _rules(policy: K8sObject) -> Iterable[dict]:
    spec = policy.get("spec") or {}
    for direction in ("ingress", "egress"):
        yield from spec.get(direction) or ()


def _ports(policy: K8sObject) -> Iterable[dict]:
    for rule in _rules(policy):
        yield from (rule or {}).get("ports") or ()


def uses_named_port(policy: K8sObject) -> bool:
    return any(isinstance((p or {}).get("port"), str) for p in _ports(policy))


def uses_end_port(policy: K8sObject) -> bool:
    return any("endPort" in (p or {}) for p in _ports(policy))


def without_end_port(policy: K8sObject) -> K8sObject:
    stripped = copy.deepcopy(policy)
    for port in _ports(stripped):
        (port or {}).pop("endPort", None)
    return stripped
