"""Which probes a check runs (every client to every declared port, by pod IP and by Service IP), and what
the safety net of dryrun is."""

from __future__ import annotations

import pytest

from conformance.backends.model import ModelBackend
from conformance.gim.contract import Contract
from conformance.gim.render import DRYRUN_ALLOW_ALL, render
from conformance.gim.values import NetpolValues
from conformance.netpol.model import Cluster, ContainerPort, Namespace, Pod, Service, ServicePort, policy_name
from conformance.netpol.simulator import Simulator
from conformance.suite.flows import plan_flows, without_safety_net
from conformance.suite.topology import DNS_NAMESPACE, Topology

GIM = "gim"
ALLOWED = "ingress-nginx"
OTHER = "not-allowed"


def _deployed(mode: str = "enforce") -> tuple[ModelBackend, Topology, NetpolValues]:
    topo = Topology("run1", GIM, (ALLOWED,), (OTHER,))
    backend = ModelBackend()
    backend.apply(topo.objects())
    values = NetpolValues(enabled=True, mode=mode, allowed_namespaces=(ALLOWED,))
    backend.apply(render(values, GIM))
    return backend, topo, values


def _plan(mode: str = "enforce", **kwargs):
    backend, topo, values = _deployed(mode)
    state = backend.state(topo.namespaces)
    return (
        plan_flows(state, topo.client_keys, GIM, contract=Contract(values, GIM, state), **kwargs),
        topo,
        state,
    )


def test_every_client_probes_every_declared_port_of_every_gim_pod_by_pod_and_service():
    flows, topo, state = _plan()
    planned = {(f.probe.client, f.destination.key, f.destination_port, f.probe.via) for f in flows}
    wanted = {
        (client, pod.key, cp.port, via)
        for client in topo.client_keys
        for pod in state.pods_in(GIM)
        if pod.ports
        for cp in pod.ports
        for via in ("pod", "service")
    }
    assert planned == wanted
    assert len(flows) == len(wanted), "each flow once"


def test_probes_aim_at_the_pod_ip_or_the_service_cluster_ip():
    flows, _, state = _plan()
    for f in flows:
        if f.probe.via == "pod":
            assert f.probe.host == f.destination.ip and f.probe.target == f.destination.key
        else:
            service = state.service_by_ip(f.probe.host)
            assert service is not None and f.probe.target == service.key
            assert service.selects(f.destination)


def test_expected_verdicts_are_the_simulators_on_the_applied_policies():
    flows, _, state = _plan()
    sim = Simulator(state)
    for f in flows:
        assert f.expected == sim.verdict(f.source, f.destination, f.destination_port, f.probe.protocol)
    assert {f.source.namespace for f in flows if not f.expected.allowed} == {OTHER}


def test_reference_rendering_keeps_every_promise():
    flows, _, _ = _plan()
    assert flows and all(f.promise is not None for f in flows)
    assert not any(f.contract_broken for f in flows)


def test_a_contract_break_is_flagged_when_the_applied_policies_do_not_keep_the_promise():
    backend, topo, values = _deployed("enforce")
    # The chart "forgot" the allowedNamespaces policy: the listed namespace is now blocked.
    allowed_policy = next(p for p in render(values, GIM) if "allow-namespaces" in policy_name(p))
    backend.delete([allowed_policy])
    state = backend.state(topo.namespaces)
    flows = plan_flows(state, topo.client_keys, GIM, contract=Contract(values, GIM, state))
    broken = {f.source.namespace for f in flows if f.contract_broken}
    assert broken == {ALLOWED}


def test_without_contract_there_is_no_promise_and_nothing_is_broken():
    backend, topo, _ = _deployed()
    flows = plan_flows(backend.state(topo.namespaces), topo.client_keys, GIM, contract=None)
    assert flows and all(f.promise is None and not f.contract_broken for f in flows)


def test_via_pod_only():
    flows, _, _ = _plan(via=("pod",))
    assert flows and {f.probe.via for f in flows} == {"pod"}


def test_clients_that_do_not_exist_or_have_no_ip_are_skipped():
    backend, topo, values = _deployed()
    state = backend.state(topo.namespaces)
    state.pod(topo.client_key(OTHER)).ip = None
    flows = plan_flows(state, [*topo.client_keys, "nowhere/client"], GIM, contract=None)
    assert {f.probe.client for f in flows} == {topo.client_key(GIM), topo.client_key(ALLOWED)}


def _cluster_with_named_target_port() -> Cluster:
    server = Pod(
        "app",
        "web",
        {"app": "web"},
        "10.244.0.5",
        (
            ContainerPort(8080, "TCP", "http"),
            ContainerPort(5000, "UDP", "stats"),
            ContainerPort(9000, "SCTP"),
        ),
    )
    peer = Pod("app", "peer", {"app": "peer"}, "10.244.0.6", (ContainerPort(7000),))
    services = [
        Service(
            "app",
            "web",
            {"app": "web"},
            (ServicePort(80, "http"), ServicePort(81, "missing-name"), ServicePort(5000, 5000, "UDP")),
            "10.96.0.20",
        ),
        Service("app", "headless", {"app": "web"}, (ServicePort(80, 8080),), None),
    ]
    return Cluster({"app": Namespace("app")}, [server, peer], services)


def test_service_target_port_by_name_resolves_on_the_endpoint_pod():
    state = _cluster_with_named_target_port()
    flows = plan_flows(state, ["app/peer"], "app", contract=None, via=("service",))
    assert [(f.probe.host, f.probe.port, f.destination_port) for f in flows] == [("10.96.0.20", 80, 8080)]


def test_udp_is_not_probed_sctp_is_and_no_pod_probes_itself():
    state = _cluster_with_named_target_port()
    flows = plan_flows(state, ["app/web", "app/peer"], "app", contract=None, via=("pod",))
    seen = {(f.probe.client, f.destination.key, f.probe.port, f.probe.protocol) for f in flows}
    assert seen == {
        ("app/peer", "app/web", 8080, "TCP"),
        ("app/peer", "app/web", 9000, "SCTP"),
        ("app/web", "app/peer", 7000, "TCP"),
    }


def test_extra_targets_add_a_service_of_another_namespace():
    backend, topo, _ = _deployed()
    state = backend.state([*topo.namespaces, DNS_NAMESPACE])
    dns = next(s for s in state.services if s.name == "kube-dns")
    endpoints = [p for p in state.pods if dns.selects(p)]
    flows = plan_flows(state, [topo.client_key(GIM)], GIM, contract=None, extra_targets=[(dns, endpoints)])
    to_dns = [f for f in flows if f.probe.target == dns.key]
    assert [(f.probe.host, f.probe.port, f.probe.protocol) for f in to_dns] == [(dns.cluster_ip, 53, "TCP")]


# -- the dryrun safety net --------------------------------------------------------------------------
def test_without_safety_net_dryrun_becomes_enforce():
    values = NetpolValues(enabled=True, mode="dryrun", allowed_namespaces=(ALLOWED,))
    dryrun = render(values, GIM)
    assert DRYRUN_ALLOW_ALL in {policy_name(p) for p in dryrun}
    enforce = render(NetpolValues(enabled=True, mode="enforce", allowed_namespaces=(ALLOWED,)), GIM)
    assert without_safety_net(dryrun) == enforce


def _policy(name: str, spec: dict) -> dict:
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": GIM}, "spec": spec}


@pytest.mark.parametrize(
    "spec",
    [
        {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]},
        {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]},
        {"podSelector": {"matchLabels": {}}, "ingress": [{}], "egress": [{}]},
    ],
    ids=["ingress", "egress", "empty-matchLabels"],
)
def test_allow_all_for_every_pod_is_the_safety_net(spec):
    assert without_safety_net([_policy("net", spec)]) == []


@pytest.mark.parametrize(
    "spec",
    [
        {"podSelector": {}, "policyTypes": ["Ingress"]},
        {"podSelector": {"matchLabels": {"app": "x"}}, "ingress": [{}]},
        {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]},
    ],
    ids=["default-deny", "allow-all-for-some-pods", "same-namespace"],
)
def test_other_policies_are_kept(spec):
    assert without_safety_net([_policy("keep", spec)]) == [_policy("keep", spec)]


def _two_endpoint_cluster(policies: list[dict]) -> Cluster:
    http = (ContainerPort(8080, "TCP", "http"),)
    pods = [
        Pod(OTHER, "client", {"app": "client"}, "10.0.0.1"),
        Pod(GIM, "api-a", {"app": "api", "tier": "open"}, "10.0.0.2", http),
        Pod(GIM, "api-b", {"app": "api", "tier": "closed"}, "10.0.0.3", http),
        Pod(GIM, "on-host", {"app": "host"}, "172.18.0.2", http, host_network=True),
    ]
    service = Service(GIM, "api", {"app": "api"}, (ServicePort(80, "http"),), "10.96.0.10")
    return Cluster({n: Namespace(n) for n in (GIM, OTHER)}, pods, [service], policies)


def _isolate(tier: str) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"deny-{tier}", "namespace": GIM},
        "spec": {"podSelector": {"matchLabels": {"tier": tier}}, "policyTypes": ["Ingress"]},
    }


def test_a_service_is_probed_only_when_all_its_endpoints_agree():
    agreeing = plan_flows(_two_endpoint_cluster([]), [f"{OTHER}/client"], GIM, contract=None)
    assert [f.destination_port for f in agreeing if f.probe.via == "service"] == [8080]

    # kube-proxy may land on either endpoint: one allows, one blocks, so no verdict can be expected.
    split = plan_flows(_two_endpoint_cluster([_isolate("closed")]), [f"{OTHER}/client"], GIM, contract=None)
    assert not [f for f in split if f.probe.via == "service"]
    assert {f.destination.name: f.expected.allowed for f in split if f.probe.via == "pod"} == {
        "api-a": True,
        "api-b": False,
    }


def test_host_network_pods_are_not_probed():
    flows = plan_flows(_two_endpoint_cluster([]), [f"{OTHER}/client"], GIM, contract=None)
    assert "on-host" not in {f.destination.name for f in flows}
