"""The model backend (an in-memory API server plus a policy-enforcing CNI) and a Scenario running on it."""

from __future__ import annotations

import ipaddress

import pytest

from conformance.backends.base import ApiError
from conformance.backends.model import POD_CIDR, SERVICE_CIDR, ModelBackend
from conformance.backends.model_faults import Latencies
from conformance.gim.render import DRYRUN_ALLOW_ALL
from conformance.gim.values import NetpolValues
from conformance.netpol.model import NAME_LABEL, ContainerPort, policy_name
from conformance.netpol.probing import Outcome, Probe
from conformance.probes import agnhost
from conformance.suite.scenario import Scenario, Timing
from conformance.suite.topology import Topology

NS, CLIENT_NS = "app", "client-ns"
SERVER_LABELS = {"app": "web"}


def _namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _server() -> dict:
    ports = (ContainerPort(8080, "TCP", "http"), ContainerPort(9000, "SCTP", "sctp"))
    return agnhost.server_pod(NS, "web", SERVER_LABELS, ports, run_id="t")


def _service(name: str, target_port: int | str, selector: dict | None = None, port: int = 80) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": selector if selector is not None else SERVER_LABELS,
            "ports": [{"name": "p", "port": port, "targetPort": target_port, "protocol": "TCP"}],
        },
    }


def _deny_all_ingress(namespace: str = NS) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all", "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


@pytest.fixture
def backend() -> ModelBackend:
    """An instant cluster (no latencies): these tests are about what the model answers, not when."""
    b = ModelBackend(latencies=Latencies.instant())
    b.apply(
        [
            _server(),  # before its namespace: apply orders Namespaces first, like kubectl apply -f dir
            _namespace(NS),
            _namespace(CLIENT_NS),
            agnhost.client_pod(CLIENT_NS, "client", {"role": "client"}, run_id="t"),
            _service("by-number", 8080),
            _service("by-name", "http"),
            _service("unknown-name", "nope"),
            _service("no-endpoints", 8080, selector={"app": "nothing"}),
        ]
    )
    return b


def _ip(backend: ModelBackend, key: str) -> str:
    ip = backend.state([key.split("/")[0]]).pod(key).ip
    assert ip
    return ip


def _cluster_ip(backend: ModelBackend, name: str) -> str:
    service = next(s for s in backend.state([NS]).services if s.name == name)
    assert service.cluster_ip
    return service.cluster_ip


def _probe(
    backend: ModelBackend, host: str, port: int, protocol: str = "TCP", client: str = f"{CLIENT_NS}/client"
):
    [observation] = backend.probe([Probe(client, "x", host, port, protocol)], 1.0)
    return observation


# -- objects and state ---------------------------------------------------------------------------------
def test_pods_get_distinct_ips_from_the_pod_cidr_and_a_node(backend):
    pods = backend.state([NS, CLIENT_NS]).pods
    ips = [p.ip for p in pods]
    assert len(set(ips)) == len(ips) == 2
    assert all(ipaddress.ip_address(ip) in POD_CIDR for ip in ips)
    assert all(p.node for p in pods)


def test_services_get_cluster_ips_from_the_service_cidr(backend):
    services = backend.state([NS]).services
    assert {s.name for s in services} == {"by-number", "by-name", "unknown-name", "no-endpoints"}
    ips = [s.cluster_ip for s in services]
    assert len(set(ips)) == len(ips)
    assert all(ipaddress.ip_address(ip) in SERVICE_CIDR for ip in ips)


def test_every_namespace_carries_its_name_label(backend):
    namespaces = backend.state([NS]).namespaces
    assert {NS, CLIENT_NS, "kube-system"} <= set(namespaces)
    assert all(ns.labels[NAME_LABEL] == name for name, ns in namespaces.items())


def test_state_holds_all_namespaces_but_only_the_objects_of_those_asked(backend):
    backend.apply([_deny_all_ingress(CLIENT_NS)])
    state = backend.state([NS])
    assert CLIENT_NS in state.namespaces
    assert {p.namespace for p in state.pods} == {NS}
    assert state.policies == []
    assert [policy_name(p) for p in backend.state([CLIENT_NS]).policies] == ["deny-all"]


def test_reapply_keeps_pod_and_cluster_ips(backend):
    pod_ip, svc_ip = _ip(backend, f"{NS}/web"), _cluster_ip(backend, "by-number")
    changed = _server()
    changed["metadata"]["labels"]["version"] = "2"
    backend.apply([changed, _service("by-number", 8080, port=81)])
    state = backend.state([NS])
    assert state.pod(f"{NS}/web").ip == pod_ip
    assert state.pod(f"{NS}/web").labels["version"] == "2"
    service = next(s for s in state.services if s.name == "by-number")
    assert service.cluster_ip == svc_ip and service.ports[0].port == 81


def test_object_in_a_missing_namespace_is_refused():
    with pytest.raises(ApiError, match='namespaces "ghost" not found'):
        ModelBackend().apply([agnhost.client_pod("ghost", "c", {}, run_id="t")])


def test_namespace_deletion_cascades_to_what_it_holds(backend):
    backend.apply([_deny_all_ingress()])
    web_ip = _ip(backend, f"{NS}/web")
    backend.delete([_namespace(NS)])
    state = backend.state([NS, CLIENT_NS])
    assert NS not in state.namespaces
    assert [p.key for p in state.pods] == [f"{CLIENT_NS}/client"]
    assert state.services == [] and state.policies == []
    backend.delete([_namespace(NS)])  # already gone: not an error
    assert _probe(backend, web_ip, 8080).outcome is Outcome.BLOCKED, "nothing lives at the old pod IP"


def test_recreated_namespace_starts_empty(backend):
    backend.delete([_namespace(NS)])
    backend.apply([_namespace(NS)])
    assert list(backend.state([NS]).pods_in(NS)) == []


def test_cluster_dns_is_there_from_the_start():
    state = ModelBackend().state(["kube-system"])
    dns = next(s for s in state.services if s.name == "kube-dns")
    assert {(p.port, p.protocol) for p in dns.ports} == {(53, "UDP"), (53, "TCP")}
    assert [p.key for p in state.pods if dns.selects(p)] == ["kube-system/coredns"]


# -- probes --------------------------------------------------------------------------------------------
def test_probe_to_a_listening_port_connects(backend):
    assert _probe(backend, _ip(backend, f"{NS}/web"), 8080).outcome is Outcome.CONNECTED
    assert _probe(backend, _ip(backend, f"{NS}/web"), 9000, "SCTP").outcome is Outcome.CONNECTED


def test_probe_to_a_port_nothing_listens_on_is_refused(backend):
    observation = _probe(backend, _ip(backend, f"{NS}/web"), 8081)
    assert observation.outcome is Outcome.REFUSED
    assert "8081" in observation.detail
    assert _probe(backend, _ip(backend, f"{NS}/web"), 9000, "TCP").outcome is Outcome.REFUSED


def test_probe_through_a_service_reaches_the_target_port(backend):
    assert _probe(backend, _cluster_ip(backend, "by-number"), 80).outcome is Outcome.CONNECTED
    assert _probe(backend, _cluster_ip(backend, "by-number"), 8080).outcome is Outcome.REFUSED


def test_service_target_port_by_name(backend):
    assert _probe(backend, _cluster_ip(backend, "by-name"), 80).outcome is Outcome.CONNECTED
    assert _probe(backend, _cluster_ip(backend, "unknown-name"), 80).outcome is Outcome.REFUSED


def test_service_without_endpoints_is_refused(backend):
    observation = _probe(backend, _cluster_ip(backend, "no-endpoints"), 80)
    assert observation.outcome is Outcome.REFUSED
    assert "no endpoints" in observation.detail


def test_missing_client_is_a_probe_error(backend):
    observation = _probe(backend, _ip(backend, f"{NS}/web"), 8080, client="nowhere/client")
    assert observation.outcome is Outcome.ERROR
    assert "nowhere/client" in observation.detail
    assert "does not exist" in backend.diagnose("nowhere/client")
    assert "phase Running" in backend.diagnose(f"{CLIENT_NS}/client")


def test_policy_blocks_pod_and_service_probes_as_a_timeout(backend):
    backend.apply([_deny_all_ingress()])
    for host, port in ((_ip(backend, f"{NS}/web"), 8080), (_cluster_ip(backend, "by-name"), 80)):
        observation = _probe(backend, host, port)
        assert observation.outcome is Outcome.BLOCKED
        assert "TIMEOUT" in observation.detail and "deny-all" in observation.detail


def test_a_blocked_port_nothing_listens_on_is_blocked_not_refused(backend):
    backend.apply([_deny_all_ingress()])
    assert _probe(backend, _ip(backend, f"{NS}/web"), 8081).outcome is Outcome.BLOCKED


def test_deleting_the_policy_unblocks(backend):
    backend.apply([_deny_all_ingress()])
    assert _probe(backend, _ip(backend, f"{NS}/web"), 8080).outcome is Outcome.BLOCKED
    backend.delete([_deny_all_ingress()])
    assert _probe(backend, _ip(backend, f"{NS}/web"), 8080).outcome is Outcome.CONNECTED


def test_an_address_where_no_pod_lives_times_out(backend):
    assert _probe(backend, "10.244.250.250", 8080).outcome is Outcome.BLOCKED


def test_one_observation_per_probe_in_order(backend):
    web = _ip(backend, f"{NS}/web")
    probes = [Probe(f"{CLIENT_NS}/client", "x", web, port) for port in (8081, 8080, 8081)]
    assert [o.outcome for o in backend.probe(probes, 1.0)] == [
        Outcome.REFUSED,
        Outcome.CONNECTED,
        Outcome.REFUSED,
    ]
    assert [o.probe for o in backend.probe(probes, 1.0)] == probes


# -- a scenario on the model backend -----------------------------------------------------------------
def _scenario(mode: str) -> Scenario:
    topo = Topology("run1", "gim", ("ingress-nginx",), ("not-allowed",))
    values = NetpolValues(enabled=True, mode=mode, allowed_namespaces=("ingress-nginx",))
    sc = Scenario.standalone(ModelBackend(), topo, values, Timing())
    sc.setup()
    sc.deploy()
    return sc


def test_switching_to_enforce_deletes_the_safety_net_and_blocks_what_is_not_listed():
    sc = _scenario("dryrun")
    assert sc.assert_conforms("dryrun").ok
    sc.deploy(sc.with_values(mode="enforce"))
    names = {policy_name(p) for p in sc.state().policies_in("gim")}
    assert DRYRUN_ALLOW_ALL not in names
    report = sc.assert_conforms("enforce")
    assert {r.flow.source.namespace for r in report.results if not r.flow.expected.allowed} == {"not-allowed"}


def test_dryrun_reports_what_enforce_would_block():
    sc = _scenario("dryrun")
    assert {f.source.namespace for f in sc.would_block_under_enforce()} == {"not-allowed"}


def test_teardown_deletes_the_scenarios_namespaces():
    sc = _scenario("enforce")
    sc.teardown()
    assert sc.backend.namespace_phases()["gim"] == "Terminating"
    sc.backend.clock.sleep(30)  # namespaces terminate for 10-20 s
    assert set(sc.backend.state([]).namespaces) == {"kube-system"}


def test_client_namespace_added_after_the_policies_and_removed():
    sc = _scenario("enforce")
    sc.add_client_namespace("late", allowed=False)
    report = sc.assert_conforms("late namespace")
    late = [r for r in report.results if r.flow.source.namespace == "late"]
    assert late and not any(r.flow.expected.allowed for r in late)
    sc.remove_client_namespace("late")
    assert "late" not in sc.state().namespaces
    assert "late" not in sc.topology.namespaces
