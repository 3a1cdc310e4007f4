"""Which NetworkPolicy features a policy uses, rule by rule.

CNIs do not all implement the whole of networking.k8s.io/v1: weave-npc 2.8.1 skips a whole policy one of
whose rules names a port, ignores ``endPort`` and never filters traffic from the node; others lack SCTP,
``ipBlock`` on pod IPs, or egress. Naming the features a policy relies on lets the suite run the matching
CNI canary, and lets a mismatch say which feature of which rule the cluster may have ignored.

Works on the plain policy dicts (as applied); malformed parts are skipped (the compiler reports them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from conformance.netpol.model import K8sObject, policy_key

# feature id -> what it is, as "uses ..." completes it
FEATURES: dict[str, str] = {
    "default-deny-ingress": "ingress isolation (default deny)",
    "default-deny-egress": "egress isolation (default deny)",
    "pod-selector": "a podSelector peer",
    "namespace-selector": "a namespaceSelector peer",
    "pod-and-namespace-selector": "a peer with namespaceSelector AND podSelector",
    "multiple-peers": "several peers in one rule (OR)",
    "match-expressions": "matchExpressions in a selector",
    "numbered-port": "a numbered port",
    "named-port": "a named port",
    "end-port": "a port range (endPort)",
    "udp": "UDP",
    "sctp": "SCTP",
    "ip-block": "an ipBlock peer",
    "service-ip": "isolation of pods reached through Service IPs",
    "egress-dns": "egress to DNS (port 53)",
    "node-traffic": "isolation against traffic from nodes and host-network pods",
}

_DIRECTIONS = (("ingress", "from"), ("egress", "to"))


@dataclass(frozen=True, slots=True)
class FeatureUse:
    """One use of a feature by a policy: in a rule (``rule`` is its index) or by the policy as a whole."""

    feature: str
    policy: str  # "namespace/name"
    direction: str | None = None  # "ingress" or "egress" for a rule
    rule: int | None = None
    detail: str = ""

    def describe(self) -> str:
        """``ingress rule 0 of gitguardian/allow-web uses a named port (http)``."""
        where = self.policy if self.rule is None else f"{self.direction} rule {self.rule} of {self.policy}"
        what = FEATURES.get(self.feature, self.feature)
        return f"{where} uses {what}" + (f" ({self.detail})" if self.detail else "")


def _isolated_directions(spec: Mapping[str, Any]) -> list[str]:
    types = spec.get("policyTypes")
    if isinstance(types, list) and types:
        return [d for d, _ in _DIRECTIONS if d.capitalize() in types]
    egress = spec.get("egress")
    return ["ingress", "egress"] if isinstance(egress, list) and egress else ["ingress"]


def _has_expressions(selector: Any) -> bool:
    return isinstance(selector, Mapping) and bool(selector.get("matchExpressions"))


def _peer_features(peer: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pod, ns, block = peer.get("podSelector"), peer.get("namespaceSelector"), peer.get("ipBlock")
    if isinstance(block, Mapping):
        excepts = block.get("except") or []
        detail = f"cidr {block.get('cidr')}" + (f" except {', '.join(map(str, excepts))}" if excepts else "")
        out.append(("ip-block", detail))
    elif pod is not None and ns is not None:
        out.append(("pod-and-namespace-selector", ""))
    elif ns is not None:
        out.append(("namespace-selector", ""))
    elif pod is not None:
        out.append(("pod-selector", ""))
    for name, selector in (("podSelector", pod), ("namespaceSelector", ns)):
        if _has_expressions(selector):
            out.append(("match-expressions", name))
    return out


def _port_features(entry: Mapping[str, Any], direction: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    protocol = entry.get("protocol") or "TCP"
    port, end = entry.get("port"), entry.get("endPort")
    if protocol == "UDP":
        out.append(("udp", f"port {port}" if port is not None else "every port"))
    elif protocol == "SCTP":
        out.append(("sctp", f"port {port}" if port is not None else "every port"))
    if isinstance(port, str):
        out.append(("named-port", port))
    elif end is not None:
        out.append(("end-port", f"{port}-{end}"))
    elif isinstance(port, int):
        out.append(("numbered-port", str(port)))
    if direction == "egress" and port == 53:
        out.append(("egress-dns", f"{protocol} 53"))
    return out


def rule_features(rule: Any, direction: str) -> list[tuple[str, str]]:
    """(feature, detail) of one ingress or egress rule, in order, without repeats."""
    if not isinstance(rule, Mapping):
        return []
    out: list[tuple[str, str]] = []
    peers = rule.get("from" if direction == "ingress" else "to") or []
    if isinstance(peers, list):
        if len(peers) > 1:
            out.append(("multiple-peers", f"{len(peers)} peers"))
        for peer in peers:
            if isinstance(peer, Mapping):
                out += _peer_features(peer)
    ports = rule.get("ports") or []
    if isinstance(ports, list):
        for entry in ports:
            if isinstance(entry, Mapping):
                out += _port_features(entry, direction)
    return list(dict.fromkeys(out))


def policy_features(policy: K8sObject) -> list[FeatureUse]:
    """Every feature ``policy`` uses: isolation by the policy as a whole, then rule by rule."""
    spec = policy.get("spec") or {}
    if not isinstance(spec, Mapping):
        return []
    key = policy_key(policy)
    uses: list[FeatureUse] = []
    isolated = _isolated_directions(spec)
    for direction in isolated:
        uses.append(FeatureUse(f"default-deny-{direction}", key))
    if "ingress" in isolated:
        uses.append(FeatureUse("service-ip", key))
    if _has_expressions(spec.get("podSelector")):
        uses.append(FeatureUse("match-expressions", key, detail="spec.podSelector"))
    for direction, _ in _DIRECTIONS:
        rules = spec.get(direction)
        if direction not in isolated or not isinstance(rules, list):
            continue
        for index, rule in enumerate(rules):
            for feature, detail in rule_features(rule, direction):
                uses.append(FeatureUse(feature, key, direction, index, detail))
    return uses


def features_used(policies: Iterable[K8sObject]) -> dict[str, list[FeatureUse]]:
    """feature -> its uses by ``policies``, in the order of FEATURES."""
    found: dict[str, list[FeatureUse]] = {}
    for policy in policies:
        for use in policy_features(policy):
            found.setdefault(use.feature, []).append(use)
    return {f: found[f] for f in FEATURES if f in found}


def rule_uses(policy: K8sObject, direction: str, index: int) -> list[FeatureUse]:
    """The features of one rule of ``policy``."""
    return [u for u in policy_features(policy) if u.direction == direction and u.rule == index]
