"""The documented contract: what GIM's networkPolicy values promise for each flow, from the values alone."""

from __future__ import annotations

import pytest

from conformance.gim.contract import (
    DISABLED_BLOCKS_NOTHING,
    DRYRUN_BLOCKS_NOTHING,
    EXTRA_POLICIES,
    NOT_GIMS_POLICIES,
    NOT_LISTED_BLOCKED,
    OUTSIDE_GIM,
    SAME_NAMESPACE,
    Contract,
    Promise,
    namespace_allowed,
)
from conformance.gim.examples import SMTP_PORT, SMTP_RELAY, smtp_egress_policy
from conformance.gim.render import render
from conformance.gim.values import NetpolValues
from conformance.netpol.model import Cluster, ContainerPort, Namespace, Pod
from conformance.netpol.simulator import Simulator

GIM = "gitguardian"
LISTED = "ingress-nginx"
OTHER = "team-a"
PARTNER = "partner"
OUTSIDE_IP = "203.0.113.7"
GIM_PART_OF = {"app.kubernetes.io/name": "gitguardian"}


def _pod(ns: str, name: str, ip: str, *ports: int, host_network: bool = False, **labels: str) -> Pod:
    return Pod(
        ns,
        name,
        {**labels},
        ip,
        tuple(ContainerPort(p, "TCP", f"p{p}") for p in ports),
        host_network=host_network,
    )


NGINX = _pod(GIM, "nginx", "10.244.0.10", 8080, **GIM_PART_OF, component="nginx")
PUBLIC_API = _pod(GIM, "public-api", "10.244.0.11", 8001, **GIM_PART_OF, component="public-api")
WORKER = _pod(GIM, "worker", "10.244.0.12", **GIM_PART_OF, component="worker")
LISTED_CLIENT = _pod(LISTED, "controller", "10.244.1.10")
OTHER_CLIENT = _pod(OTHER, "client", "10.244.2.10")
OTHER_SERVER = _pod(OTHER, "server", "10.244.2.11", 9000)
PARTNER_CLIENT = _pod(PARTNER, "client", "10.244.3.10")
DNS = _pod("kube-system", "coredns", "10.244.4.2", 53, **{"k8s-app": "kube-dns"})
HOST_IN_LISTED = _pod(LISTED, "node-agent", "172.18.0.2", host_network=True)
HOST_IN_GIM = _pod(GIM, "node-exporter", "172.18.0.3", host_network=True)

CLUSTER = Cluster(
    {ns: Namespace(ns) for ns in (GIM, LISTED, OTHER, PARTNER, "kube-system")},
    [
        NGINX,
        PUBLIC_API,
        WORKER,
        LISTED_CLIENT,
        OTHER_CLIENT,
        OTHER_SERVER,
        PARTNER_CLIENT,
        DNS,
        HOST_IN_LISTED,
        HOST_IN_GIM,
    ],
)


def values(mode: str = "enforce", *, enabled: bool = True, extra: tuple[dict, ...] = ()) -> NetpolValues:
    return NetpolValues(enabled=enabled, mode=mode, allowed_namespaces=(LISTED,), extra_policies=extra)


def contract(v: NetpolValues) -> Contract:
    return Contract(v, GIM, CLUSTER)


# Every kind of source the suite probes from, towards a GIM pod.
SOURCES_TO_GIM = [
    pytest.param(WORKER, id="gim-pod"),
    pytest.param(LISTED_CLIENT, id="listed-namespace"),
    pytest.param(OTHER_CLIENT, id="namespace-not-listed"),
    pytest.param(OUTSIDE_IP, id="outside-ip"),
    pytest.param(HOST_IN_LISTED, id="host-network-in-listed-namespace"),
]


# -- disabled and dryrun promise nothing is blocked ---------------------------------------------------
@pytest.mark.parametrize("src", [*SOURCES_TO_GIM, pytest.param(HOST_IN_GIM, id="host-network-in-gim")])
def test_disabled_promises_every_flow_allowed(src):
    c = contract(values(enabled=False, extra=(smtp_egress_policy(),)))
    assert c.expect(src, NGINX, 8080) == Promise(True, DISABLED_BLOCKS_NOTHING)


@pytest.mark.parametrize("src", [*SOURCES_TO_GIM, pytest.param(HOST_IN_GIM, id="host-network-in-gim")])
def test_dryrun_promises_every_flow_allowed_even_with_an_egress_extra_policy(src):
    c = contract(values("dryrun", extra=(smtp_egress_policy(),)))
    assert c.expect(src, NGINX, 8080) == Promise(True, DRYRUN_BLOCKS_NOTHING)
    assert c.expect(WORKER, DNS, 53) == Promise(True, DRYRUN_BLOCKS_NOTHING)


# -- enforce --------------------------------------------------------------------------------------------
def test_enforce_gim_pods_reach_each_other():
    assert contract(values()).expect(WORKER, NGINX, 8080) == Promise(True, SAME_NAMESPACE)


def test_enforce_listed_namespace_is_allowed_and_named_in_the_promise():
    assert contract(values()).expect(LISTED_CLIENT, PUBLIC_API, 8001) == Promise(
        True, namespace_allowed(LISTED)
    )
    assert LISTED in namespace_allowed(LISTED)


def test_enforce_namespace_not_listed_is_blocked():
    assert contract(values()).expect(OTHER_CLIENT, NGINX, 8080) == Promise(False, NOT_LISTED_BLOCKED)


def test_enforce_outside_address_is_blocked_from_gim():
    assert contract(values()).expect(OUTSIDE_IP, NGINX, 8080) == Promise(False, NOT_LISTED_BLOCKED)


def test_enforce_host_network_source_is_not_its_namespace():
    """A host-network pod is known by its node IP only: listing its namespace does not let it in."""
    assert contract(values()).expect(HOST_IN_LISTED, NGINX, 8080) == Promise(False, NOT_LISTED_BLOCKED)


def test_enforce_traffic_that_does_not_involve_gim_is_not_affected():
    c = contract(values())
    assert c.expect(OTHER_CLIENT, OTHER_SERVER, 9000) == Promise(True, OUTSIDE_GIM)
    assert c.expect(OUTSIDE_IP, OTHER_SERVER, 9000) == Promise(True, OUTSIDE_GIM)


def test_enforce_without_extra_policies_leaves_gim_egress_open():
    c = contract(values())
    assert c.expect(WORKER, OTHER_SERVER, 9000) == Promise(True, OUTSIDE_GIM)
    assert c.expect(WORKER, DNS, 53) == Promise(True, OUTSIDE_GIM)
    assert c.expect(WORKER, SMTP_RELAY, 25) == Promise(True, OUTSIDE_GIM)


def test_enforce_host_network_destination_in_gim_is_not_isolated():
    assert contract(values()).expect(OTHER_CLIENT, HOST_IN_GIM, 9100).allowed


def test_listed_namespace_promise_follows_the_values_not_the_cluster():
    """A namespace the values list is allowed even if the cluster does not hold it (yet)."""
    late = _pod("created-later", "client", "10.244.9.9")
    v = NetpolValues(enabled=True, mode="enforce", allowed_namespaces=(LISTED, "created-later"))
    assert contract(v).expect(late, NGINX, 8080) == Promise(True, namespace_allowed("created-later"))


# -- extraPolicies ------------------------------------------------------------------------------------
def test_enforce_smtp_example_blocks_every_other_egress_of_gim_pods():
    c = contract(values(extra=(smtp_egress_policy(),)))
    assert c.expect(WORKER, NGINX, 8080) == Promise(False, EXTRA_POLICIES)
    assert c.expect(WORKER, DNS, 53) == Promise(False, EXTRA_POLICIES)
    assert c.expect(WORKER, OTHER_SERVER, 9000) == Promise(False, EXTRA_POLICIES)
    assert c.expect(WORKER, SMTP_RELAY, 25) == Promise(False, EXTRA_POLICIES)


def test_enforce_smtp_example_allows_its_relay():
    c = contract(values(extra=(smtp_egress_policy(),)))
    assert c.expect(WORKER, SMTP_RELAY, SMTP_PORT) == Promise(True, EXTRA_POLICIES)


def test_enforce_smtp_example_leaves_ingress_into_gim_unchanged():
    c = contract(values(extra=(smtp_egress_policy(),)))
    assert c.expect(LISTED_CLIENT, NGINX, 8080) == Promise(True, namespace_allowed(LISTED))
    assert c.expect(OTHER_CLIENT, NGINX, 8080) == Promise(False, NOT_LISTED_BLOCKED)
    assert c.expect(OTHER_CLIENT, OTHER_SERVER, 9000) == Promise(True, OUTSIDE_GIM)


def _partner_ingress(namespace: str | None = None) -> dict:
    meta: dict = {"name": "allow-partner-to-public-api"}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {
            "podSelector": {"matchLabels": {"component": "public-api"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": PARTNER}}}
                    ],
                    "ports": [{"protocol": "TCP", "port": 8001}],
                }
            ],
        },
    }


def test_extra_ingress_allow_from_a_namespace_not_listed_is_allowed():
    c = contract(values(extra=(_partner_ingress(),)))
    assert c.expect(PARTNER_CLIENT, PUBLIC_API, 8001) == Promise(True, EXTRA_POLICIES)


def test_extra_ingress_allow_is_limited_to_what_it_selects():
    c = contract(values(extra=(_partner_ingress(),)))
    assert c.expect(PARTNER_CLIENT, NGINX, 8080) == Promise(False, NOT_LISTED_BLOCKED)
    assert c.expect(OTHER_CLIENT, PUBLIC_API, 8001) == Promise(False, NOT_LISTED_BLOCKED)


def test_extra_policies_are_placed_in_the_gim_namespace():
    """An extra policy is rendered in the GIM namespace whatever (or if any) namespace it names."""
    c = contract(values(extra=(_partner_ingress(namespace=PARTNER),)))
    assert c.expect(PARTNER_CLIENT, PUBLIC_API, 8001) == Promise(True, EXTRA_POLICIES)


# -- the reference rendering keeps the contract ---------------------------------------------------------
def _agrees_with_reference_rendering(v: NetpolValues, src, dst, port: int) -> None:
    promise = contract(v).expect(src, dst, port)
    applied = Cluster(CLUSTER.namespaces, CLUSTER.pods, CLUSTER.services, render(v, GIM))
    verdict = Simulator(applied).verdict(src, dst, port)
    assert promise.allowed == verdict.allowed, f"contract: {promise}; rendered policies: {verdict.reason}"


@pytest.mark.parametrize("mode", ["dryrun", "enforce"])
@pytest.mark.parametrize("src", SOURCES_TO_GIM)
@pytest.mark.parametrize(
    "extra", [(), (smtp_egress_policy(),), (_partner_ingress(),)], ids=["none", "smtp", "partner"]
)
def test_reference_rendering_keeps_the_contract(mode, src, extra):
    v = values(mode, extra=extra)
    for dst, port in ((NGINX, 8080), (PUBLIC_API, 8001), (OTHER_SERVER, 9000), (DNS, 53)):
        _agrees_with_reference_rendering(v, src, dst, port)
    _agrees_with_reference_rendering(v, PARTNER_CLIENT, PUBLIC_API, 8001)


def test_host_network_pod_of_the_gim_namespace_is_not_a_gim_pod_as_a_source():
    """Selectors never match a host-network source: even in the GIM namespace it is only an IP."""
    assert contract(values()).expect(HOST_IN_GIM, NGINX, 8080) == Promise(False, NOT_LISTED_BLOCKED)
    _agrees_with_reference_rendering(values(), HOST_IN_GIM, NGINX, 8080)


# -- policies the cluster already has, outside GIM's values ------------------------------------------
def _deny_all(namespace: str, policy_type: str) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"default-deny-{policy_type.lower()}", "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": [policy_type]},
    }


def _with(*policies: dict) -> Cluster:
    return Cluster(CLUSTER.namespaces, CLUSTER.pods, CLUSTER.services, list(policies))


def _agrees_with_third_party_policy(third_party: dict, src, dst, port: int) -> None:
    v = values()
    promise = Contract(v, GIM, _with(third_party)).expect(src, dst, port)
    applied = Cluster(CLUSTER.namespaces, CLUSTER.pods, CLUSTER.services, [*render(v, GIM), third_party])
    verdict = Simulator(applied).verdict(src, dst, port)
    assert promise == Promise(False, NOT_GIMS_POLICIES), promise
    assert not verdict.allowed, verdict.reason


def test_egress_policy_of_a_listed_namespace_is_not_a_contract_break():
    """A flow cut by a policy GIM does not own is not the chart breaking its contract."""
    _agrees_with_third_party_policy(_deny_all(LISTED, "Egress"), LISTED_CLIENT, NGINX, 8080)


def test_ingress_policy_of_kube_system_is_not_a_contract_break():
    """Even with networkPolicy disabled, a flow another policy cuts is not promised."""
    assert Contract(values(enabled=False), GIM, _with(_deny_all("kube-system", "Ingress"))).expect(
        WORKER, DNS, 53
    ) == Promise(False, NOT_GIMS_POLICIES)
    _agrees_with_third_party_policy(_deny_all("kube-system", "Ingress"), WORKER, DNS, 53)


def test_gims_own_policies_in_the_state_do_not_count_as_third_party():
    """The cluster state holds the policies applied in the GIM namespace: the contract must not read them
    as someone else's (it would then promise whatever the chart does)."""
    applied = _with(*render(values(), GIM))
    assert Contract(values(), GIM, applied).expect(OTHER_CLIENT, NGINX, 8080) == Promise(
        False, NOT_LISTED_BLOCKED
    )
    dryrun_applied = _with(*render(values("dryrun"), GIM))
    c = Contract(values("enforce"), GIM, dryrun_applied)
    assert c.expect(OTHER_CLIENT, NGINX, 8080) == Promise(False, NOT_LISTED_BLOCKED), (
        "the safety net is GIM's"
    )
