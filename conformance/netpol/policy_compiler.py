"""NetworkPolicy objects validated and compiled into matchers for the simulator.

Validation and defaults follow the networking.k8s.io/v1 API reference (Kubernetes 1.31, "NetworkPolicy v1",
https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/); what the
compiled rules mean is described in ``conformance.netpol.simulator``, which evaluates them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conformance.errors import UserError
from conformance.netpol.model import PROTOCOLS, policy_key, policy_namespace
from conformance.netpol.selectors import LabelMatcher, compile_selector, selector_keys, validate_selector

INGRESS = "ingress"
EGRESS = "egress"
DIRECTIONS = (INGRESS, EGRESS)
_POLICY_TYPES = {"Ingress": INGRESS, "Egress": EGRESS}
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")  # IANA_SVC_NAME, as the API validates it


@dataclass(frozen=True, slots=True)
class PortRule:
    protocol: str
    port: int | None  # None: every port of the protocol
    end_port: int | None
    name: str | None  # a container port name, resolved on the destination pod

    def matches(self, port: int, protocol: str, names: tuple[str, ...]) -> bool:
        if protocol != self.protocol:
            return False
        if self.name is not None:
            return self.name in names
        if self.port is None:
            return True
        if self.end_port is None:
            return port == self.port
        return self.port <= port <= self.end_port


@dataclass(frozen=True, slots=True)
class IpBlock:
    version: int
    low: int
    high: int
    excepts: tuple[tuple[int, int], ...]

    def contains(self, version: int, ip: int) -> bool:
        return (
            version == self.version
            and self.low <= ip <= self.high
            and not any(lo <= ip <= hi for lo, hi in self.excepts)
        )


@dataclass(frozen=True, slots=True)
class CompiledPeer:
    ns_matcher: LabelMatcher | None  # None: the policy's own namespace (podSelector alone)
    pod_matcher: LabelMatcher | None  # None: every pod of the selected namespaces
    block: int | None  # index in PolicyCompiler.blocks (Simulator._blocks); selectors are then unused
    policy: str
    where: str


@dataclass(frozen=True, slots=True)
class CompiledRule:
    index: int
    peers: tuple[CompiledPeer, ...] | None  # None: every peer
    ports: tuple[PortRule, ...] | None  # None: every port


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    key: str
    namespace: str
    selects: LabelMatcher
    ingress: tuple[CompiledRule, ...] | None  # None: the policy does not isolate for ingress
    egress: tuple[CompiledRule, ...] | None


class PolicyCompiler:
    """Validates and compiles NetworkPolicy objects; collects the ipBlocks and the label keys they use."""

    def __init__(self) -> None:
        self.blocks: list[IpBlock] = []
        self._block_index: dict[IpBlock, int] = {}
        self.target_label_keys: set[str] = set()  # keys of the policies' podSelectors
        self.peer_label_keys: set[str] = set()  # keys of the peers' podSelectors

    def policy(self, obj: Any) -> CompiledPolicy:
        if not isinstance(obj, Mapping):
            raise UserError(f"a NetworkPolicy must be a mapping, not {type(obj).__name__}")
        key = policy_key(obj)
        try:
            return self._policy(obj, key)
        except UserError as e:
            raise UserError(f"NetworkPolicy {key}: {e.message}", source=e.source, key=e.key) from None

    def _policy(self, obj: Mapping[str, Any], key: str) -> CompiledPolicy:
        spec = obj.get("spec")
        if spec is None:
            spec = {}  # the API server defaults an absent spec to the zero value: select all, deny ingress
        if not isinstance(spec, Mapping):
            raise UserError("spec must be a mapping", key="spec")
        pod_selector = spec.get("podSelector")
        validate_selector(pod_selector, "spec.podSelector")
        self.target_label_keys |= selector_keys(pod_selector)
        types = _policy_types(spec)
        rules = {}
        for direction, field, peers_field in ((INGRESS, "ingress", "from"), (EGRESS, "egress", "to")):
            raw = spec.get(field)
            if raw is None:
                raw = []
            if not isinstance(raw, list):
                raise UserError(f"{field} must be a list of rules", key=f"spec.{field}")
            compiled = tuple(
                self._rule(r, i, f"spec.{field}[{i}]", peers_field, key) for i, r in enumerate(raw)
            )
            rules[direction] = compiled if direction in types else None
        return CompiledPolicy(
            key=key,
            namespace=policy_namespace(obj),
            selects=compile_selector(pod_selector),
            ingress=rules[INGRESS],
            egress=rules[EGRESS],
        )

    def _rule(self, raw: Any, index: int, where: str, peers_field: str, policy: str) -> CompiledRule:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise UserError("a rule must be a mapping", key=where)
        for field in raw:
            if field not in (peers_field, "ports"):
                raise UserError(
                    f"unknown field {field!r} (expected {peers_field}, ports)", key=f"{where}.{field}"
                )
        peers = raw.get(peers_field)
        if peers is not None and not isinstance(peers, list):
            raise UserError(f"{peers_field} must be a list of peers", key=f"{where}.{peers_field}")
        ports = raw.get("ports")
        if ports is not None and not isinstance(ports, list):
            raise UserError("ports must be a list", key=f"{where}.ports")
        return CompiledRule(
            index=index,
            peers=tuple(self._peer(p, f"{where}.{peers_field}[{i}]", policy) for i, p in enumerate(peers))
            if peers
            else None,
            ports=tuple(_port(p, f"{where}.ports[{i}]") for i, p in enumerate(ports)) if ports else None,
        )

    def _peer(self, raw: Any, where: str, policy: str) -> CompiledPeer:
        if not isinstance(raw, Mapping):
            raise UserError("a peer must be a mapping", key=where)
        for field in raw:
            if field not in ("podSelector", "namespaceSelector", "ipBlock"):
                raise UserError(
                    f"unknown field {field!r} (expected podSelector, namespaceSelector, ipBlock)",
                    key=f"{where}.{field}",
                )
        pod_sel, ns_sel, block = raw.get("podSelector"), raw.get("namespaceSelector"), raw.get("ipBlock")
        if block is not None:
            if pod_sel is not None or ns_sel is not None:
                raise UserError("ipBlock cannot be combined with podSelector or namespaceSelector", key=where)
            return CompiledPeer(
                None, None, self._ip_block(block, f"{where}.ipBlock"), policy, f"{where}.ipBlock"
            )
        if pod_sel is None and ns_sel is None:
            raise UserError("a peer needs podSelector, namespaceSelector or ipBlock", key=where)
        validate_selector(pod_sel, f"{where}.podSelector")
        validate_selector(ns_sel, f"{where}.namespaceSelector")
        self.peer_label_keys |= selector_keys(pod_sel)
        return CompiledPeer(
            ns_matcher=None if ns_sel is None else compile_selector(ns_sel),
            pod_matcher=None if pod_sel is None else compile_selector(pod_sel),
            block=None,
            policy=policy,
            where=where,
        )

    def _ip_block(self, raw: Any, where: str) -> int:
        if not isinstance(raw, Mapping):
            raise UserError("ipBlock must be a mapping with cidr and except", key=where)
        for field in raw:
            if field not in ("cidr", "except"):
                raise UserError(f"unknown field {field!r} (expected cidr, except)", key=f"{where}.{field}")
        net = _network(raw.get("cidr"), f"{where}.cidr")
        excepts = raw.get("except") or []
        if not isinstance(excepts, list):
            raise UserError("except must be a list of CIDRs", key=f"{where}.except")
        ranges = []
        for i, text in enumerate(excepts):
            sub = _network(text, f"{where}.except[{i}]")
            # The API server requires each except to be a strict subset of cidr.
            inside = sub.version == net.version and sub.subnet_of(net)  # type: ignore[arg-type]
            if not inside or sub.prefixlen <= net.prefixlen:
                raise UserError(
                    f"except {text!r} must be a strict subset of cidr {raw['cidr']!r}",
                    key=f"{where}.except[{i}]",
                )
            ranges.append((int(sub.network_address), int(sub.broadcast_address)))
        block = IpBlock(
            net.version, int(net.network_address), int(net.broadcast_address), tuple(sorted(ranges))
        )
        if block not in self._block_index:
            self._block_index[block] = len(self.blocks)
            self.blocks.append(block)
        return self._block_index[block]


def _policy_types(spec: Mapping[str, Any]) -> set[str]:
    raw = spec.get("policyTypes")
    if not raw:  # absent or empty: the API server defaults it
        egress = spec.get("egress")
        return {INGRESS, EGRESS} if isinstance(egress, list) and egress else {INGRESS}
    if not isinstance(raw, list):
        raise UserError("policyTypes must be a list of Ingress, Egress", key="spec.policyTypes")
    types = set()
    for i, t in enumerate(raw):
        if t not in _POLICY_TYPES:
            raise UserError(
                f"unknown policy type {t!r} (expected Ingress or Egress)", key=f"spec.policyTypes[{i}]"
            )
        types.add(_POLICY_TYPES[t])
    return types


def _port(raw: Any, where: str) -> PortRule:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise UserError("a port entry must be a mapping with protocol, port, endPort", key=where)
    for field in raw:
        if field not in ("protocol", "port", "endPort"):
            raise UserError(
                f"unknown field {field!r} (expected protocol, port, endPort)", key=f"{where}.{field}"
            )
    protocol = raw.get("protocol")
    if protocol is None:
        protocol = "TCP"
    if protocol not in PROTOCOLS:
        raise UserError(
            f"unknown protocol {protocol!r} (expected {', '.join(PROTOCOLS)})", key=f"{where}.protocol"
        )
    port, end_port = raw.get("port"), raw.get("endPort")
    if isinstance(port, str):
        if not _PORT_NAME.match(port) or "--" in port or not re.search("[a-z]", port):
            raise UserError(f"{port!r} is neither a port number nor a valid port name", key=f"{where}.port")
        if end_port is not None:
            raise UserError("endPort cannot be used with a named port", key=f"{where}.endPort")
        return PortRule(protocol, None, None, port)
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise UserError(f"port {port!r} must be a number from 1 to 65535 or a port name", key=f"{where}.port")
    if end_port is not None:
        if port is None:
            raise UserError("endPort needs port", key=f"{where}.endPort")
        if isinstance(end_port, bool) or not isinstance(end_port, int) or not port <= end_port <= 65535:
            raise UserError(
                f"endPort {end_port!r} must be a number from port ({port}) to 65535", key=f"{where}.endPort"
            )
    return PortRule(protocol, port, end_port, None)


def _network(text: Any, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(text, str) or "/" not in text:
        raise UserError(f"{text!r} is not a CIDR (like 10.0.0.0/24)", key=where)
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise UserError(f"{text!r} is not a valid CIDR", key=where) from None
