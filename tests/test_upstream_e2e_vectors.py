"""The upstream Kubernetes NetworkPolicy e2e tests, replayed against the simulator.

Source: kubernetes/kubernetes test/e2e/network/netpol/network_policy.go (commit 008b3652959c), with
the helpers of model.go, reachability.go and policies.go in the same folder. Each function below is
one upstream ``f.It(...)``, named after it: it builds the same pods, creates the same policies and
states the same expected truth tables (ExpectPeer, ExpectAllIngress...) at each ValidateOrFail call.
Namespaces are called x, y, z instead of the generated ``netpol-NNNN-x``: the policies name them
through the same variables, so nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e_model import (
    Check,
    Peer,
    World,
    egress_rules,
    expected_without_loopback,
    expression,
    gen_policy_with_pod_match_label,
    gen_policy_with_pod_selector,
    host_cidr,
    ingress_rules,
    make_large_cidr_for_ip,
    match_labels,
    ns_name_is,
    observe,
    pretty,
)

SOURCE = "kubernetes/kubernetes test/e2e/network/netpol/network_policy.go"
X, Y, Z = "x", "y", "z"
TCP, UDP, SCTP = "TCP", "UDP", "SCTP"

UPSTREAM: list[tuple[str, Callable[[], World]]] = []


def upstream(name: str, context: str = "TCP") -> Callable[[Callable[[], World]], Callable[[], World]]:
    def register(fn: Callable[[], World]) -> Callable[[], World]:
        UPSTREAM.append((f"[{context}] {name}", fn))
        return fn

    return register


# ---------------------------------------------------------------- "NetworkPolicy between server and client"


@upstream("should support a 'default-deny-ingress' policy")
def default_deny_ingress() -> World:
    w = World(["x/a", "x/b", "y/a", "y/b"])
    w.create_policy(gen_policy_with_pod_selector("deny-ingress", {}, ingress_rules()), X)
    r = w.reachability()
    r.expect_peer(Peer(), Peer(X), False)
    w.validate(80, TCP, r)
    return w


@upstream("should support a 'default-deny-all' policy")
def default_deny_all() -> World:
    w = World(["x/a", "x/b", "y/a"])
    w.create_policy(gen_policy_with_pod_selector("deny-all", {}, ingress_rules(), egress_rules()), X)
    r = w.reachability()
    r.expect_peer(Peer(), Peer(X), False)
    r.expect_peer(Peer(X), Peer(), False)
    w.validate(80, TCP, r)
    return w


@upstream("should enforce policy to allow traffic from pods within server namespace based on PodSelector")
def within_namespace_pod_selector() -> World:
    w = World(["x/a", "x/b", "x/c", "y/a"])
    rule = {"from": [{"podSelector": match_labels(pod="b")}]}
    w.create_policy(gen_policy_with_pod_match_label("x-a-allows-x-b", {"pod": "a"}, ingress_rules(rule)), X)
    r = w.reachability()
    r.expect_all_ingress("x/a", False)
    r.expect("x/b", "x/a", True)
    w.validate(80, TCP, r)
    return w


@upstream("should enforce policy to allow ingress traffic for a target")
def ingress_for_a_target() -> World:
    w = World(["x/a", "x/b", "y/a"])
    w.create_policy(gen_policy_with_pod_selector("deny-all", {}, ingress_rules()), X)
    rule = {"from": [{"podSelector": {}, "namespaceSelector": {}}]}
    w.create_policy(gen_policy_with_pod_match_label("allow-all-to-a", {"pod": "a"}, ingress_rules(rule)), X)
    r = w.reachability()
    r.expect_all_ingress("x/a", True)
    r.expect_all_ingress("x/b", False)
    w.validate(80, TCP, r)
    return w


@upstream("should enforce policy to allow ingress traffic from pods in all namespaces")
def ingress_from_all_namespaces() -> World:
    w = World(["x/a", "x/b", "y/a", "z/a"])
    rule = {"from": [{"namespaceSelector": {"matchLabels": {}}}]}
    w.create_policy(
        gen_policy_with_pod_match_label("allow-from-another-ns", {"pod": "a"}, ingress_rules(rule)), X
    )
    w.validate(80, TCP, w.reachability())
    return w


@upstream(
    "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector"
)
def only_from_other_namespace() -> World:
    w = World(["x/a", "x/b", "y/a", "z/a"])
    rule = {"from": [{"namespaceSelector": ns_name_is(Y)}]}
    w.create_policy(
        gen_policy_with_pod_match_label("allow-client-a-via-ns-selector", {"pod": "a"}, ingress_rules(rule)),
        X,
    )
    r = w.reachability()
    r.expect_peer(Peer(X), Peer(X, "a"), False)
    r.expect_peer(Peer(Z), Peer(X, "a"), False)
    w.validate(80, TCP, r)
    return w


@upstream("should enforce policy based on PodSelector with MatchExpressions")
def pod_selector_match_expressions() -> World:
    w = World(["x/a", "x/b", "y/a"])
    rule = {"from": [{"podSelector": expression("pod", "In", "b")}]}
    w.create_policy(gen_policy_with_pod_match_label("x-a-allows-x-b", {"pod": "a"}, ingress_rules(rule)), X)
    r = w.reachability()
    r.expect_all_ingress("x/a", False)
    r.expect("x/b", "x/a", True)
    w.validate(80, TCP, r)
    return w


@upstream("should enforce policy based on NamespaceSelector with MatchExpressions")
def namespace_selector_match_expressions() -> World:
    w = World(["x/a", "x/b", "y/a", "z/a"])
    rule = {"from": [{"namespaceSelector": expression("kubernetes.io/metadata.name", "In", Y)}]}
    w.create_policy(
        gen_policy_with_pod_match_label("allow-ns-y-match-selector", {"pod": "a"}, ingress_rules(rule)), X
    )
    r = w.reachability()
    r.expect_peer(Peer(X), Peer(X, "a"), False)
    r.expect_peer(Peer(Z), Peer(X, "a"), False)
    w.validate(80, TCP, r)
    return w


@upstream("should enforce policy based on PodSelector or NamespaceSelector")
def pod_or_namespace_selector() -> World:
    w = World(["x/a", "x/b", "x/c", "y/a"])
    rule = {
        "from": [
            {"namespaceSelector": expression("kubernetes.io/metadata.name", "NotIn", X)},
            {"podSelector": match_labels(pod="b")},
        ]
    }
    w.create_policy(
        gen_policy_with_pod_match_label("allow-ns-y-match-selector", {"pod": "a"}, ingress_rules(rule)), X
    )
    r = w.reachability()
    r.expect("x/a", "x/a", False)
    r.expect("x/c", "x/a", False)
    w.validate(80, TCP, r)
    return w


@upstream("should enforce policy based on PodSelector and NamespaceSelector")
def pod_and_namespace_selector() -> World:
    w = World(["x/a", "x/b", "y/a", "y/b", "z/b"])
    rule = {
        "from": [
            {
                "namespaceSelector": expression("kubernetes.io/metadata.name", "NotIn", X),
                "podSelector": match_labels(pod="b"),
            }
        ]
    }
    w.create_policy(
        gen_policy_with_pod_match_label(
            "allow-ns-y-podselector-and-nsselector", {"pod": "a"}, ingress_rules(rule)
        ),
        X,
    )
    r = w.reachability()
    r.expect_all_ingress("x/a", False)
    r.expect("y/b", "x/a", True)
    r.expect("z/b", "x/a", True)
    w.validate(80, TCP, r)
    return w


@upstream("should enforce policy based on Multiple PodSelectors and NamespaceSelectors")
def multiple_pod_and_namespace_selectors() -> World:
    w = World(["x/a", "x/b", "y/a", "y/b", "y/c"])
    rule = {
        "from": [
            {
                "namespaceSelector": expression("kubernetes.io/metadata.name", "NotIn", X),
                "podSelector": expression("pod", "In", "b", "c"),
            }
        ]
    }
    w.create_policy(
        gen_policy_with_pod_match_label("allow-ns-y-z-pod-b-c", {"pod": "a"}, ingress_rules(rule)), X
    )
    r = w.reachability()
    r.expect_peer(Peer(X), Peer(X, "a"), False)
    r.expect("y/a", "x/a", False)
    w.validate(80, TCP, r)
    return w


@upstream("should enforce policy based on any PodSelectors")
def any_pod_selectors() -> World:
    w = World(["x/a", "x/b", "x/c"])
    rule = {"from": [{"podSelector": match_labels(pod="b")}, {"podSelector": match_labels(pod="c")}]}
    w.create_policy(
        gen_policy_with_pod_match_label("allow-ns-x-pod-b-c", {"pod": "a"}, ingress_rules(rule)), X
    )
    r = w.reachability()
    r.expect_all_ingress("x/a", False)
    r.expect("x/b", "x/a", True)
    r.expect("x/c", "x/a", True)
    w.validate(80, TCP, r)
    return w


def _pod_in_other_namespace(protocol: str) -> World:
    pods = ["x/a", "x/b", "y/a", "y/b", "z/a"] if protocol == TCP else ["x/a", "x/b", "y/a"]
    w = World(pods, protocols=(protocol,))
    rule = {"from": [{"namespaceSelector": ns_name_is(Y), "podSelector": match_labels(pod="a")}]}
    w.create_policy(
        gen_policy_with_pod_match_label(
            "allow-ns-y-pod-a-via-namespace-pod-selector", {"pod": "a"}, ingress_rules(rule)
        ),
        X,
    )
    r = w.reachability()
    r.expect_all_ingress("x/a", False)
    r.expect("y/a", "x/a", True)
    w.validate(80, protocol, r)
    return w


@upstream(
    "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector "
    "and NamespaceSelector"
)
def pod_in_other_namespace_tcp() -> World:
    return _pod_in_other_namespace(TCP)


def _ports(protocol: str) -> World:
    pods = ["x/a", "x/b", "y/a", "y/b", "z/a"] if protocol == TCP else ["x/a", "x/b", "y/a", "z/a"]
    w = World(pods, ports=(81,), protocols=(protocol,))
    rule = {"from": [{"namespaceSelector": ns_name_is(Y)}], "ports": [{"port": 81, "protocol": protocol}]}
    name = "allow-client-a-via-ns-selector" if protocol == TCP else "allow-ingress-on-port-81-ns-x"
    w.create_policy(gen_policy_with_pod_match_label(name, {"pod": "a"}, ingress_rules(rule)), X)
    r = w.reachability()
    r.expect_peer(Peer(X), Peer(X, "a"), False)
    if protocol == TCP:
        r.expect_peer(Peer(Y), Peer(X, "a"), True)
    r.expect_peer(Peer(Z), Peer(X, "a"), False)
    w.validate(81, protocol, r)
    return w


@upstream("should enforce policy based on Ports")
def ports_tcp() -> World:
    return _ports(TCP)


@upstream("should enforce multiple, stacked policies with overlapping podSelectors")
def stacked_policies() -> World:
    w = World(["x/a", "x/b", "y/a", "y/b", "z/a"], ports=(80, 81))
    rule81 = {"from": [{"namespaceSelector": ns_name_is(Y)}], "ports": [{"port": 81, "protocol": TCP}]}
    w.create_policy(
        gen_policy_with_pod_match_label(
            "allow-client-a-via-ns-selector", {"pod": "a"}, ingress_rules(rule81)
        ),
        X,
    )
    allow = w.reachability()
    allow.expect_peer(Peer(X), Peer(X, "a"), False)
    allow.expect_peer(Peer(Y), Peer(X, "a"), True)
    allow.expect_peer(Peer(Z), Peer(X, "a"), False)
    w.validate(81, TCP, allow, "port 81")
    deny = w.reachability()
    deny.expect_all_ingress("x/a", False)
    w.validate(80, TCP, deny, "port 80")
    rule80 = {"from": [{"namespaceSelector": ns_name_is(Y)}], "ports": [{"port": 80, "protocol": TCP}]}
    w.create_policy(
        gen_policy_with_pod_match_label(
            "allow-client-a-via-ns-selector-80", {"pod": "a"}, ingress_rules(rule80)
        ),
        X,
    )
    w.validate(80, TCP, allow, "port 80 unblocked")
    return w


@upstream("should support allow-all policy")
def allow_all() -> World:
    w = World(["x/a", "x/b", "y/a"], ports=(80, 81))
    w.create_policy(gen_policy_with_pod_match_label("allow-all", {}, ingress_rules({})), X)
    w.validate(80, TCP, w.reachability(), "port 80")
    w.validate(81, TCP, w.reachability(), "port 81")
    return w


@upstream("should allow ingress access on one named port")
def ingress_named_port() -> World:
    w = World(["x/a", "x/b", "y/a"], ports=(80, 81))
    rule = {"ports": [{"port": "serve-81-tcp"}]}
    w.create_policy(gen_policy_with_pod_match_label("allow-all", {}, ingress_rules(rule)), X)
    w.validate(81, TCP, w.reachability(), "port 81")
    r80 = w.reachability()
    r80.expect_peer(Peer(), Peer(X), False)
    w.validate(80, TCP, r80, "port 80")
    return w


@upstream("should allow ingress access from namespace on one named port")
def ingress_from_namespace_named_port() -> World:
    w = World(["x/a", "x/b", "y/a", "z/a"], ports=(80, 81))
    rule = {
        "from": [{"namespaceSelector": ns_name_is(Y)}],
        "ports": [{"port": "serve-80-tcp", "protocol": TCP}],
    }
    w.create_policy(
        gen_policy_with_pod_match_label(
            "allow-client-a-via-ns-selector-80", {"pod": "a"}, ingress_rules(rule)
        ),
        X,
    )
    r = w.reachability()
    r.expect_peer(Peer(X), Peer(X, "a"), False)
    r.expect_peer(Peer(Z), Peer(X, "a"), False)
    w.validate(80, TCP, r, "port 80")
    fail = w.reachability()
    fail.expect_all_ingress("x/a", False)
    w.validate(81, TCP, fail, "port 81")
    return w


@upstream("should allow egress access on one named port")
def egress_named_port() -> World:
    w = World(["x/a", "y/a"], ports=(80, 81))
    rule = {"ports": [{"port": "serve-80-tcp"}]}
    w.create_policy(gen_policy_with_pod_match_label("allow-egress", {}, egress_rules(rule)), X)
    w.validate(80, TCP, w.reachability(), "port 80")
    r81 = w.reachability()
    r81.expect_peer(Peer(X), Peer(), False)
    w.validate(81, TCP, r81, "port 81")
    return w


@upstream("should enforce updated policy")
def updated_policy() -> World:
    w = World(["x/a", "y/a"], ports=(81,))
    policy = gen_policy_with_pod_match_label("allow-all-mutate-to-deny-all", {}, ingress_rules({}))
    w.create_policy(policy, X)
    w.validate(81, TCP, w.reachability(), "allow all")
    policy["spec"]["ingress"] = []
    w.update_policy(policy, X)
    deny = w.reachability()
    deny.expect_peer(Peer(), Peer(X), False)
    w.validate(81, TCP, deny, "updated to deny all")
    return w


@upstream("should allow ingress access from updated namespace")
def updated_namespace() -> World:
    w = World(["x/a", "y/a"])
    rule = {"from": [{"namespaceSelector": match_labels(ns2="updated")}]}
    w.create_policy(
        gen_policy_with_pod_match_label("allow-client-a-via-ns-selector", {"pod": "a"}, ingress_rules(rule)),
        X,
    )
    r = w.reachability()
    r.expect_all_ingress("x/a", False)
    w.validate(80, TCP, r, "before the label")
    w.add_namespace_label(Y, "ns2", "updated")
    with_label = w.reachability()
    with_label.expect_all_ingress("x/a", False)
    with_label.expect_peer(Peer(Y), Peer(), True)
    w.validate(80, TCP, with_label, "after the label")
    return w


@upstream("should allow ingress access from updated pod")
def updated_pod() -> World:
    w = World(["x/a", "x/b"])
    labels = {"pod": "b", "pod2": "updated"}
    rule = {"from": [{"podSelector": {"matchLabels": labels}}]}
    w.create_policy(
        gen_policy_with_pod_match_label("allow-client-a-via-pod-selector", {"pod": "a"}, ingress_rules(rule)),
        X,
    )
    r = w.reachability()
    r.expect_all_ingress("x/a", False)
    w.validate(80, TCP, r, "before the label")
    w.add_pod_labels("x/b", labels)
    with_label = w.reachability()
    with_label.expect_all_ingress("x/a", False)
    with_label.expect("x/b", "x/a", True)
    w.validate(80, TCP, with_label, "after the label")
    return w


@upstream("should deny ingress from pods on other namespaces")
def deny_other_namespaces() -> World:
    w = World(["x/a", "x/b", "y/a", "z/a"])
    rule = {"from": [{"podSelector": {"matchLabels": {}}}]}
    w.create_policy(gen_policy_with_pod_selector("deny-empty-policy", {}, ingress_rules(rule)), X)
    r = w.reachability()
    r.expect_peer(Peer(Y), Peer(X), False)
    r.expect_peer(Peer(Z), Peer(X), False)
    w.validate(80, TCP, r)
    return w


@upstream("should deny ingress access to updated pod")
def deny_updated_pod() -> World:
    w = World(["x/a", "y/a"])
    w.create_policy(
        gen_policy_with_pod_selector(
            "deny-ingress-via-label-selector", match_labels(target="isolated"), ingress_rules()
        ),
        X,
    )
    w.validate(80, TCP, w.reachability(), "before the label")
    w.add_pod_labels("x/a", {"target": "isolated"})
    isolated = w.reachability()
    isolated.expect_all_ingress("x/a", False)
    w.validate(80, TCP, isolated, "after the label")
    return w


@upstream("should deny egress from pods based on PodSelector")
def deny_egress_pod_selector() -> World:
    w = World(["x/a", "x/b", "y/a"])
    w.create_policy(
        gen_policy_with_pod_selector("deny-egress-pod-a", match_labels(pod="a"), egress_rules()), X
    )
    r = w.reachability()
    r.expect_all_egress("x/a", False)
    w.validate(80, TCP, r)
    return w


@upstream("should deny egress from all pods in a namespace")
def deny_egress_namespace() -> World:
    w = World(["x/a", "x/b", "y/a"])
    w.create_policy(gen_policy_with_pod_selector("deny-egress-ns-x", {}, egress_rules()), X)
    r = w.reachability()
    r.expect_peer(Peer(X), Peer(), False)
    w.validate(80, TCP, r)
    return w


@upstream("should work with Ingress, Egress specified together")
def ingress_and_egress_together() -> World:
    w = World(["x/a", "x/b", "x/c", "y/a"], ports=(80, 81))
    rule = {"from": [{"podSelector": match_labels(pod="b")}]}
    policy = gen_policy_with_pod_match_label(
        "allow-client-a-via-pod-selector", {"pod": "a"}, ingress_rules(rule)
    )
    policy["spec"]["egress"] = [{"ports": [{"port": 80}]}]
    policy["spec"]["policyTypes"] = ["Egress", "Ingress"]
    w.create_policy(policy, X)
    r80 = w.reachability()
    r80.expect_all_ingress("x/a", False)
    r80.expect("x/b", "x/a", True)
    w.validate(80, TCP, r80, "port 80")
    r81 = w.reachability()
    r81.expect_all_ingress("x/a", False)
    r81.expect_all_egress("x/a", False)
    r81.expect("x/b", "x/a", True)
    w.validate(81, TCP, r81, "port 81")
    return w


@upstream(
    "should support denying of egress traffic on the client side "
    "(even if the server explicitly allows this traffic)"
)
def deny_egress_client_side() -> World:
    w = World(["x/a", "y/a", "y/b"])
    egress = {"to": [{"namespaceSelector": ns_name_is(Y), "podSelector": match_labels(pod="a")}]}
    w.create_policy(
        gen_policy_with_pod_match_label("allow-to-ns-y-pod-a", {"pod": "a"}, egress_rules(egress)), X
    )
    ingress = {"from": [{"namespaceSelector": ns_name_is(X), "podSelector": match_labels(pod="a")}]}
    w.create_policy(
        gen_policy_with_pod_match_label(
            "allow-from-xa-on-ya-match-selector", {"pod": "a"}, ingress_rules(ingress)
        ),
        Y,
    )
    w.create_policy(
        gen_policy_with_pod_match_label(
            "allow-from-xa-on-yb-match-selector", {"pod": "b"}, ingress_rules(ingress)
        ),
        Y,
    )
    r = w.reachability()
    r.expect_peer(Peer(X, "a"), Peer(), False)
    r.expect_peer(Peer(), Peer(Y, "a"), False)
    r.expect_peer(Peer(X, "a"), Peer(Y, "a"), True)
    r.expect_peer(Peer(), Peer(Y, "b"), False)
    w.validate(80, TCP, r)
    return w


@upstream(
    "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector "
    "and NamespaceSelector"
)
def egress_to_other_namespace() -> World:
    w = World(["x/a", "y/a", "y/b"])
    egress = {"to": [{"namespaceSelector": ns_name_is(Y), "podSelector": match_labels(pod="a")}]}
    w.create_policy(
        gen_policy_with_pod_match_label("allow-to-ns-y-pod-a", {"pod": "a"}, egress_rules(egress)), X
    )
    r = w.reachability()
    r.expect_all_egress("x/a", False)
    r.expect("x/a", "y/a", True)
    w.validate(80, TCP, r)
    return w


@upstream("should enforce ingress policy allowing any port traffic to a server on a specific protocol")
def any_port_one_protocol() -> World:
    w = World(["x/a", "y/a"], protocols=(TCP, UDP))
    rule = {"ports": [{"protocol": TCP}]}
    w.create_policy(
        gen_policy_with_pod_match_label("allow-ingress-by-proto", {"pod": "a"}, ingress_rules(rule)), X
    )
    w.validate(80, TCP, w.reachability(), "TCP")
    r_udp = w.reachability()
    r_udp.expect_peer(Peer(), Peer(X, "a"), False)
    w.validate(80, UDP, r_udp, "UDP")
    return w


@upstream("should enforce multiple ingress policies with ingress allow-all policy taking precedence")
def ingress_allow_all_precedence() -> World:
    w = World(["x/a", "y/a"], ports=(81,))
    rule = {"ports": [{"port": 80}]}
    w.create_policy(gen_policy_with_pod_match_label("allow-ingress-port-80", {}, ingress_rules(rule)), X)
    r = w.reachability()
    r.expect_peer(Peer(), Peer(X), False)
    w.validate(81, TCP, r, "port 80 only")
    w.create_policy(gen_policy_with_pod_match_label("allow-ingress", {}, ingress_rules({})), X)
    w.validate(81, TCP, w.reachability(), "allow all added")
    return w


@upstream("should enforce multiple egress policies with egress allow-all policy taking precedence")
def egress_allow_all_precedence() -> World:
    w = World(["x/a", "y/a"], ports=(81,))
    rule = {"ports": [{"port": 80}]}
    w.create_policy(gen_policy_with_pod_match_label("allow-egress-port-80", {}, egress_rules(rule)), X)
    r = w.reachability()
    r.expect_peer(Peer(X), Peer(), False)
    w.validate(81, TCP, r, "port 80 only")
    w.create_policy(gen_policy_with_pod_match_label("allow-egress", {}, egress_rules({})), X)
    w.validate(81, TCP, w.reachability(), "allow all added")
    return w


@upstream("should stop enforcing policies after they are deleted")
def deleted_policies() -> World:
    w = World(["x/a", "y/a"])
    w.create_policy(gen_policy_with_pod_selector("deny-all", {}, ingress_rules(), egress_rules()), X)
    r = w.reachability()
    r.expect_peer(Peer(X), Peer(), False)
    r.expect_peer(Peer(), Peer(X), False)
    w.validate(80, TCP, r, "deny all")
    w.clean_policies()
    w.validate(80, TCP, w.reachability(), "deleted")
    return w


@upstream("should allow egress access to server in CIDR block")
def egress_cidr() -> World:
    w = World(["x/a", "y/a", "y/b"])
    rule = {"to": [{"ipBlock": {"cidr": host_cidr(w.pod_ip("y/b"))}}]}
    w.create_policy(
        gen_policy_with_pod_match_label(
            "allow-client-a-via-cidr-egress-rule", {"pod": "a"}, egress_rules(rule)
        ),
        X,
    )
    r = w.reachability()
    r.expect_all_egress("x/a", False)
    r.expect("x/a", "y/b", True)
    w.validate(80, TCP, r)
    return w


def _cidr_except_policy(w: World) -> dict:
    ip = w.pod_ip("x/b")
    rule = {"to": [{"ipBlock": {"cidr": make_large_cidr_for_ip(ip), "except": [host_cidr(ip)]}}]}
    return gen_policy_with_pod_match_label(
        "allow-client-a-via-cidr-egress-rule", {"pod": "a"}, egress_rules(rule)
    )


@upstream("should enforce except clause while egress access to server in CIDR block")
def egress_cidr_except() -> World:
    w = World(["x/a", "x/b", "x/c"])
    w.create_policy(_cidr_except_policy(w), X)
    r = w.reachability()
    r.expect("x/a", "x/b", False)
    w.validate(80, TCP, r)
    return w


@upstream("should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed")
def cidr_and_except_overlap() -> World:
    w = World(["x/a", "x/b", "x/c"])
    w.create_policy(_cidr_except_policy(w), X)
    r = w.reachability()
    r.expect("x/a", "x/b", False)
    w.validate(80, TCP, r, "except")
    rule = {"to": [{"ipBlock": {"cidr": host_cidr(w.pod_ip("x/b"))}}]}
    w.update_policy(
        gen_policy_with_pod_match_label(
            "allow-client-a-via-cidr-egress-rule", {"pod": "a"}, egress_rules(rule)
        ),
        X,
    )
    allow = w.reachability()
    allow.expect_all_egress("x/a", False)
    allow.expect("x/a", "x/b", True)
    w.validate(80, TCP, allow, "updated to the pod's IP")
    return w


@upstream(
    "should enforce policies to check ingress and egress policies can be controlled independently "
    "based on PodSelector"
)
def ingress_egress_independent() -> World:
    w = World(["x/a", "x/b", "y/a"])
    target = match_labels(pod="a")
    w.create_policy(gen_policy_with_pod_selector("allow-egress-for-target", target, egress_rules({})), X)
    w.validate(80, TCP, w.reachability(), "egress allowed")
    w.create_policy(
        gen_policy_with_pod_selector("deny-ingress-via-label-selector", target, ingress_rules()), X
    )
    r = w.reachability()
    r.expect_all_ingress("x/a", False)
    w.validate(80, TCP, r, "ingress denied")
    return w


@upstream(
    "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP"
)
def sctp_is_not_tcp() -> World:
    w = World(["x/a", "y/a"], ports=(81,))
    w.create_policy(gen_policy_with_pod_selector("deny-ingress", {}, ingress_rules()), X)
    rule = {"ports": [{"port": 81, "protocol": SCTP}]}
    w.create_policy(
        gen_policy_with_pod_match_label(
            "allow-only-sctp-ingress-on-port-81", {"pod": "a"}, ingress_rules(rule)
        ),
        X,
    )
    r = w.reachability()
    r.expect_peer(Peer(), Peer(X), False)
    w.validate(81, TCP, r)
    return w


@upstream(
    "should properly isolate pods that are selected by a policy allowing SCTP, "
    "even if the plugin doesn't support SCTP"
)
def sctp_policy_isolates() -> World:
    w = World(["x/a", "y/a"], ports=(81,))
    rule = {"ports": [{"port": 80, "protocol": SCTP}]}
    w.create_policy(
        gen_policy_with_pod_match_label(
            "allow-only-sctp-ingress-on-port-80", {"pod": "a"}, ingress_rules(rule)
        ),
        X,
    )
    r = w.reachability()
    r.expect_all_ingress("x/a", False)
    w.validate(81, TCP, r)
    return w


@upstream("should not allow access by TCP when a policy specifies only UDP")
def udp_only_policy() -> World:
    w = World(["x/a", "y/a"], ports=(81,))
    rule = {"ports": [{"port": 81, "protocol": UDP}]}
    w.create_policy(
        gen_policy_with_pod_match_label(
            "allow-only-udp-ingress-on-port-81", {"pod": "a"}, ingress_rules(rule)
        ),
        X,
    )
    r = w.reachability()
    r.expect_all_ingress("x/a", False)
    w.validate(81, TCP, r)
    return w


@upstream(
    "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels "
    "using default ns label"
)
def default_ns_label_match_labels() -> World:
    w = World(["x/a", "x/b", "y/a", "z/a"])
    rule = {"from": [{"namespaceSelector": ns_name_is(Y)}]}
    w.create_policy(
        gen_policy_with_pod_match_label(
            "allow-client-a-via-ns-selector-for-immutable-ns-label", {"pod": "a"}, ingress_rules(rule)
        ),
        X,
    )
    r = w.reachability()
    r.expect_peer(Peer(X), Peer(X, "a"), False)
    r.expect_peer(Peer(Z), Peer(X, "a"), False)
    w.validate(80, TCP, r)
    return w


@upstream("should enforce policy based on NamespaceSelector with MatchExpressions using default ns label")
def default_ns_label_match_expressions() -> World:
    w = World(["x/a", "x/b", "y/a", "z/a"])
    rule = {"to": [{"namespaceSelector": expression("kubernetes.io/metadata.name", "NotIn", Y)}]}
    w.create_policy(
        gen_policy_with_pod_match_label(
            "allow-ns-y-match-selector-for-immutable-ns-label", {"pod": "a"}, egress_rules(rule)
        ),
        X,
    )
    r = w.reachability()
    r.expect_peer(Peer(X, "a"), Peer(Y), False)
    w.validate(80, TCP, r)
    return w


# ---------------------------------------------------------------- UDP and SCTP contexts


def _default_deny(protocol: str) -> World:
    w = World(["x/a", "x/b", "y/a", "y/b"], protocols=(protocol,))
    w.create_policy(gen_policy_with_pod_selector("deny-all", {}, ingress_rules()), X)
    r = w.reachability()
    r.expect_peer(Peer(), Peer(X), False)
    w.validate(80, protocol, r)
    return w


for _proto in (UDP, SCTP):
    upstream("should support a 'default-deny-ingress' policy", _proto)(lambda p=_proto: _default_deny(p))
    upstream("should enforce policy based on Ports", _proto)(lambda p=_proto: _ports(p))
    upstream(
        "should enforce policy to allow traffic only from a pod in a different namespace "
        "based on PodSelector and NamespaceSelector",
        _proto,
    )(lambda p=_proto: _pod_in_other_namespace(p))


# ---------------------------------------------------------------- the test


def _checks() -> list[tuple[str, Check]]:
    cases = []
    for name, build in UPSTREAM:
        world = build()
        for i, check in enumerate(world.checks):
            step = f" / step {i + 1}: {check.step}" if len(world.checks) > 1 else ""
            cases.append((f"{name}{step} ({check.port}/{check.protocol})", check))
    return cases


CHECKS = _checks()


def test_at_least_30_upstream_cases_are_encoded() -> None:
    assert len(UPSTREAM) >= 30
    assert len({name for name, _ in UPSTREAM}) == len(UPSTREAM)


@pytest.mark.parametrize("check", [c for _, c in CHECKS], ids=[n for n, _ in CHECKS])
def test_simulator_matches_upstream_truth_table(check: Check) -> None:
    expected = expected_without_loopback(check)
    observed = observe(check)
    if observed != expected:
        pods = check.reachability.pods
        wrong = sorted(k for k in expected if observed.get(k) != expected[k])
        pytest.fail(
            f"{SOURCE}: {len(wrong)} cell(s) differ: {wrong}\n"
            f"expected:\n{pretty(pods, expected)}\nobserved:\n{pretty(pods, observed)}"
        )
