"""CNI quirk profiles of the model backend: what real enforcers program and how they answer a denial."""

from __future__ import annotations

import pytest

from conformance.backends.cni_profiles import CniProfile, parse_profile
from conformance.backends.factory import model_backend
from conformance.backends.model import ModelBackend
from conformance.backends.model_faults import Latencies
from conformance.errors import UserError
from conformance.netpol.model import ContainerPort
from conformance.netpol.probing import Outcome, Probe
from conformance.probes import agnhost

NS, CLIENT_NS = "app", "client-ns"


def _policy(name: str, spec: dict) -> dict:
    meta = {"name": name, "namespace": NS}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta, "spec": spec}


DENY_ALL = _policy("deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]})
NAMED_PORT = _policy("http-only", {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]})
PORT_RANGE = _policy(
    "range", {"podSelector": {}, "ingress": [{"ports": [{"port": 8000, "endPort": 8080, "protocol": "TCP"}]}]}
)


def _cluster(profile: str, *policies: dict, host_network_client: bool = False) -> ModelBackend:
    backend = ModelBackend(cni=parse_profile(profile), latencies=Latencies.instant())
    client = agnhost.client_pod(CLIENT_NS, "client", {"role": "client"}, run_id="t")
    client["spec"]["hostNetwork"] = host_network_client
    ports = (ContainerPort(8080, "TCP", "http"), ContainerPort(9000, "SCTP", "sctp"))
    backend.apply(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in (NS, CLIENT_NS)]
        + [agnhost.server_pod(NS, "web", {"app": "web"}, ports, run_id="t"), client, *policies]
    )
    return backend


def _probe(backend: ModelBackend, port: int, protocol: str = "TCP", timeout_s: float = 2.0):
    ip = backend.state([NS]).pod(f"{NS}/web").ip
    [seen] = backend.probe([Probe(f"{CLIENT_NS}/client", f"{NS}/web", ip, port, protocol)], timeout_s)
    return seen


def test_profiles_combine_with_commas_and_weave_npc_is_its_three_quirks():
    assert parse_profile("") == parse_profile("drops") == CniProfile()
    both = parse_profile("rejects,ignores-endport")
    assert both.rejects and both.ignores_end_port and not both.ignores_named_ports
    weave = parse_profile("weave-npc")
    assert (weave.ignores_named_ports, weave.ignores_end_port, weave.filters_node_traffic) == (
        True,
        True,
        False,
    )
    assert not weave.rejects


def test_an_unknown_profile_is_one_line_naming_the_option():
    with pytest.raises(UserError, match="--model-cni.*unknown CNI profile 'cilium'"):
        parse_profile("drops,cilium")


def test_the_options_choose_the_model_backends_profile():
    backend = model_backend({"model_cni": "weave-npc", "model_faults": "", "model_latencies": "instant"})
    assert backend.cni == parse_profile("weave-npc")


def test_drops_cost_the_probe_its_whole_timeout_on_the_clock():
    backend = _cluster("drops", DENY_ALL)
    before = backend.clock.now()
    seen = _probe(backend, 8080, timeout_s=5.0)
    assert seen.outcome is Outcome.BLOCKED and "TIMEOUT" in seen.detail
    assert backend.clock.now() - before >= 5.0


def test_rejects_answers_a_denied_connection_at_once_with_a_refusal():
    backend = _cluster("rejects", DENY_ALL)
    before = backend.clock.now()
    seen = _probe(backend, 8080, timeout_s=5.0)
    assert seen.outcome is Outcome.REFUSED and "deny-all" in seen.detail
    assert backend.clock.now() - before < 5.0
    assert _probe(_cluster("rejects"), 8080).outcome is Outcome.CONNECTED


def test_ignores_named_ports_skips_the_whole_policy():
    api = _cluster("drops", NAMED_PORT)
    assert _probe(api, 8080).outcome is Outcome.CONNECTED
    assert _probe(api, 9000, "SCTP").outcome is Outcome.BLOCKED, (
        "the policy isolates the pod: SCTP is not listed"
    )
    weave = _cluster("ignores-named-ports", NAMED_PORT)
    assert _probe(weave, 9000, "SCTP").outcome is Outcome.CONNECTED, "skipped policy: the pod is not isolated"


def test_ignores_endport_keeps_only_the_first_port_of_a_range():
    assert _probe(_cluster("drops", PORT_RANGE), 8080).outcome is Outcome.CONNECTED
    assert _probe(_cluster("ignores-endport", PORT_RANGE), 8080).outcome is Outcome.BLOCKED
    assert CniProfile(ignores_end_port=True).programmed([PORT_RANGE])[0]["spec"]["ingress"][0]["ports"] == [
        {"port": 8000, "protocol": "TCP"}
    ]
    assert "endPort" in PORT_RANGE["spec"]["ingress"][0]["ports"][0], "the API object is left as it was"


def test_node_unfiltered_lets_traffic_from_the_node_through():
    assert _probe(_cluster("drops", DENY_ALL, host_network_client=True), 8080).outcome is Outcome.BLOCKED
    unfiltered = _cluster("node-unfiltered", DENY_ALL, host_network_client=True)
    assert _probe(unfiltered, 8080).outcome is Outcome.CONNECTED
    assert _probe(_cluster("node-unfiltered", DENY_ALL), 8080).outcome is Outcome.BLOCKED, (
        "pods stay filtered"
    )
