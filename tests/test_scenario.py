"""A scenario never takes over namespaces it did not create (the values may name real ones)."""

from __future__ import annotations

import pytest

from conformance.backends.model import ModelBackend
from conformance.gim.values import NetpolValues
from conformance.suite.scenario import Scenario
from conformance.suite.topology import Topology

VALUES = NetpolValues(enabled=True, mode="enforce", allowed_namespaces=("ingress-nginx",))


def _namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"team": "edge"}}}


def _scenario(backend: ModelBackend) -> Scenario:
    topology = Topology("run1", "gim-under-test", ("ingress-nginx",), ("not-allowed-1",))
    return Scenario.standalone(backend, topology, VALUES)


def test_existing_client_namespace_is_borrowed_not_deleted():
    backend = ModelBackend()
    backend.apply([_namespace("ingress-nginx")])
    sc = _scenario(backend)
    sc.setup()
    sc.deploy()
    assert sc.check("enforce").ok
    assert backend.state(["ingress-nginx"]).namespaces["ingress-nginx"].labels["team"] == "edge"
    sc.teardown()
    left = backend.state(["ingress-nginx", "gim-under-test", "not-allowed-1"])
    assert "ingress-nginx" in left.namespaces, "a namespace the scenario did not create was deleted"
    assert left.pods == [], "the client pod put in the borrowed namespace outlived the scenario"
    assert "gim-under-test" not in left.namespaces and "not-allowed-1" not in left.namespaces


def test_existing_gim_namespace_is_refused():
    backend = ModelBackend()
    backend.apply([_namespace("gim-under-test")])
    sc = _scenario(backend)
    with pytest.raises(pytest.fail.Exception, match="gim-under-test already exists"):
        sc.setup()
    assert "gim-under-test" in backend.state([]).namespaces
    assert backend.state(["gim-under-test"]).pods == []
