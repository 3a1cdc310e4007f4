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
Policies are validated and compiled by ``conformance.netpol.policy_compiler``; this module evaluates them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from conformance.errors import UserError
from conformance.netpol.model import NAME_LABEL, PROTOCOLS, Cluster, Pod
from conformance.netpol.policy_compiler import (
    DIRECTIONS,
    EGRESS,
    INGRESS,
    CompiledPeer,
    CompiledPolicy,
    CompiledRule,
    PolicyCompiler,
)


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


# ---------------------------------------------------------------- equivalence classes


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """A class of sources/destinations that every peer of every policy matches alike.

    Pods of one namespace whose labels agree on every key a peer's podSelector uses, and whose IPs fall
    in the same ipBlocks, are one endpoint: answers are computed once per endpoint.
    """

    index: int
    kind: str  # "pod", "host" (a host-network pod: known by its IP only) or "external" (an IP)
    namespace: str | None
    ns_labels: Mapping[str, str]
    labels: Mapping[str, str]  # only the keys some peer's podSelector uses
    blocks: frozenset[int] | None  # the ipBlocks containing its IP; None when it has no IP
    example: str  # a pod key or an IP, for messages


@dataclass(frozen=True, slots=True)
class _Profile:
    """The policies isolating a class of pods for one direction (none for host-network pods and IPs)."""

    index: int
    kind: str  # as in _Endpoint: the "not isolated" reason names it
    policies: tuple[CompiledPolicy, ...]


@dataclass(frozen=True, slots=True)
class _Place:
    """What a pod or an address is to the simulator: a peer class and its two isolation profiles."""

    peer: _Endpoint
    ingress: _Profile
    egress: _Profile


COLUMNS_KEPT = 256  # columns of verdicts per source class that matrix() keeps for reuse

_NOT_ISOLATED = {
    (INGRESS, "pod"): "ingress not isolated",
    (EGRESS, "pod"): "egress not isolated",
    (INGRESS, "host"): "ingress not isolated (host-network pod: NetworkPolicy does not apply)",
    (EGRESS, "host"): "egress not isolated (host-network pod: NetworkPolicy does not apply)",
    (INGRESS, "external"): "ingress not isolated (destination outside the cluster)",
    (EGRESS, "external"): "egress not isolated (source outside the cluster)",
}

Row = tuple[Pod | str, Pod | str, int, str, Verdict]
PortContext = tuple[int, str, tuple[str, ...]]  # port, protocol, the destination's names for that port


class Simulator:
    """Decides connections in a Cluster by its NetworkPolicies.

    Host-network pods: the concept page leaves their behaviour undefined between two options and
    names "the most common implementation": the plugin "ignores hostNetwork pods when matching
    podSelector and namespaceSelector. Traffic to/from hostNetwork pods is treated the same as all
    other traffic to/from the node IP." The simulator takes that one: a host-network pod is never
    isolated (neither as a destination nor for its egress), and as a peer it is known by its IP only:
    no pod or namespace selector matches it, an ipBlock containing its (node) IP does.

    Speed: a verdict is a function of (the destination's ingress profile, the source's peer class) and
    (the source's egress profile, the destination's peer class), for a port. Those answers are computed
    once and shared; ``matrix`` builds each column (a destination and port) from them with list lookups,
    and destinations with the same profile and peer class share their column.
    """

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        compiler = PolicyCompiler()
        by_key: dict[str, CompiledPolicy] = {}
        for obj in cluster.policies:
            compiled = compiler.policy(obj)
            by_key[compiled.key] = compiled  # a later object with the same ns/name replaces the earlier one
        self._blocks = compiler.blocks
        self._peer_keys = frozenset(compiler.peer_label_keys)
        self._target_keys = frozenset(compiler.target_label_keys)
        self._by_ns: dict[str, list[CompiledPolicy]] = {}
        for key in sorted(by_key):
            self._by_ns.setdefault(by_key[key].namespace, []).append(by_key[key])
        self._endpoints: dict[tuple, _Endpoint] = {}
        self._profiles: dict[tuple, _Profile] = {}
        self._pod_profiles: dict[tuple, tuple[_Profile, _Profile]] = {}
        self._externals: dict[str, _Place] = {}
        # Memos: answers are computed once per class and shared; equal answers are one object.
        self._interned: dict[tuple, DirectionVerdict] = {}
        self._ingress_memo: dict[tuple, dict[int, DirectionVerdict]] = {}
        self._egress_memo: dict[tuple, DirectionVerdict] = {}
        self._candidates: dict[tuple, list[tuple[CompiledPolicy, CompiledRule]]] = {}
        self._codes: dict[int, int] = {}  # id(DirectionVerdict) -> its number
        self._by_code: list[DirectionVerdict] = []
        self._by_codes: dict[int, Verdict] = {}  # ingress code << 32 | egress code -> Verdict
        self._places: dict[int, _Place] = {}
        self._places = {id(p): self._place(p) for p in cluster.pods}

    # ------------------------------------------------------------ public API

    def verdict(self, src: Pod | str, dst: Pod | str, port: int | str, protocol: str = "TCP") -> Verdict:
        """Whether ``src`` may connect to ``dst`` on ``port``/``protocol``, and why.

        ``port`` may be a container port name: it is resolved on ``dst`` (UserError if ``dst`` has none).
        """
        resolved = self._resolve_port(dst, port, protocol, strict=True)
        assert resolved is not None  # strict: an unknown name raised
        number, protocol = resolved
        src_place, dst_place = self._place(src), self._place(dst)
        ctx = (number, protocol, _names_at(dst, dst_place, number, protocol))
        return self._verdict(
            self._ingress(dst_place.ingress, src_place.peer, ctx),
            self._egress(src_place.egress, dst_place.peer, ctx),
        )

    def isolating(self, pod: Pod, direction: str) -> list[str]:
        """Keys (``ns/name``) of the policies isolating ``pod`` for ``direction`` ("ingress" or "egress")."""
        if direction not in DIRECTIONS:
            raise UserError(f"unknown direction {direction!r} (expected ingress or egress)")
        place = self._place(pod)
        return [p.key for p in (place.ingress if direction == INGRESS else place.egress).policies]

    def matrix(
        self,
        sources: Sequence[Pod | str],
        destinations: Sequence[Pod | str],
        ports: Sequence[tuple[int | str, str]],
    ) -> Iterator[Row]:
        """Every (src, dst, port, protocol, verdict) with ``src is not dst``: for each port, each
        destination, each source, in the given orders.

        A named port is resolved per destination (destinations without it are skipped); its protocol is
        the given one, or the container port's own when the given protocol is empty.
        """
        return chain.from_iterable(self._columns(list(sources), destinations, ports))

    # ------------------------------------------------------------ the matrix, column by column

    def _columns(
        self,
        sources: list[Pod | str],
        destinations: Sequence[Pod | str],
        ports: Sequence[tuple[int | str, str]],
    ) -> Iterator[Iterator[Row]]:
        # Sources by class, a class being a (peer class, egress profile) pair, all numbered locally.
        src_peers = _Numbering()
        src_profiles = _Numbering()
        classes: dict[tuple[int, int], int] = {}
        class_of: list[int] = []
        positions: dict[int, list[int]] = {}
        for i, src in enumerate(sources):
            place = self._place(src)
            pair = (src_peers.number(place.peer), src_profiles.number(place.egress))
            class_of.append(classes.setdefault(pair, len(classes)))
            positions.setdefault(id(src), []).append(i)
        expand = _expander(class_of)
        class_pairs = list(classes)
        dst_places = [self._place(d) for d in destinations]
        dst_peers = _Numbering()
        for place in dst_places:
            dst_peers.number(place.peer)
        # Ingress answers for every source peer class; egress answers for every destination peer class.
        ingress_answers = _Answers(self, INGRESS, src_peers.items)
        egress_answers = _Answers(self, EGRESS, dst_peers.items)
        egress_vectors: dict[tuple, list[int]] = {}
        # One verdict per source class, not per source, and at most COLUMNS_KEPT of them: all pairs of
        # 5,000 pods have thousands of distinct columns, and keeping them all expanded (5,000 references
        # each) took hundreds of MiB. Destinations come namespace by namespace, so the recent ones hit.
        columns: dict[tuple, list[Verdict]] = {}
        for port, protocol in ports:
            for dst, place in zip(destinations, dst_places, strict=True):
                resolved = self._resolve_port(dst, port, protocol, strict=False)
                if resolved is None:
                    continue
                number, proto = resolved
                ctx = (number, proto, _names_at(dst, place, number, proto))
                ckey = (place.ingress.index, place.peer.index, ctx)
                by_class = columns.get(ckey)
                if by_class is None:
                    ingress = ingress_answers.codes(place.ingress, ctx)
                    ekey = (place.peer.index, ctx)
                    egress = egress_vectors.get(ekey)
                    if egress is None:
                        at = dst_peers.numbers[place.peer.index]
                        egress = egress_vectors[ekey] = [
                            egress_answers.codes(profile, ctx)[at] for profile in src_profiles.items
                        ]
                    if len(columns) >= COLUMNS_KEPT:
                        columns.clear()
                    by_class = columns[ckey] = self._column(ingress, egress, class_pairs)
                column = expand(by_class)
                skip = positions.get(id(dst))
                if skip is None:
                    yield zip(sources, repeat(dst), repeat(number), repeat(proto), column)
                else:
                    yield _zip_skipping(sources, column, skip, dst, number, proto)

    def _column(
        self, ingress: list[int], egress: list[int], classes: Sequence[tuple[int, int]]
    ) -> list[Verdict]:
        """One verdict per source class, from the codes of the ingress answer for its peer class and of
        the egress answer for its egress profile."""
        get, make = self._by_codes.get, self._verdict_of_codes
        one_ingress, one_egress = len(set(ingress)) == 1, len(set(egress)) == 1
        if one_ingress and one_egress:  # the usual case: one answer for every source
            key = (ingress[0] << 32) | egress[0]
            return [get(key) or make(key)] * len(classes)
        if one_ingress:
            high = ingress[0] << 32
            by_profile = [get(high | e) or make(high | e) for e in egress]
            return [by_profile[e] for _, e in classes]
        if one_egress:
            low = egress[0]
            by_peer = [get((i << 32) | low) or make((i << 32) | low) for i in ingress]
            return [by_peer[p] for p, _ in classes]
        return [
            get((ingress[p] << 32) | egress[e]) or make((ingress[p] << 32) | egress[e]) for p, e in classes
        ]

    def _candidate_rules(
        self, direction: str, profile: _Profile, ctx: PortContext
    ) -> list[tuple[CompiledPolicy, CompiledRule]]:
        """The rules of the profile's policies whose ports match, in order; once per profile and port."""
        key = (direction, profile.index, ctx)
        candidates = self._candidates.get(key)
        if candidates is None:
            port, protocol, names = ctx
            candidates = self._candidates[key] = [
                (policy, rule)
                for policy in profile.policies
                for rule in (policy.ingress if direction == INGRESS else policy.egress) or ()
                if rule.ports is None or any(p.matches(port, protocol, names) for p in rule.ports)
            ]
        return candidates

    # ------------------------------------------------------------ answers

    def _verdict(self, ingress: DirectionVerdict, egress: DirectionVerdict) -> Verdict:
        key = (self._codes[id(ingress)] << 32) | self._codes[id(egress)]
        return self._by_codes.get(key) or self._verdict_of_codes(key)

    def _verdict_of_codes(self, key: int) -> Verdict:
        ingress, egress = self._by_code[key >> 32], self._by_code[key & 0xFFFFFFFF]
        verdict = self._by_codes[key] = Verdict(
            allowed=ingress.allowed and egress.allowed,
            reason=f"{ingress.reason}; {egress.reason}",
            ingress=ingress,
            egress=egress,
        )
        return verdict

    def _ingress(self, profile: _Profile, src: _Endpoint, ctx: PortContext) -> DirectionVerdict:
        if not profile.policies:
            return self._intern(INGRESS, profile.kind)
        key = (profile.index, ctx)
        answers = self._ingress_memo.get(key)
        if answers is None:
            answers = self._ingress_memo[key] = {}
        answer = answers.get(src.index)
        if answer is None:
            answer = answers[src.index] = self._decide(INGRESS, profile, src, ctx)
        return answer

    def _egress(self, profile: _Profile, dst: _Endpoint, ctx: PortContext) -> DirectionVerdict:
        if not profile.policies:
            return self._intern(EGRESS, profile.kind)
        key = (profile.index, dst.index, ctx)
        answer = self._egress_memo.get(key)
        if answer is None:
            answer = self._egress_memo[key] = self._decide(EGRESS, profile, dst, ctx)
        return answer

    def _decide(
        self, direction: str, profile: _Profile, peer: _Endpoint, ctx: PortContext
    ) -> DirectionVerdict:
        """The answer of the isolating policies for a connection with ``peer``: the first rule matching."""
        for policy, rule in self._candidate_rules(direction, profile, ctx):
            if rule.peers is None or any(self._peer_matches(p, policy.namespace, peer) for p in rule.peers):
                return self._intern(direction, "allowed", policy.key, rule.index)
        return self._intern(direction, "blocked", tuple(p.key for p in profile.policies))

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
            reason = f"{direction} blocked: {whose} isolated by {', '.join(detail[0])}; no rule matches"
            dv = DirectionVerdict(False, True, None, None, reason)
        else:
            dv = DirectionVerdict(True, False, None, None, _NOT_ISOLATED[(direction, what)])
        self._interned[key] = dv
        self._codes[id(dv)] = len(self._by_code)
        self._by_code.append(dv)
        return dv

    def _peer_matches(self, peer: CompiledPeer, namespace: str, ep: _Endpoint) -> bool:
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

    # ------------------------------------------------------------ classes of pods and addresses

    def _place(self, who: Pod | str) -> _Place:
        if isinstance(who, str):
            place = self._externals.get(who)
            if place is None:
                peer = self._endpoint(("external", None, (), self._blocks_of(who, who)), who)
                none = self._profile("external", ())
                place = self._externals[who] = _Place(peer, none, none)
            return place
        place = self._places.get(id(who))
        if place is not None:
            return place
        blocks = self._blocks_of(who.ip, who.key) if who.ip else None
        if who.host_network:
            none = self._profile("host", ())
            return _Place(self._endpoint(("host", None, (), blocks), who.key), none, none)
        peer_labels = tuple(sorted((k, v) for k, v in who.labels.items() if k in self._peer_keys))
        peer = self._endpoint(("pod", who.namespace, peer_labels, blocks), who.key)
        target_labels = tuple(sorted((k, v) for k, v in who.labels.items() if k in self._target_keys))
        profiles = self._pod_profiles.get((who.namespace, target_labels))
        if profiles is None:
            labels = dict(target_labels)
            selecting = [p for p in self._by_ns.get(who.namespace, ()) if p.selects(labels)]
            profiles = self._pod_profiles[(who.namespace, target_labels)] = (
                self._profile("pod", tuple(p for p in selecting if p.ingress is not None)),
                self._profile("pod", tuple(p for p in selecting if p.egress is not None)),
            )
        return _Place(peer, *profiles)

    def _endpoint(self, key: tuple, example: str) -> _Endpoint:
        ep = self._endpoints.get(key)
        if ep is None:
            kind, namespace, labels, blocks = key
            ns_labels: Mapping[str, str] = {}
            if kind == "pod":
                ns = self._cluster.namespaces.get(namespace)
                ns_labels = ns.labels if ns is not None else {NAME_LABEL: namespace}
            ep = self._endpoints[key] = _Endpoint(
                len(self._endpoints), kind, namespace, ns_labels, dict(labels), blocks, example
            )
        return ep

    def _profile(self, kind: str, policies: tuple[CompiledPolicy, ...]) -> _Profile:
        key = (kind, *(p.key for p in policies))
        profile = self._profiles.get(key)
        if profile is None:
            profile = self._profiles[key] = _Profile(len(self._profiles), kind, policies)
        return profile

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
                what = f"{protocol} container port" if protocol else "container port"
                raise UserError(f"{where} has no {what} named {port!r}")
            return found.port, found.protocol
        number = int(port)
        if not 1 <= number <= 65535:
            raise UserError(f"port {port!r} must be from 1 to 65535")
        if protocol not in PROTOCOLS:
            raise UserError(f"unknown protocol {protocol!r} (expected {', '.join(PROTOCOLS)})")
        return number, protocol


class _Numbering:
    """Local numbers 0, 1, 2... for classes (anything with an ``index``), in order of appearance."""

    def __init__(self) -> None:
        self.numbers: dict[int, int] = {}
        self.items: list[Any] = []

    def number(self, item: Any) -> int:
        n = self.numbers.get(item.index)
        if n is None:
            n = self.numbers[item.index] = len(self.items)
            self.items.append(item)
        return n


class _Answers:
    """One direction's answers for a list of peer classes, computed a policy peer at a time.

    For a profile and a port, each candidate rule (in order) allows the peer classes its peers match
    and that no earlier rule allowed; the others are blocked. A peer's matches are a bitset over the
    classes, computed once: a namespaceSelector is evaluated once per namespace, a podSelector only on
    the classes of the namespaces it can match.
    """

    def __init__(self, sim: Simulator, direction: str, peers: list[_Endpoint]) -> None:
        self.sim = sim
        self.direction = direction
        self.peers = peers
        self.everyone = (1 << len(peers)) - 1
        self.by_namespace: dict[str, list[int]] = {}
        self.ns_labels: dict[str, Mapping[str, str]] = {}
        for i, ep in enumerate(peers):
            if ep.kind == "pod":
                self.by_namespace.setdefault(ep.namespace, []).append(i)  # type: ignore[arg-type]
                self.ns_labels[ep.namespace] = ep.ns_labels  # type: ignore[index]
        self._matches: dict[int, int] = {}  # id(CompiledPeer) -> bitset of the classes it matches
        self._block_matches: dict[int, tuple[int, int]] = {}  # ipBlock -> (matching, without IP)
        self._answers: dict[tuple, list[int]] = {}

    def codes(self, profile: _Profile, ctx: PortContext) -> list[int]:
        """The code of the answer for each peer class."""
        key = (profile.index, ctx)
        answers = self._answers.get(key)
        if answers is None:
            codes = self.sim._codes
            answers = self._answers[key] = [codes[id(dv)] for dv in self._compute(profile, ctx)]
        return answers

    def _compute(self, profile: _Profile, ctx: PortContext) -> list[DirectionVerdict]:
        sim, direction = self.sim, self.direction
        if not profile.policies:
            return [sim._intern(direction, profile.kind)] * len(self.peers)
        answers = [sim._intern(direction, "blocked", tuple(p.key for p in profile.policies))] * len(
            self.peers
        )
        decided = 0
        for policy, rule in sim._candidate_rules(direction, profile, ctx):
            matched, without_ip = self.everyone, 0
            if rule.peers is not None:
                matched = 0
                for peer in rule.peers:
                    if peer.block is None:
                        matched |= self._selector_matches(peer, policy.namespace)
                    else:
                        hits, unknown = self._block(peer.block)
                        matched |= hits
                        without_ip |= unknown
            missing = without_ip & ~matched & ~decided
            if missing:
                ep = self.peers[_lowest_bit(missing)]
                assert rule.peers is not None
                needing = next(p for p in rule.peers if p.block is not None)
                sim._peer_matches(needing, policy.namespace, ep)  # raises: the class has no IP
            new = matched & ~decided
            if new:
                allowed = sim._intern(direction, "allowed", policy.key, rule.index)
                for i in _bits(new):
                    answers[i] = allowed
                decided |= new
                if decided == self.everyone:
                    break
        return answers

    def _selector_matches(self, peer: CompiledPeer, namespace: str) -> int:
        bits = self._matches.get(id(peer))
        if bits is None:
            if peer.ns_matcher is None:
                namespaces = [namespace]
            else:
                namespaces = [ns for ns, labels in self.ns_labels.items() if peer.ns_matcher(labels)]
            bits = 0
            for ns in namespaces:
                for i in self.by_namespace.get(ns, ()):
                    if peer.pod_matcher is None or peer.pod_matcher(self.peers[i].labels):
                        bits |= 1 << i
            self._matches[id(peer)] = bits
        return bits

    def _block(self, block: int) -> tuple[int, int]:
        found = self._block_matches.get(block)
        if found is None:
            hits = unknown = 0
            for i, ep in enumerate(self.peers):
                if ep.blocks is None:
                    unknown |= 1 << i
                elif block in ep.blocks:
                    hits |= 1 << i
            found = self._block_matches[block] = (hits, unknown)
        return found


def _bits(x: int) -> Iterator[int]:
    """The positions of the set bits of ``x``."""
    while x:
        low = x & -x
        yield low.bit_length() - 1
        x ^= low


def _lowest_bit(x: int) -> int:
    return (x & -x).bit_length() - 1


def _expander(class_of: list[int]) -> Callable[[list[Verdict]], Sequence[Verdict]]:
    """A function from the verdicts of the classes to the verdicts of the sources (a C-level lookup)."""
    if not class_of:
        return lambda verdicts: ()
    if len(class_of) == 1:
        return lambda verdicts: (verdicts[class_of[0]],)
    return itemgetter(*class_of)


def _names_at(dst: Pod | str, place: _Place, port: int, protocol: str) -> tuple[str, ...]:
    """Names of the destination's container ports at this port and protocol (for named-port rules)."""
    if place.peer.kind != "pod" or not isinstance(dst, Pod):
        return ()
    return tuple(p.name for p in dst.ports if p.name and p.port == port and p.protocol == protocol)


def _zip_skipping(
    sources: list[Pod | str], verdicts: list[Verdict], skip: list[int], dst: Pod | str, port: int, proto: str
) -> Iterator[Row]:
    """The rows of one column without the sources at positions ``skip`` (the destination itself)."""
    parts = []
    start = 0
    for i in skip:
        parts.append(zip(sources[start:i], repeat(dst), repeat(port), repeat(proto), verdicts[start:i]))
        start = i + 1
    parts.append(zip(sources[start:], repeat(dst), repeat(port), repeat(proto), verdicts[start:]))
    return chain.from_iterable(parts)
