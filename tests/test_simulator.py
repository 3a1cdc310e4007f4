"""The simulator's answers on small clusters, one NetworkPolicy rule of the API reference at a time."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.errors import UserError
from conformance.netpol.model import Cluster, ContainerPort, Namespace, Pod
from conformance.netpol.simulator import Simulator

OUTSIDE = "203.0.113.7"
HTTP = ContainerPort(8080, "TCP", "http")
DNS = ContainerPort(53, "UDP", "dns")


def cluster(*policies: dict[str, Any], pods: list[Pod] | None = None) -> Cluster:
    """Namespaces gim (team=gim) and ingress-nginx (team=edge), and monitoring which is not in the state."""
    c = Cluster()
    c.add_namespace(Namespace("gim", {"team": "gim"}))
    c.add_namespace(Namespace("ingress-nginx", {"team": "edge"}))
    c.pods = (
        pods
        if pods is not None
        else [
            Pod("gim", "api", {"app": "api"}, ip="10.0.0.10", ports=(HTTP, DNS)),
            Pod("gim", "web", {"app": "web"}, ip="10.0.0.11", ports=(ContainerPort(9000, "TCP", "http"),)),
            Pod("ingress-nginx", "ctrl", {"app": "nginx"}, ip="10.0.1.10", ports=(HTTP,)),
            Pod("monitoring", "prom", {"app": "prom"}, ip="10.0.2.10"),
        ]
    )
    c.policies = list(policies)
    return c


def policy(name: str, spec: dict[str, Any], namespace: str = "gim") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def allowed(c: Cluster, src: str, dst: str, port: int | str = 8080, protocol: str = "TCP") -> bool:
    sim = Simulator(c)
    s = src if "/" not in src else c.pod(src)
    d = dst if "/" not in dst else c.pod(dst)
    return sim.verdict(s, d, port, protocol).allowed


DENY_INGRESS = policy("deny", {"podSelector": {}})
DENY_EGRESS = policy("deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})


# ---------------------------------------------------------------- isolation and policyTypes


def test_without_policies_everything_is_allowed() -> None:
    c = cluster()
    assert allowed(c, "gim/api", "gim/web")
    assert allowed(c, OUTSIDE, "gim/api")
    assert allowed(c, "gim/api", OUTSIDE)


def test_a_policy_isolates_only_the_pods_it_selects_and_only_in_its_namespace() -> None:
    c = cluster(policy("deny-api", {"podSelector": {"matchLabels": {"app": "api"}}}))
    assert not allowed(c, "gim/web", "gim/api")
    assert allowed(c, "gim/api", "gim/web")
    c = cluster(policy("deny-all-edge", {"podSelector": {}}, namespace="ingress-nginx"))
    assert allowed(c, "gim/web", "gim/api")
    assert not allowed(c, "gim/web", "ingress-nginx/ctrl")


def test_policy_types_default_to_ingress_plus_egress_when_there_are_egress_rules() -> None:
    egress_only_rules = policy(
        "e", {"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}
    )
    c = cluster(egress_only_rules)
    sim = Simulator(c)
    api = c.pod("gim/api")
    # Ingress is always a default type: the pod is isolated for ingress with no ingress rule.
    assert sim.isolating(api, "ingress") == ["gim/e"]
    assert sim.isolating(api, "egress") == ["gim/e"]
    assert not allowed(c, "ingress-nginx/ctrl", "gim/api")
    assert not allowed(c, "gim/api", "ingress-nginx/ctrl")
    dns = sim.verdict(api, c.pod("gim/web"), 53, "UDP")
    assert (
        dns.egress.allowed and not dns.ingress.allowed
    )  # the egress rule matches; web's ingress is isolated
    # an empty egress list is no egress rule: the policy isolates ingress only
    c = cluster(policy("e", {"podSelector": {}, "egress": []}))
    assert Simulator(c).isolating(c.pod("gim/api"), "egress") == []


def test_explicit_policy_types_win() -> None:
    c = cluster(policy("e", {"podSelector": {}, "policyTypes": ["Egress"], "ingress": []}))
    assert allowed(c, "ingress-nginx/ctrl", "gim/api")  # ingress rules are ignored: not isolated
    assert not allowed(c, "gim/api", "ingress-nginx/ctrl")


def test_connection_needs_egress_at_source_and_ingress_at_destination() -> None:
    c = cluster(DENY_EGRESS)
    v = Simulator(c).verdict(c.pod("gim/api"), c.pod("ingress-nginx/ctrl"), 8080)
    assert not v.allowed
    assert v.ingress.allowed and not v.ingress.isolated
    assert not v.egress.allowed and v.egress.isolated
    assert allowed(c, "ingress-nginx/ctrl", "gim/api")


# ---------------------------------------------------------------- peers


def test_pod_selector_alone_means_the_policy_namespace() -> None:
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}))
    assert allowed(c, "gim/web", "gim/api")
    assert not allowed(c, "ingress-nginx/ctrl", "gim/api")


def test_namespace_selector_alone_means_every_pod_of_matching_namespaces() -> None:
    c = cluster(
        policy(
            "p",
            {
                "podSelector": {},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "edge"}}}]}],
            },
        )
    )
    assert allowed(c, "ingress-nginx/ctrl", "gim/api")
    assert not allowed(c, "gim/web", "gim/api")


def test_namespace_and_pod_selectors_in_one_peer_are_anded() -> None:
    peer = {
        "namespaceSelector": {"matchLabels": {"team": "edge"}},
        "podSelector": {"matchLabels": {"app": "web"}},
    }
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"from": [peer]}]}))
    assert not allowed(c, "ingress-nginx/ctrl", "gim/api")  # namespace matches, pod does not
    assert not allowed(c, "gim/web", "gim/api")  # pod matches, namespace does not
    peer["podSelector"] = {"matchLabels": {"app": "nginx"}}
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"from": [peer]}]}))
    assert allowed(c, "ingress-nginx/ctrl", "gim/api")


def test_peers_and_rules_are_ored() -> None:
    two_peers = [
        {"podSelector": {"matchLabels": {"app": "web"}}},
        {"namespaceSelector": {"matchLabels": {"team": "edge"}}},
    ]
    c = cluster(
        policy("p", {"podSelector": {"matchLabels": {"app": "api"}}, "ingress": [{"from": two_peers}]})
    )
    assert allowed(c, "gim/web", "gim/api") and allowed(c, "ingress-nginx/ctrl", "gim/api")
    assert not allowed(c, "monitoring/prom", "gim/api")
    two_rules = [{"from": [p]} for p in two_peers]
    c = cluster(policy("p", {"podSelector": {"matchLabels": {"app": "api"}}, "ingress": two_rules}))
    assert allowed(c, "gim/web", "gim/api") and allowed(c, "ingress-nginx/ctrl", "gim/api")
    assert not allowed(c, "monitoring/prom", "gim/api")


def test_a_namespace_missing_from_the_state_still_has_its_name_label() -> None:
    by_name = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"from": [by_name]}]}))
    assert allowed(c, "monitoring/prom", "gim/api")
    assert not allowed(c, "ingress-nginx/ctrl", "gim/api")


@pytest.mark.parametrize("rule", [{}, {"from": []}, {"ports": []}])
def test_a_rule_without_peers_or_ports_matches_everything_including_outside_addresses(rule: dict) -> None:
    c = cluster(policy("p", {"podSelector": {}, "ingress": [rule]}))
    assert allowed(c, OUTSIDE, "gim/api")
    assert allowed(c, "monitoring/prom", "gim/api", 9999)


def test_selector_peers_never_match_outside_addresses() -> None:
    every_pod = {"namespaceSelector": {}, "podSelector": {}}
    c = cluster(
        policy("p", {"podSelector": {}, "ingress": [{"from": [every_pod]}], "egress": [{"to": [every_pod]}]})
    )
    assert allowed(c, "monitoring/prom", "gim/api")
    assert not allowed(c, OUTSIDE, "gim/api")
    assert not allowed(c, "gim/api", OUTSIDE)


def test_ip_block_with_except_matches_outside_addresses_and_pod_ips() -> None:
    block = {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.1.0/24"]}}
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"from": [block]}]}))
    assert allowed(c, "10.0.200.1", "gim/api")
    assert not allowed(c, "10.0.1.99", "gim/api")
    assert not allowed(c, "10.1.0.1", "gim/api")
    assert allowed(c, "gim/web", "gim/api")  # 10.0.0.11: a pod IP inside the block
    assert not allowed(c, "ingress-nginx/ctrl", "gim/api")  # 10.0.1.10: in the except


def test_ip_block_ipv6() -> None:
    pods = [
        Pod("gim", "api", {"app": "api"}, ip="fd00::10", ports=(HTTP,)),
        Pod("gim", "web", ip="fd00:1::1"),
    ]
    block = {"ipBlock": {"cidr": "fd00::/64", "except": ["fd00::dead/128"]}}
    c = cluster(
        policy("p", {"podSelector": {}, "egress": [{"to": [block]}], "policyTypes": ["Egress"]}), pods=pods
    )
    assert allowed(c, "gim/api", "fd00::1")
    assert not allowed(c, "gim/api", "fd00::dead")
    assert not allowed(c, "gim/api", "gim/web")
    assert not allowed(c, "gim/api", "10.0.0.1")  # an IPv4 address is in no IPv6 block


def test_ip_block_peers_never_match_by_selector() -> None:
    block = {"ipBlock": {"cidr": "192.168.0.0/16"}}
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"from": [block]}]}))
    assert not allowed(c, "gim/web", "gim/api")


# ---------------------------------------------------------------- ports


def test_protocol_defaults_to_tcp_and_protocol_alone_matches_every_port() -> None:
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"ports": [{"port": 8080}]}]}))
    assert allowed(c, OUTSIDE, "gim/api", 8080, "TCP")
    assert not allowed(c, OUTSIDE, "gim/api", 8080, "UDP")
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"ports": [{"protocol": "UDP"}]}]}))
    assert allowed(c, OUTSIDE, "gim/api", 53, "UDP") and allowed(c, OUTSIDE, "gim/api", 9, "UDP")
    assert not allowed(c, OUTSIDE, "gim/api", 53, "TCP")


def test_end_port_range_is_inclusive() -> None:
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"ports": [{"port": 8000, "endPort": 8080}]}]}))
    assert allowed(c, OUTSIDE, "gim/api", 8000) and allowed(c, OUTSIDE, "gim/api", 8080)
    assert not allowed(c, OUTSIDE, "gim/api", 7999) and not allowed(c, OUTSIDE, "gim/api", 8081)


def test_named_ports_resolve_on_the_destination_pod_for_ingress() -> None:
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]}))
    assert allowed(c, OUTSIDE, "gim/api", 8080)  # api's http is 8080
    assert not allowed(c, OUTSIDE, "gim/api", 9000)
    assert allowed(c, OUTSIDE, "gim/web", 9000)  # web's http is 9000
    assert not allowed(c, OUTSIDE, "gim/web", 8080)


def test_named_ports_resolve_on_the_destination_pod_for_egress_and_never_match_outside() -> None:
    c = cluster(
        policy("p", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": "http"}]}]})
    )
    assert allowed(c, "gim/api", "gim/web", 9000)
    assert not allowed(c, "gim/api", "gim/web", 8080)
    assert allowed(c, "gim/web", "ingress-nginx/ctrl", 8080)
    assert not allowed(c, "gim/api", OUTSIDE, 8080)


def test_named_port_matches_only_with_its_protocol() -> None:
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"ports": [{"port": "dns"}]}]}))  # TCP by default
    assert not allowed(c, OUTSIDE, "gim/api", 53, "UDP")
    c = cluster(
        policy("p", {"podSelector": {}, "ingress": [{"ports": [{"port": "dns", "protocol": "UDP"}]}]})
    )
    assert allowed(c, OUTSIDE, "gim/api", 53, "UDP")


def test_verdict_resolves_a_port_name_on_the_destination() -> None:
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"ports": [{"port": 9000}]}]}))
    assert allowed(c, OUTSIDE, "gim/web", "http")
    assert not allowed(c, OUTSIDE, "gim/api", "http")
    with pytest.raises(UserError, match="gim/web has no TCP container port named 'metrics'"):
        allowed(c, OUTSIDE, "gim/web", "metrics")
    with pytest.raises(UserError, match="outside the cluster"):
        allowed(c, "gim/web", OUTSIDE, "http")


# ---------------------------------------------------------------- host-network pods


def test_host_network_pods_are_never_isolated_and_are_known_by_ip_only() -> None:
    node = Pod("gim", "node-agent", {"app": "api"}, ip="192.168.0.5", host_network=True, ports=(HTTP,))
    pods = [*cluster().pods, node]
    same_ns = {"podSelector": {}}
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"from": [same_ns]}]}), pods=pods)
    assert allowed(c, OUTSIDE, "gim/node-agent")  # the policy selects it by labels, but does not apply
    assert Simulator(c).isolating(node, "ingress") == []
    assert allowed(c, "gim/web", "gim/api")
    assert not allowed(c, "gim/node-agent", "gim/api")  # not matched by podSelector despite its namespace
    by_ip = {"ipBlock": {"cidr": "192.168.0.0/24"}}
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"from": [by_ip]}]}), pods=pods)
    assert allowed(c, "gim/node-agent", "gim/api")
    c = cluster(DENY_EGRESS, pods=pods)
    assert allowed(c, "gim/node-agent", "ingress-nginx/ctrl")  # egress policies do not apply either


# ---------------------------------------------------------------- reasons


def test_reasons_name_the_allowing_policy_and_rule_or_the_isolating_policies() -> None:
    allow_edge = policy(
        "allow-edge",
        {
            "podSelector": {},
            "ingress": [
                {"ports": [{"port": 1}]},
                {"from": [{"namespaceSelector": {"matchLabels": {"team": "edge"}}}]},
            ],
        },
    )
    c = cluster(DENY_INGRESS, allow_edge)
    sim = Simulator(c)
    ok = sim.verdict(c.pod("ingress-nginx/ctrl"), c.pod("gim/api"), 8080)
    assert ok.allowed and ok.ingress.policy == "gim/allow-edge" and ok.ingress.rule == 1
    assert ok.reason == "ingress allowed by gim/allow-edge rule 1; egress not isolated"
    ko = sim.verdict(c.pod("gim/web"), c.pod("gim/api"), 8080)
    assert not ko.allowed and ko.ingress.policy is None
    assert (
        ko.ingress.reason
        == "ingress blocked: destination isolated by gim/allow-edge, gim/deny; no rule matches"
    )
    assert ko.reason.startswith(ko.ingress.reason) and ko.reason.endswith("egress not isolated")
    out = Simulator(cluster(DENY_EGRESS)).verdict(c.pod("gim/api"), OUTSIDE, 443)
    assert out.egress.reason == "egress blocked: source isolated by gim/deny-egress; no rule matches"
    assert out.ingress.reason == "ingress not isolated (destination outside the cluster)"


def test_isolating_lists_policy_keys_per_direction() -> None:
    c = cluster(DENY_INGRESS, DENY_EGRESS, policy("other", {"podSelector": {"matchLabels": {"app": "web"}}}))
    sim = Simulator(c)
    assert sim.isolating(c.pod("gim/api"), "ingress") == ["gim/deny"]
    assert sim.isolating(c.pod("gim/web"), "ingress") == ["gim/deny", "gim/other"]
    assert sim.isolating(c.pod("gim/web"), "egress") == ["gim/deny-egress"]
    assert sim.isolating(c.pod("ingress-nginx/ctrl"), "egress") == []
    with pytest.raises(UserError):
        sim.isolating(c.pod("gim/api"), "sideways")


def test_a_later_policy_with_the_same_name_replaces_the_earlier_one() -> None:
    c = cluster(DENY_INGRESS, policy("deny", {"podSelector": {}, "ingress": [{}]}))
    assert allowed(c, OUTSIDE, "gim/api")


# ---------------------------------------------------------------- matrix


def test_matrix_gives_every_ordered_pair_of_distinct_endpoints_in_port_destination_source_order() -> None:
    c = cluster(DENY_INGRESS)
    sim = Simulator(c)
    rows = list(sim.matrix(c.pods, c.pods, [(8080, "TCP"), (53, "UDP")]))
    assert len(rows) == 2 * 4 * 3
    assert all(src is not dst for src, dst, *_ in rows)
    assert [(r[2], r[3]) for r in rows[:12]] == [(8080, "TCP")] * 12
    assert [r[1].key for r in rows[:3]] == ["gim/api"] * 3
    for src, dst, port, proto, verdict in rows:
        assert verdict == sim.verdict(src, dst, port, proto)


def test_matrix_resolves_named_ports_per_destination_and_skips_destinations_without_them() -> None:
    c = cluster()
    rows = list(Simulator(c).matrix(c.pods, c.pods, [("http", "TCP")]))
    by_dst = {(dst.key, port) for _, dst, port, _, _ in rows}
    assert by_dst == {("gim/api", 8080), ("gim/web", 9000), ("ingress-nginx/ctrl", 8080)}
    rows = list(Simulator(c).matrix(c.pods, c.pods, [("dns", "")]))  # empty protocol: the port's own
    assert {(dst.key, port, proto) for _, dst, port, proto, _ in rows} == {("gim/api", 53, "UDP")}


def test_matrix_accepts_outside_addresses_and_reuses_verdict_objects() -> None:
    c = cluster(DENY_INGRESS)
    rows = list(Simulator(c).matrix([*c.pods, OUTSIDE], [c.pod("gim/api"), OUTSIDE], [(8080, "TCP")]))
    assert len(rows) == 4 + 4  # the outside address is not its own source either
    blocked = [v for src, dst, _, _, v in rows if dst != OUTSIDE and src != OUTSIDE]
    assert all(not v.allowed for v in blocked) and all(v is blocked[0] for v in blocked)
    assert all(v.allowed for _, dst, _, _, v in rows if dst == OUTSIDE)


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("spec", "key", "message"),
    [
        (
            {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]},
            "spec.ingress[0].from[0].ipBlock.cidr",
            "not a valid CIDR",
        ),
        (
            {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.1"}}]}]},
            "spec.ingress[0].from[0].ipBlock.cidr",
            "not a CIDR",
        ),
        (
            {
                "podSelector": {},
                "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.1.0.0/24"]}}]}],
            },
            "spec.egress[0].to[0].ipBlock.except[0]",
            "strict subset",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]}},
            "spec.podSelector.matchExpressions[0].operator",
            "unknown operator",
        ),
        (
            {
                "podSelector": {},
                "ingress": [
                    {
                        "from": [
                            {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Nope"}]}}
                        ]
                    }
                ],
            },
            "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].operator",
            "unknown operator",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": "http", "endPort": 90}]}]},
            "spec.ingress[0].ports[0].endPort",
            "named port",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"endPort": 90}]}]},
            "spec.ingress[0].ports[0].endPort",
            "needs port",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": 90, "endPort": 80}]}]},
            "spec.ingress[0].ports[0].endPort",
            "from port",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": 70000}]}]},
            "spec.ingress[0].ports[0].port",
            "1 to 65535",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": "HTTP_8"}]}]},
            "spec.ingress[0].ports[0].port",
            "port name",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"protocol": "ICMP"}]}]},
            "spec.ingress[0].ports[0].protocol",
            "unknown protocol",
        ),
        (
            {"podSelector": {}, "policyTypes": ["Ingress", "Both"]},
            "spec.policyTypes[1]",
            "unknown policy type",
        ),
        ({"podSelector": {}, "ingress": [{"from": [{}]}]}, "spec.ingress[0].from[0]", "needs podSelector"),
        (
            {
                "podSelector": {},
                "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}],
            },
            "spec.ingress[0].from[0]",
            "cannot be combined",
        ),
        ({"podSelector": {}, "ingress": [{"form": []}]}, "spec.ingress[0].form", "unknown field"),
        ({"podSelector": {}, "ingress": {"from": []}}, "spec.ingress", "must be a list"),
    ],
)
def test_malformed_policies_are_user_errors_naming_policy_and_key(spec: dict, key: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        Simulator(cluster(policy("bad", spec)))
    assert err.value.key == key
    assert "NetworkPolicy gim/bad" in err.value.message
    assert message in err.value.message


def test_a_pod_without_ip_where_an_ip_block_needs_it_is_a_user_error() -> None:
    pods = [Pod("gim", "api", ip="10.0.0.1", ports=(HTTP,)), Pod("gim", "pending")]
    block = {"ipBlock": {"cidr": "10.0.0.0/8"}}
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"from": [block]}]}), pods=pods)
    sim = Simulator(c)
    with pytest.raises(UserError, match="gim/pending has no IP, and NetworkPolicy gim/p needs it") as err:
        sim.verdict(c.pod("gim/pending"), c.pod("gim/api"), 8080)
    assert err.value.key == "spec.ingress[0].from[0].ipBlock"
    # without an ipBlock to evaluate, a pod without IP is fine
    assert sim.verdict(c.pod("gim/api"), c.pod("gim/pending"), 8080).allowed


def test_an_outside_address_that_is_not_an_ip_is_a_user_error() -> None:
    with pytest.raises(UserError, match="not an IP address"):
        Simulator(cluster()).verdict("not-an-ip", cluster().pods[0], 8080)


def test_matrix_reports_a_pod_without_ip_only_where_an_ip_block_needs_it() -> None:
    pods = [Pod("gim", "api", ip="10.0.0.1", ports=(HTTP,)), Pod("gim", "pending")]
    block = {"ipBlock": {"cidr": "10.0.0.0/8"}}
    c = cluster(policy("p", {"podSelector": {}, "ingress": [{"from": [block]}]}), pods=pods)
    with pytest.raises(UserError, match="gim/pending has no IP, and NetworkPolicy gim/p needs it"):
        list(Simulator(c).matrix(c.pods, c.pods, [(8080, "TCP")]))
    same_ns_first = [{"from": [{"podSelector": {}}]}, {"from": [block]}]
    c = cluster(policy("p", {"podSelector": {}, "ingress": same_ns_first}), pods=pods)
    rows = list(Simulator(c).matrix(c.pods, c.pods, [(8080, "TCP")]))
    assert len(rows) == 2 and all(v.allowed for *_, v in rows)
