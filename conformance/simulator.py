"""The NetworkPolicy oracle: whether a connection is allowed, and why.

Semantics follow the networking.k8s.io/v1 API reference (Kubernetes 1.31, "NetworkPolicy v1",
https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/) and the
concept page (https://kubernetes.io/docs/concepts/services-networking/network-policies/):

- A pod is isolated for a direction when a policy of its namespace selects it (``spec.podSelector``)
  and that direction is among the policy's ``policyTypes`` (default: Ingress, plus Egress when
  ``spec.egress`` has rules). An isolated pod accepts only what some rule of those policies allows.
- Rules are OR-ed, peers in a rule are OR-ed; a peer's namespaceSelector and podSelector are AND-ed.
  A podSelector alone means pods of the policy's namespace. Missing or empty ``from``/``to`` matches
  every peer (outside IPs included); missing or empty ``ports`` matches every port.
- A port entry matches its protocol (default TCP) and its port: a number, a ``port..endPort`` range,
  a container port name (resolved on the destination pod, for ingress and egress rules alike; it never
  matches an address outside the cluster) or, when absent, every port of the protocol.
- ``ipBlock`` matches addresses in ``cidr`` and not in any ``except``, pod IPs included (as the
  upstream e2e tests expect); selector peers never match an address outside the cluster.
- A connection needs ingress allowed at the destination and egress allowed at the source.

The simulator reads the cluster once, when it is built: later changes to the Cluster are not seen.
A string source or destination is an address outside the cluster, even if a pod has that IP.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from conformance.errors import UserError
from conformance.model import NAME_LABEL, PROTOCOLS, Cluster, Pod, policy_key, policy_namespace
from conformance.selectors import LabelMatcher, compile_selector, selector_keys, validate_selector

INGRESS = "ingress"
EGRESS = "egress"
DIRECTIONS = (INGRESS, EGRESS)
_POLICY_TYPES = {"Ingress": INGRESS, "Egress": EGRESS}
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")  # IANA_SVC_NAME, as the API validates it


@dataclass(frozen=True, slots=True)
class DirectionVerdict:
    """The answer for one direction: ingress at the destination or egress at the source."""

    allowed: bool
    isolated: bool
    policy: str | None  # "ns/name" of the policy whose rule allowed it
    rule: int | None  # index of that rule in spec.ingress or spec.egress
    reason: str


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str
    ingress: DirectionVerdict
    egress: DirectionVerdict


# ---------------------------------------------------------------- compiled policies


@dataclass(frozen=True, slots=True)
class _PortRule:
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
class _IpBlock:
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
class _Peer:
    ns_matcher: LabelMatcher | None  # None: the policy's own namespace (podSelector alone)
    pod_matcher: LabelMatcher | None  # None: every pod of the selected namespaces
    block: int | None  # index of an ipBlock in Simulator._blocks; selectors are then unused
    policy: str
    where: str


@dataclass(frozen=True, slots=True)
class _Rule:
    index: int
    peers: tuple[_Peer, ...] | None  # None: every peer
    ports: tuple[_PortRule, ...] | None  # None: every port


@dataclass(frozen=True, slots=True)
class _Policy:
    key: str
    namespace: str
    selects: LabelMatcher
    ingress: tuple[_Rule, ...] | None  # None: the policy does not isolate for ingress
    egress: tuple[_Rule, ...] | None


class _Compiler:
    """Validates and compiles NetworkPolicy objects; collects the ipBlocks and the label keys they use."""

    def __init__(self) -> None:
        self.blocks: list[_IpBlock] = []
        self._block_index: dict[_IpBlock, int] = {}
        self.pod_label_keys: set[str] = set()

    def policy(self, obj: Any) -> _Policy:
        if not isinstance(obj, Mapping):
            raise UserError(f"a NetworkPolicy must be a mapping, not {type(obj).__name__}")
        key = policy_key(obj)
        try:
            return self._policy(obj, key)
        except UserError as e:
            raise UserError(f"NetworkPolicy {key}: {e.message}", source=e.source, key=e.key) from None

    def _policy(self, obj: Mapping[str, Any], key: str) -> _Policy:
        spec = obj.get("spec")
        if spec is None:
            spec = {}  # the API server defaults an absent spec to the zero value: select all, deny ingress
        if not isinstance(spec, Mapping):
            raise UserError("spec must be a mapping", key="spec")
        pod_selector = spec.get("podSelector")
        validate_selector(pod_selector, "spec.podSelector")
        self.pod_label_keys |= selector_keys(pod_selector)
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
        return _Policy(
            key=key,
            namespace=policy_namespace(obj),
            selects=compile_selector(pod_selector),
            ingress=rules[INGRESS],
            egress=rules[EGRESS],
        )

    def _rule(self, raw: Any, index: int, where: str, peers_field: str, policy: str) -> _Rule:
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
        return _Rule(
            index=index,
            peers=tuple(self._peer(p, f"{where}.{peers_field}[{i}]", policy) for i, p in enumerate(peers))
            if peers
            else None,
            ports=tuple(_port(p, f"{where}.ports[{i}]") for i, p in enumerate(ports)) if ports else None,
        )

    def _peer(self, raw: Any, where: str, policy: str) -> _Peer:
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
            return _Peer(None, None, self._ip_block(block, f"{where}.ipBlock"), policy, f"{where}.ipBlock")
        if pod_sel is None and ns_sel is None:
            raise UserError("a peer needs podSelector, namespaceSelector or ipBlock", key=where)
        validate_selector(pod_sel, f"{where}.podSelector")
        validate_selector(ns_sel, f"{where}.namespaceSelector")
        self.pod_label_keys |= selector_keys(pod_sel)
        return _Peer(
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
            if sub.version != net.version or not sub.subnet_of(net) or sub.prefixlen <= net.prefixlen:  # type: ignore[arg-type]
                raise UserError(
                    f"except {text!r} must be a strict subset of cidr {raw['cidr']!r}",
                    key=f"{where}.except[{i}]",
                )
            ranges.append((int(sub.network_address), int(sub.broadcast_address)))
        block = _IpBlock(
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


def _port(raw: Any, where: str) -> _PortRule:
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
        return _PortRule(protocol, None, None, port)
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise UserError(f"port {port!r} must be a number from 1 to 65535 or a port name", key=f"{where}.port")
    if end_port is not None:
        if port is None:
            raise UserError("endPort needs port", key=f"{where}.endPort")
        if isinstance(end_port, bool) or not isinstance(end_port, int) or not port <= end_port <= 65535:
            raise UserError(
                f"endPort {end_port!r} must be a number from port ({port}) to 65535", key=f"{where}.endPort"
            )
    return _PortRule(protocol, port, end_port, None)


def _network(text: Any, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(text, str) or "/" not in text:
        raise UserError(f"{text!r} is not a CIDR (like 10.0.0.0/24)", key=where)
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise UserError(f"{text!r} is not a valid CIDR", key=where) from None


# ---------------------------------------------------------------- endpoints


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """A class of sources/destinations that every policy treats alike.

    Two pods of one namespace whose labels agree on every key a selector uses, and whose IPs fall in
    the same ipBlocks, get the same answers: verdicts are computed once per class.
    """

    index: int
    kind: str  # "pod", "host" (a host-network pod: known by its IP only) or "external" (an IP)
    namespace: str | None
    ns_labels: Mapping[str, str]
    labels: Mapping[str, str]  # only the keys some selector uses
    blocks: frozenset[int] | None  # the ipBlocks containing its IP; None when it has no IP
    example: str  # a pod key or an IP, for messages
    ingress: tuple[_Policy, ...]  # policies isolating it for ingress
    egress: tuple[_Policy, ...]
    ingress_profile: int  # equal for endpoints of one kind isolated for ingress by the same policies
    egress_profile: int


_NOT_ISOLATED = {
    (INGRESS, "pod"): "ingress not isolated",
    (EGRESS, "pod"): "egress not isolated",
    (INGRESS, "host"): "ingress not isolated (host-network pod: NetworkPolicy does not apply)",
    (EGRESS, "host"): "egress not isolated (host-network pod: NetworkPolicy does not apply)",
    (INGRESS, "external"): "ingress not isolated (destination outside the cluster)",
    (EGRESS, "external"): "egress not isolated (source outside the cluster)",
}


class Simulator:
    """Decides connections in a Cluster by its NetworkPolicies.

    Host-network pods: NetworkPolicy does not apply to them (the API reference leaves them out of
    scope and CNIs such as Calico and Cilium do not isolate them), so as destinations they are never
    isolated, and as sources they are not isolated for egress and are known by their IP only: no pod or
    namespace selector matches them, an ipBlock containing their (node) IP does.
    """

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        compiler = _Compiler()
        by_key: dict[str, _Policy] = {}
        for obj in cluster.policies:
            compiled = compiler.policy(obj)
            by_key[compiled.key] = compiled  # a later object with the same ns/name replaces the earlier one
        self._blocks = compiler.blocks
        self._pod_label_keys = frozenset(compiler.pod_label_keys)
        self._by_ns: dict[str, list[_Policy]] = {}
        for key in sorted(by_key):
            self._by_ns.setdefault(by_key[key].namespace, []).append(by_key[key])
        self._endpoints: list[_Endpoint] = []
        self._endpoint_index: dict[tuple, int] = {}
        self._profiles: dict[tuple[str, ...], int] = {}  # a number per kind and set of isolating policies
        self._pod_endpoint: dict[int, int] = {}
        self._pod_endpoint = {id(p): self._endpoint(p).index for p in cluster.pods}
        # Memos: verdicts and their parts are computed once per equivalence class and shared.
        self._interned: dict[tuple, DirectionVerdict] = {}  # one object per distinct direction answer
        self._ingress_memo: dict[tuple, dict[int, DirectionVerdict]] = {}
        self._egress_memo: dict[tuple, DirectionVerdict] = {}
        self._candidates: dict[tuple, list[tuple[_Policy, _Rule]]] = {}
        self._verdicts: dict[tuple[int, int], Verdict] = {}

    # ------------------------------------------------------------ public API

    def verdict(self, src: Pod | str, dst: Pod | str, port: int | str, protocol: str = "TCP") -> Verdict:
        """Whether ``src`` may connect to ``dst`` on ``port``/``protocol``, and why.

        ``port`` may be a container port name: it is resolved on ``dst`` (UserError if ``dst`` has none).
        """
        number, protocol = self._resolve_port(dst, port, protocol, strict=True)  # type: ignore[misc]
        src_ep, dst_ep = self._endpoint(src), self._endpoint(dst)
        names = self._names_at(dst, dst_ep, number, protocol)
        return self._cell(src_ep, dst_ep, number, protocol, names)

    def isolating(self, pod: Pod, direction: str) -> list[str]:
        """Keys (``ns/name``) of the policies isolating ``pod`` for ``direction`` ("ingress" or "egress")."""
        if direction not in DIRECTIONS:
            raise UserError(f"unknown direction {direction!r} (expected ingress or egress)")
        ep = self._endpoint(pod)
        return [p.key for p in (ep.ingress if direction == INGRESS else ep.egress)]

    def matrix(
        self,
        sources: Sequence[Pod | str],
        destinations: Sequence[Pod | str],
        ports: Sequence[tuple[int | str, str]],
    ) -> Iterator[tuple[Pod | str, Pod | str, int, str, Verdict]]:
        """Every (src, dst, port, protocol, verdict) with ``src is not dst``: for each port, each
        destination, each source, in the given orders.

        A named port is resolved per destination (destinations without it are skipped); its protocol is
        the given one, or the container port's own when the given protocol is empty.
        """
        sources = list(sources)
        src_eps = [self._endpoint(s) for s in sources]
        classes = {ep.index: ep for ep in src_eps}
        src_index = [ep.index for ep in src_eps]
        positions: dict[int, list[int]] = {}
        for i, s in enumerate(sources):
            positions.setdefault(id(s), []).append(i)
        dst_eps = [self._endpoint(d) for d in destinations]
        columns: dict[tuple, tuple[Verdict, ...]] = {}
        for port, protocol in ports:
            for dst, dst_ep in zip(destinations, dst_eps, strict=True):
                resolved = self._resolve_port(dst, port, protocol, strict=False)
                if resolved is None:
                    continue
                number, proto = resolved
                names = self._names_at(dst, dst_ep, number, proto)
                ckey = (dst_ep.index, number, proto, names)
                verdicts = columns.get(ckey)
                if verdicts is None:
                    verdicts = columns[ckey] = self._column(classes, src_index, dst_ep, number, proto, names)
                skip = positions.get(id(dst))
                if skip is None:
                    yield from zip(sources, repeat(dst), repeat(number), repeat(proto), verdicts)
                else:
                    yield from _zip_skipping(sources, verdicts, skip, dst, number, proto)

    # ------------------------------------------------------------ evaluation

    def _column(
        self,
        classes: Mapping[int, _Endpoint],
        src_index: list[int],
        dst_ep: _Endpoint,
        port: int,
        protocol: str,
        names: tuple[str, ...],
    ) -> tuple[Verdict, ...]:
        """The verdicts for one destination and port, one per source, computed once per source class."""
        by_class: list[Verdict | None] = [None] * len(self._endpoints)
        ingress = self._ingress_answers(dst_ep, port, protocol, names)
        egress_by_profile: dict[int, DirectionVerdict] = {}  # egress depends on the source's policies only
        verdicts = self._verdicts
        for index, src_ep in classes.items():
            ing = ingress.get(index)
            if ing is None:
                ing = ingress[index] = self._ingress(dst_ep, src_ep, port, protocol, names)
            eg = egress_by_profile.get(src_ep.egress_profile)
            if eg is None:
                eg = egress_by_profile[src_ep.egress_profile] = self._egress(
                    src_ep, dst_ep, port, protocol, names
                )
            verdict = verdicts.get((id(ing), id(eg)))
            by_class[index] = verdict if verdict is not None else self._combine(ing, eg)
        if not src_index:
            return ()
        if len(src_index) == 1:
            return (by_class[src_index[0]],)  # type: ignore[return-value]
        return itemgetter(*src_index)(by_class)

    def _cell(
        self, src: _Endpoint, dst: _Endpoint, port: int, protocol: str, names: tuple[str, ...]
    ) -> Verdict:
        answers = self._ingress_answers(dst, port, protocol, names)
        ingress = answers.get(src.index)
        if ingress is None:
            ingress = answers[src.index] = self._ingress(dst, src, port, protocol, names)
        egress = self._egress(src, dst, port, protocol, names)
        return self._verdicts.get((id(ingress), id(egress))) or self._combine(ingress, egress)

    def _combine(self, ingress: DirectionVerdict, egress: DirectionVerdict) -> Verdict:
        verdict = self._verdicts[(id(ingress), id(egress))] = Verdict(
            allowed=ingress.allowed and egress.allowed,
            reason=f"{ingress.reason}; {egress.reason}",
            ingress=ingress,
            egress=egress,
        )
        return verdict

    def _ingress_answers(
        self, dst: _Endpoint, port: int, protocol: str, names: tuple[str, ...]
    ) -> dict[int, DirectionVerdict]:
        """Ingress answers by source class, shared by the destinations isolated by the same policies."""
        key = (dst.ingress_profile, port, protocol, names)
        answers = self._ingress_memo.get(key)
        if answers is None:
            answers = self._ingress_memo[key] = {}
        return answers

    def _ingress(
        self, dst: _Endpoint, src: _Endpoint, port: int, protocol: str, names: tuple[str, ...]
    ) -> DirectionVerdict:
        if not dst.ingress:
            return self._intern(INGRESS, dst.kind)
        return self._decide(INGRESS, dst.ingress, dst.ingress_profile, src, port, protocol, names)

    def _egress(
        self, src: _Endpoint, dst: _Endpoint, port: int, protocol: str, names: tuple[str, ...]
    ) -> DirectionVerdict:
        if not src.egress:
            return self._intern(EGRESS, src.kind)
        key = (src.egress_profile, dst.index, port, protocol, names)
        answer = self._egress_memo.get(key)
        if answer is None:
            answer = self._egress_memo[key] = self._decide(
                EGRESS, src.egress, src.egress_profile, dst, port, protocol, names
            )
        return answer

    def _decide(
        self,
        direction: str,
        policies: tuple[_Policy, ...],
        profile: int,
        peer: _Endpoint,
        port: int,
        protocol: str,
        names: tuple[str, ...],
    ) -> DirectionVerdict:
        """The answer of isolating ``policies`` for a connection with ``peer``: the first rule matching it."""
        key = (direction, profile, port, protocol, names)
        candidates = self._candidates.get(key)
        if candidates is None:
            # The rules whose ports match: computed once per set of policies and port.
            candidates = self._candidates[key] = [
                (policy, rule)
                for policy in policies
                for rule in (policy.ingress if direction == INGRESS else policy.egress) or ()
                if rule.ports is None or any(p.matches(port, protocol, names) for p in rule.ports)
            ]
        for policy, rule in candidates:
            if rule.peers is None or any(self._peer_matches(p, policy.namespace, peer) for p in rule.peers):
                return self._intern(direction, "allowed", policy.key, rule.index)
        return self._intern(direction, "blocked", tuple(p.key for p in policies))

    def _intern(self, direction: str, what: str, *detail: Any) -> DirectionVerdict:
        key = (direction, what, *detail)
        dv = self._interned.get(key)
        if dv is not None:
            return dv
        if what == "allowed":
            policy, rule = detail
            dv = DirectionVerdict(True, True, policy, rule, f"{direction} allowed by {policy} rule {rule}")
        elif what == "blocked":
            whose = "destination" if direction == INGRESS else "source"
            dv = DirectionVerdict(
                False,
                True,
                None,
                None,
                f"{direction} blocked: {whose} isolated by {', '.join(detail[0])}; no rule matches",
            )
        else:
            dv = DirectionVerdict(True, False, None, None, _NOT_ISOLATED[(direction, what)])
        self._interned[key] = dv
        return dv

    def _peer_matches(self, peer: _Peer, namespace: str, ep: _Endpoint) -> bool:
        if peer.block is not None:
            if ep.blocks is None:
                raise UserError(
                    f"{ep.example} has no IP, and NetworkPolicy {peer.policy} needs it for its ipBlock",
                    key=peer.where,
                )
            return peer.block in ep.blocks
        if ep.kind != "pod":
            return False
        if peer.ns_matcher is None:
            if ep.namespace != namespace:
                return False
        elif not peer.ns_matcher(ep.ns_labels):
            return False
        return peer.pod_matcher is None or peer.pod_matcher(ep.labels)

    # ------------------------------------------------------------ endpoints and ports

    def _endpoint(self, who: Pod | str) -> _Endpoint:
        if isinstance(who, str):
            key: tuple = ("external", None, (), self._blocks_of(who, who))
            example = who
        else:
            index = self._pod_endpoint.get(id(who))
            if index is not None:
                return self._endpoints[index]
            blocks = self._blocks_of(who.ip, who.key) if who.ip else None
            if who.host_network:
                key = ("host", None, (), blocks)
            else:
                keys = self._pod_label_keys
                labels = tuple(sorted((k, v) for k, v in who.labels.items() if k in keys))
                key = ("pod", who.namespace, labels, blocks)
            example = who.key
        index = self._endpoint_index.get(key)
        if index is not None:
            return self._endpoints[index]
        kind, namespace, labels, blocks = key
        ns_labels: Mapping[str, str] = {}
        ingress: tuple[_Policy, ...] = ()
        egress: tuple[_Policy, ...] = ()
        if kind == "pod":
            ns = self._cluster.namespaces.get(namespace)
            ns_labels = ns.labels if ns is not None else {NAME_LABEL: namespace}
            label_map = dict(labels)
            selecting = [p for p in self._by_ns.get(namespace, ()) if p.selects(label_map)]
            ingress = tuple(p for p in selecting if p.ingress is not None)
            egress = tuple(p for p in selecting if p.egress is not None)
        ep = _Endpoint(
            len(self._endpoints),
            kind,
            namespace,
            ns_labels,
            dict(labels),
            blocks,
            example,
            ingress,
            egress,
            self._profile(kind, ingress),
            self._profile(kind, egress),
        )
        self._endpoints.append(ep)
        self._endpoint_index[key] = ep.index
        return ep

    def _profile(self, kind: str, policies: tuple[_Policy, ...]) -> int:
        # The kind matters when no policy applies: the "not isolated" reason names it.
        return self._profiles.setdefault((kind, *(p.key for p in policies)), len(self._profiles))

    def _blocks_of(self, ip: str, who: str) -> frozenset[int]:
        if not self._blocks and who != ip:
            return frozenset()  # no ipBlock anywhere: a pod's IP never matters
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            what = f"{ip!r}" if who == ip else f"the IP {ip!r} of {who}"
            raise UserError(f"{what} is not an IP address") from None
        version, number = addr.version, int(addr)
        return frozenset(i for i, b in enumerate(self._blocks) if b.contains(version, number))

    def _resolve_port(
        self, dst: Pod | str, port: int | str, protocol: str, *, strict: bool
    ) -> tuple[int, str] | None:
        if isinstance(port, str) and not port.isdigit():
            found = dst.named_port(port, protocol or None) if isinstance(dst, Pod) else None
            if found is None:
                if not strict:
                    return None
                where = dst.key if isinstance(dst, Pod) else f"{dst} (outside the cluster)"
                raise UserError(
                    f"{where} has no {protocol or ''} container port named {port!r}".replace("  ", " ")
                )
            return found.port, found.protocol
        number = int(port)
        if not 1 <= number <= 65535:
            raise UserError(f"port {port!r} must be from 1 to 65535")
        if protocol not in PROTOCOLS:
            raise UserError(f"unknown protocol {protocol!r} (expected {', '.join(PROTOCOLS)})")
        return number, protocol

    def _names_at(self, dst: Pod | str, ep: _Endpoint, port: int, protocol: str) -> tuple[str, ...]:
        """Names of the destination's container ports at this port and protocol (for named-port rules)."""
        if ep.kind != "pod" or not isinstance(dst, Pod):
            return ()
        return tuple(p.name for p in dst.ports if p.name and p.port == port and p.protocol == protocol)


def _zip_skipping(
    sources: list[Pod | str],
    verdicts: tuple[Verdict, ...],
    skip: list[int],
    dst: Pod | str,
    port: int,
    proto: str,
) -> Iterator[tuple[Pod | str, Pod | str, int, str, Verdict]]:
    """The rows of one column without the sources at positions ``skip`` (the destination itself)."""
    parts = []
    start = 0
    for i in skip:
        parts.append(zip(sources[start:i], repeat(dst), repeat(port), repeat(proto), verdicts[start:i]))
        start = i + 1
    parts.append(zip(sources[start:], repeat(dst), repeat(port), repeat(proto), verdicts[start:]))
    return chain.from_iterable(parts)
