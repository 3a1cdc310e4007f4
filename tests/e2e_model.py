"""The model of the upstream Kubernetes NetworkPolicy e2e tests, in Python.

Mirrors kubernetes/kubernetes test/e2e/network/netpol (network_policy.go, model.go, reachability.go,
truthtable.go, policies.go): namespaces x, y, z labelled ``ns=<name>`` (plus the name label the API
server adds), pods named after their ``pod=<name>`` label, one container port per port and protocol
named ``serve-<port>-<protocol>``. A test creates policies, then checks a truth table of every ordered
pair of pods ("ValidateOrFail"), built like upstream: start from all-allowed, then Expect* calls.
Loopback (a pod to itself) is ignored, as upstream does (ignoreLoopback = true).
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance.netpol.model import Cluster, ContainerPort, Namespace, Pod
from conformance.netpol.simulator import Simulator

NAMESPACES = ("x", "y", "z")
NAMESPACE_LABEL_KEY = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Peer:
    """Matches pods by namespace and/or name; empty fields match everything (upstream Peer)."""

    namespace: str = ""
    pod: str = ""

    def matches(self, pod: str) -> bool:
        ns, name = pod.split("/")
        return self.namespace in ("", ns) and self.pod in ("", name)


class Reachability:
    """The expected truth table: (from, to) -> connected."""

    def __init__(self, pods: list[str], default: bool) -> None:
        self.pods = pods
        self.expected = {(f, t): default for f in pods for t in pods}

    def expect(self, frm: str, to: str, connected: bool) -> None:
        self.expected[(frm, to)] = connected

    def expect_all_ingress(self, pod: str, connected: bool) -> None:
        for frm in self.pods:
            self.expected[(frm, pod)] = connected

    def expect_all_egress(self, pod: str, connected: bool) -> None:
        for to in self.pods:
            self.expected[(pod, to)] = connected

    def expect_peer(self, frm: Peer, to: Peer, connected: bool) -> None:
        for f in self.pods:
            if frm.matches(f):
                for t in self.pods:
                    if to.matches(t):
                        self.expected[(f, t)] = connected


@dataclass
class Check:
    """One ValidateOrFail call: the cluster as it was then, a port, a protocol and the expected table."""

    step: str
    cluster: Cluster
    port: int
    protocol: str
    reachability: Reachability


@dataclass
class World:
    """The cluster of one upstream test, with the calls the test makes on it."""

    pods: list[str]
    ports: tuple[int, ...] = (80,)
    protocols: tuple[str, ...] = ("TCP",)
    cluster: Cluster = field(init=False)
    checks: list[Check] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cluster = Cluster()
        for ns in NAMESPACES:
            self.cluster.add_namespace(Namespace(ns, {"ns": ns}))
        for pod in self.pods:
            ns, name = pod.split("/")
            containers = tuple(
                ContainerPort(port, proto, f"serve-{port}-{proto.lower()}")
                for port in self.ports
                for proto in self.protocols
            )
            ip = f"10.0.{NAMESPACES.index(ns) + 1}.{ord(name) - ord('a') + 10}"
            self.cluster.pods.append(Pod(ns, name, {"pod": name}, ip=ip, ports=containers))

    def reachability(self, default: bool = True) -> Reachability:
        return Reachability(list(self.pods), default)

    def create_policy(self, policy: dict[str, Any], namespace: str) -> None:
        policy = copy.deepcopy(policy)
        policy["metadata"]["namespace"] = namespace
        self.cluster.policies.append(policy)

    def update_policy(self, policy: dict[str, Any], namespace: str) -> None:
        name = policy["metadata"]["name"]
        self.cluster.policies = [
            p
            for p in self.cluster.policies
            if (p["metadata"]["namespace"], p["metadata"]["name"]) != (namespace, name)
        ]
        self.create_policy(policy, namespace)

    def clean_policies(self) -> None:
        self.cluster.policies = []

    def add_namespace_label(self, namespace: str, key: str, value: str) -> None:
        self.cluster.namespaces[namespace].labels[key] = value

    def add_pod_labels(self, pod: str, labels: dict[str, str]) -> None:
        self.cluster.pod(pod).labels.update(labels)

    def pod_ip(self, pod: str) -> str:
        ip = self.cluster.pod(pod).ip
        assert ip is not None
        return ip

    def validate(self, port: int, protocol: str, reachability: Reachability, step: str = "") -> None:
        self.checks.append(Check(step, copy.deepcopy(self.cluster), port, protocol, reachability))


# ------------------------------------------------------------------ policies.go equivalents

PolicySetter = Callable[[dict[str, Any]], None]


def gen_policy_with_pod_selector(
    name: str, selector: dict[str, Any], *setters: PolicySetter
) -> dict[str, Any]:
    """GenNetworkPolicyWithNameAndPodSelector."""
    policy: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": selector},
    }
    for setter in setters:
        setter(policy)
    return policy


def gen_policy_with_pod_match_label(
    name: str, labels: dict[str, str], *setters: PolicySetter
) -> dict[str, Any]:
    """GenNetworkPolicyWithNameAndPodMatchLabel."""
    return gen_policy_with_pod_selector(name, {"matchLabels": labels}, *setters)


def ingress_rules(*rules: dict[str, Any]) -> PolicySetter:
    """SetSpecIngressRules: adds the rules and, the first time, the Ingress policy type."""

    def setter(policy: dict[str, Any]) -> None:
        spec = policy["spec"]
        if "ingress" not in spec:
            spec["ingress"] = []
            spec.setdefault("policyTypes", []).append("Ingress")
        spec["ingress"].extend(copy.deepcopy(list(rules)))

    return setter


def egress_rules(*rules: dict[str, Any]) -> PolicySetter:
    """SetSpecEgressRules."""

    def setter(policy: dict[str, Any]) -> None:
        spec = policy["spec"]
        if "egress" not in spec:
            spec["egress"] = []
            spec.setdefault("policyTypes", []).append("Egress")
        spec["egress"].extend(copy.deepcopy(list(rules)))

    return setter


def match_labels(**labels: str) -> dict[str, Any]:
    return {"matchLabels": labels}


def ns_name_is(namespace: str) -> dict[str, Any]:
    return {"matchLabels": {NAMESPACE_LABEL_KEY: namespace}}


def expression(key: str, operator: str, *values: str) -> dict[str, Any]:
    expr: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        expr["values"] = list(values)
    return {"matchExpressions": [expr]}


def make_large_cidr_for_ip(ip: str) -> str:
    """makeLargeCIDRForIP: the /4 containing ``ip``."""
    return str(ipaddress.ip_network(f"{ip}/4", strict=False))


def host_cidr(ip: str) -> str:
    return f"{ip}/{32 if ipaddress.ip_address(ip).version == 4 else 128}"


# ------------------------------------------------------------------ observing and printing


def observe(check: Check) -> dict[tuple[str, str], bool]:
    """The simulator's truth table for a check (loopback left out)."""
    pods = check.cluster.pods
    sim = Simulator(check.cluster)
    return {
        (src.key, dst.key): verdict.allowed  # type: ignore[union-attr]
        for src, dst, _, _, verdict in sim.matrix(pods, pods, [(check.port, check.protocol)])
    }


def expected_without_loopback(check: Check) -> dict[tuple[str, str], bool]:
    return {k: v for k, v in check.reachability.expected.items() if k[0] != k[1]}


def pretty(pods: list[str], table: dict[tuple[str, str], bool]) -> str:
    """A truth table like upstream's: rows are sources, columns destinations, '.' connected, 'X' not."""
    width = max(len(p) for p in pods)
    lines = [" " * width + " " + " ".join(p.ljust(width) for p in pods)]
    for frm in pods:
        cells = []
        for to in pods:
            value = table.get((frm, to))
            cells.append(("-" if value is None else "." if value else "X").ljust(width))
        lines.append(frm.ljust(width) + " " + " ".join(cells))
    return "\n".join(lines)
