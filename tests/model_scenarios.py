"""A deployed enforce scenario on a model backend, for the tests of the model's realism (issue 8)."""

from __future__ import annotations

from conformance.backends.model import ModelBackend
from conformance.gim.values import NetpolValues
from conformance.suite.scenario import Scenario, Timing
from conformance.suite.topology import Topology


def enforce_scenario(backend: ModelBackend, *extra_policies: dict, run_id: str = "run8") -> Scenario:
    """GIM namespace ``gim``, ``ingress-nginx`` allowed, ``not-allowed`` not; set up and deployed."""
    topology = Topology(run_id, "gim", ("ingress-nginx",), ("not-allowed",))
    values = NetpolValues(
        enabled=True, mode="enforce", allowed_namespaces=("ingress-nginx",), extra_policies=extra_policies
    )
    sc = Scenario.standalone(backend, topology, values, Timing())
    sc.setup()
    sc.deploy()
    return sc
