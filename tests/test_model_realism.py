"""Issue 8, item 9: the model backend behaves like a cluster, on a virtual clock.

Latencies (realistic by default): namespaces Terminating 10-20 s, pods Pending then Ready after 2-5 s,
a policy change enforced 1-2 s after it is made, a dropped probe costing its whole timeout. Faults on
demand: the API down for a window, a kind not served.
"""

from __future__ import annotations

import pytest

from conformance.api_errors import TransientApiError
from conformance.backends.base import ApiError
from conformance.backends.model import ModelBackend
from conformance.backends.model_faults import parse_faults
from conformance.errors import UserError
from conformance.netpol.model import ContainerPort
from conformance.netpol.probing import Outcome, Probe
from conformance.probes import agnhost
from tests.test_suite_plugin import run_suite

DENY_ALL = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny-all", "namespace": "app"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
}


def _objects() -> list[dict]:
    ports = (ContainerPort(8080, "TCP", "http"),)
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cli"}},
        agnhost.server_pod("app", "web", {"app": "web"}, ports, run_id="t"),
        agnhost.client_pod("cli", "client", {}, run_id="t"),
    ]


def _probe(backend: ModelBackend) -> Probe:
    ip = backend.state(["app"]).pod("app/web").ip or ""
    return Probe("cli/client", "app/web", ip, 8080)


def test_pods_are_pending_then_ready_and_probes_meanwhile_fail_as_on_a_cluster():
    backend = ModelBackend()
    backend.apply(_objects())
    [seen] = backend.probe([_probe(backend)], 2.0)
    assert seen.outcome is Outcome.ERROR and "container not found" in seen.detail
    start = backend.clock.now()
    backend.wait_ready(["app", "cli"], 60)
    assert 2.0 <= backend.clock.now() - start <= 6.0
    [seen] = backend.probe([_probe(backend)], 2.0)
    assert seen.outcome is Outcome.CONNECTED


def test_a_server_that_is_not_ready_refuses():
    backend = ModelBackend()
    backend.apply(_objects()[:2] + _objects()[3:])
    backend.wait_ready(["cli"], 60)
    backend.apply([_objects()[2]])
    [seen] = backend.probe([_probe(backend)], 2.0)
    assert seen.outcome is Outcome.REFUSED


def test_a_policy_takes_effect_after_the_cnis_programming_delay():
    backend = ModelBackend()
    backend.apply(_objects())
    backend.wait_ready(["app", "cli"], 60)
    backend.apply([DENY_ALL])
    [before] = backend.probe([_probe(backend)], 2.0)
    assert before.outcome is Outcome.CONNECTED, "until the CNI has programmed it, probes see the old verdict"
    backend.clock.sleep(2.0)
    [after] = backend.probe([_probe(backend)], 2.0)
    assert after.outcome is Outcome.BLOCKED
    backend.delete([DENY_ALL])
    [still] = backend.probe([_probe(backend)], 2.0)
    assert still.outcome is Outcome.BLOCKED, "a deleted policy also goes after the delay"


def test_a_deleted_namespace_terminates_for_10_to_20_seconds():
    backend = ModelBackend()
    backend.apply(_objects())
    backend.delete([_objects()[0]])
    assert backend.namespace_phases()["app"] == "Terminating"
    assert backend.state(["app"]).pods == [], "its pods go at once"
    backend.clock.sleep(9.9)
    assert backend.namespace_phases()["app"] == "Terminating"
    backend.clock.sleep(10.2)
    assert "app" not in backend.namespace_phases()


def test_the_api_refuses_connections_during_its_outage_window():
    backend = ModelBackend(faults=parse_faults("api-down@10+30"))
    backend.apply(_objects()[:1])
    backend.clock.sleep(10)
    with pytest.raises(TransientApiError, match="connection refused"):
        backend.state([])
    backend.clock.sleep(30)
    assert "app" in backend.state([]).namespaces


def test_a_kind_not_served_answers_404():
    backend = ModelBackend(faults=parse_faults("not-served=PodMonitor"))
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "m"}}
    with pytest.raises(ApiError) as missing:
        backend.apply([monitor])
    assert missing.value.status == 404
    assert not backend.cluster.faults.serves("PodMonitor") and backend.cluster.faults.serves("Pod")


def test_bad_faults_are_one_line_naming_the_option():
    with pytest.raises(UserError, match="--model-faults: unknown fault 'api-down@soon'"):
        parse_faults("no-dns,api-down@soon")
    run = run_suite("--backend", "model", "--model-faults", "dns-off")
    assert run.returncode == 2 and "--model-faults: unknown fault 'dns-off'" in run.stderr
    run = run_suite("--backend", "model", "--model-cni", "flannel")
    assert run.returncode == 2 and "--model-cni: unknown CNI profile 'flannel'" in run.stderr


def test_figures_are_the_same_every_run():
    def simulated() -> str:
        run = run_suite("--backend", "model", "-q", "-k", "switch", timeout=120)
        assert run.returncode == 0, run.output
        return "\n".join(
            line for line in run.stdout.splitlines() if "held after" in line or "simulated live time" in line
        )

    first = simulated()
    assert "simulated live time: " in first
    assert simulated() == first
