"""What a probe round costs on the model's clock, as on a live cluster: an exec costs its round trip
whatever it runs, the connects inside one exec run at once, a dropped connect costs its whole timeout,
and at most ``exec_inflight`` execs run at once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conformance.backends.model import ModelBackend
from conformance.backends.model_faults import Latencies
from conformance.netpol.probing import Outcome, Probe
from conformance.suite.topology import Topology

TIMEOUT = 2.0
EXEC = Latencies().exec_s


def _deployed(latencies: Latencies | None = None, **kwargs) -> tuple[ModelBackend, Topology]:
    """A fleet of 3 clients and GIM's stand-ins, Ready, with a deny-all in force in the GIM namespace."""
    backend = ModelBackend(latencies=latencies or Latencies(), **kwargs)
    topo = Topology("run1", "gim", ("a", "b"), ("c",))
    backend.apply(topo.objects())
    backend.wait_ready(topo.namespaces, 60)
    backend.apply(
        [
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "deny", "namespace": "gim"},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
            }
        ]
    )
    backend.clock.sleep(5)  # programmed
    return backend, topo


def _probes(backend: ModelBackend, topo: Topology, clients: list[str]) -> list[Probe]:
    state = backend.state(topo.namespaces)
    servers = [p for p in state.pods_in("gim") if p.ports]
    return [Probe(c, s.key, s.ip or "", cp.port) for c in clients for s in servers for cp in s.ports]


def _cost(backend: ModelBackend, run) -> float:
    start = backend.clock.now()
    run()
    return backend.clock.now() - start


def test_one_exec_per_client_pays_one_round_trip_and_one_timeout_per_pass():
    backend, topo = _deployed()
    probes = _probes(backend, topo, ["a/client", "b/client", "c/client"])
    assert len(probes) >= 15
    seen: list = []
    cost = _cost(backend, lambda: seen.extend(backend.probe_samples(probes, TIMEOUT, [False] * len(probes))))
    assert all(s[0].outcome is Outcome.BLOCKED and len(s) == 1 for s in seen)
    assert cost == pytest.approx(EXEC + TIMEOUT)
    confirmed = _cost(backend, lambda: backend.probe_samples(probes, TIMEOUT, [True] * len(probes)))
    assert confirmed == pytest.approx(EXEC + 2 * TIMEOUT), "the confirmations follow the first samples"


def test_one_exec_per_probe_pays_waves_of_timeouts():
    backend, topo = _deployed(probe_batch=False)
    probes = _probes(backend, topo, ["a/client", "b/client", "c/client"])  # more than 16
    waves = -(-len(probes) // 16)
    cost = _cost(backend, lambda: backend.probe_samples(probes, TIMEOUT, [False] * len(probes)))
    assert cost == pytest.approx(waves * (EXEC + TIMEOUT))


def test_an_exec_that_connects_costs_its_round_trip():
    backend, topo = _deployed()
    backend.delete([{"kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "gim"}}])
    backend.clock.sleep(5)
    probes = _probes(backend, topo, ["a/client"])
    cost = _cost(backend, lambda: backend.probe_samples(probes, TIMEOUT, [True] * len(probes)))
    assert cost == pytest.approx(EXEC)


def test_the_api_server_streams_a_bounded_number_of_execs_at_once():
    clients = [f"n{i}/client" for i in range(4)]
    backend = ModelBackend(latencies=replace(Latencies(), exec_inflight=2), probe_workers=16)
    topo = Topology("run1", "gim", tuple(f"n{i}" for i in range(4)), ())
    backend.apply(topo.objects())
    backend.wait_ready(topo.namespaces, 60)
    probes = _probes(backend, topo, clients)
    cost = _cost(backend, lambda: backend.probe_samples(probes, TIMEOUT, [False] * len(probes)))
    assert cost == pytest.approx(2 * EXEC), "4 execs, 2 at a time"
