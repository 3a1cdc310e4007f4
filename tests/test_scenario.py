"""A scenario never takes over namespaces it did not create (the values may name real ones)."""

from __future__ import annotations

import pytest

from conformance.backends.base import ApiError
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
    active = {n for n, phase in backend.namespace_phases().items() if phase == "Active"}
    assert "gim-under-test" not in active and "not-allowed-1" not in active


def test_existing_gim_namespace_is_refused():
    backend = ModelBackend()
    backend.apply([_namespace("gim-under-test")])
    sc = _scenario(backend)
    with pytest.raises(pytest.fail.Exception, match="gim-under-test already exists"):
        sc.setup()
    assert "gim-under-test" in backend.state([]).namespaces
    assert backend.state(["gim-under-test"]).pods == []


# -- issue 8, defect 1: fixed names (--values) and asynchronous namespace deletion ----------------------
def test_fixed_names_work_test_after_test_while_the_previous_namespaces_terminate():
    """The release gate's names are fixed: the next test's setup meets the previous test's namespaces
    still Terminating (10-20 s on a real cluster). It waits them out instead of failing 'already exists'."""
    backend = ModelBackend()
    first = _scenario(backend)
    first.setup()
    first.deploy()
    assert first.check("enforce").ok
    first.teardown()
    assert backend.namespace_phases()["gim-under-test"] == "Terminating"
    second = _scenario(backend)
    second.setup()
    second.deploy()
    assert second.check("enforce").ok
    assert backend.namespace_phases()["gim-under-test"] == "Active"


def test_a_terminating_client_namespace_of_the_run_is_not_borrowed():
    """A client namespace the run created and is deleting cannot take a client pod (403 'is being
    terminated'): it is waited out and created again, and owned (deleted) by the scenario."""
    backend = ModelBackend()
    first = _scenario(backend)
    first.setup()
    first.teardown()
    second = _scenario(backend)
    second.setup()
    assert "not-allowed-1" not in second.fleet.borrowed
    second.teardown()
    assert backend.namespace_phases()["not-allowed-1"] == "Terminating"


def test_the_model_refuses_objects_in_a_terminating_namespace_as_the_api_server_does():
    backend = ModelBackend()
    backend.apply([_namespace("doomed")])
    backend.delete([_namespace("doomed")])
    with pytest.raises(
        ApiError,
        match="is forbidden: unable to create new content in namespace doomed because it is being terminated",
    ) as refused:
        backend.apply(
            [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "doomed"}}]
        )
    assert refused.value.status == 403
    backend.clock.sleep(20)  # 10-20 s later the namespace is gone
    assert "doomed" not in backend.namespace_phases()
