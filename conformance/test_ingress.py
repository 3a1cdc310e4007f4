"""Ingress into GIM under enforce: who reaches GIM's pods, by pod IP and by Service IP, on every port."""

from __future__ import annotations

import pytest

from conformance.gim.contract import EXTRA_POLICIES, NOT_LISTED_BLOCKED, SAME_NAMESPACE, namespace_allowed
from conformance.gim.examples import SMTP_PORT, SMTP_RELAY, smtp_egress_policy
from conformance.netpol.simulator import Simulator

pytestmark = pytest.mark.enforce


def _from(report, namespaces):
    return [r for r in report.results if r.flow.source.namespace in set(namespaces)]


def test_enforce_allowed_namespaces_reach_every_gim_pod_on_every_port(scenario):
    sc = scenario("enforce")
    report = sc.assert_conforms("enforce: allowed namespaces")
    state = sc.state()
    for ns in sc.topology.allowed_namespaces:
        results = _from(report, [ns])
        assert results, f"no probe from {ns}"
        assert all(r.flow.expected.allowed for r in results)
        assert {r.flow.promise.promise for r in results} == {namespace_allowed(ns)}
        # every declared port of every GIM pod, by pod IP and by Service IP
        probed = {(r.flow.destination.key, r.flow.destination_port, r.flow.probe.via) for r in results}
        for pod in state.pods_in(sc.topology.gim_namespace):
            for cp in pod.ports:
                assert (pod.key, cp.port, "pod") in probed
                if any(s.selects(pod) for s in state.services):
                    assert (pod.key, cp.port, "service") in probed


def test_enforce_namespace_not_listed_is_blocked(scenario):
    sc = scenario("enforce")
    report = sc.assert_conforms("enforce: namespace not listed")
    # extraPolicies may lawfully open some ports to everyone: those flows keep their own promise.
    results = [
        r for r in _from(report, sc.topology.other_namespaces) if r.flow.promise.promise != EXTRA_POLICIES
    ]
    assert results and not any(r.flow.expected.allowed for r in results)
    assert {r.flow.promise.promise for r in results} == {NOT_LISTED_BLOCKED}


def test_enforce_gim_pods_reach_each_other(scenario):
    sc = scenario("enforce")
    report = sc.assert_conforms("enforce: GIM to GIM")
    results = _from(report, [sc.topology.gim_namespace])
    assert results, "no probe from the GIM namespace"
    results = [r for r in results if r.flow.promise.promise != EXTRA_POLICIES]
    if not results:
        pytest.skip("the values' extraPolicies restrict all egress of GIM pods: no GIM-to-GIM promise left")
    assert all(r.flow.expected.allowed for r in results)
    assert {r.flow.promise.promise for r in results} == {SAME_NAMESPACE}


def test_enforce_empty_allowed_namespaces_only_gim_reaches_gim(scenario):
    sc = scenario("enforce", own_values=True)
    sc.deploy(sc.with_values(allowed_namespaces=()))
    report = sc.assert_conforms("enforce: allowedNamespaces []")
    for r in report.results:
        assert r.flow.expected.allowed == (r.flow.source.namespace == sc.topology.gim_namespace)


def test_enforce_namespace_created_after_the_policies_is_allowed(scenario):
    """A listed namespace that did not exist at deploy time (or was deleted and recreated) is allowed
    without redeploying: the rule matches the namespace's name label, not a snapshot of namespaces."""
    sc = scenario("enforce", own_values=True)
    late = sc.scratch_name("late")
    sc.deploy(sc.with_values(allowed_namespaces=(*sc.values.allowed_namespaces, late)))
    sc.add_client_namespace(late, allowed=True)
    report = sc.assert_conforms("enforce: namespace created after the policies")
    assert all(r.flow.expected.allowed for r in _from(report, [late]))

    # Deleted only once its policy is seen to hold: the same name must then be let in again. Waiting out
    # its termination (10-20 s) is the point: the recreated namespace is a new object of the same name.
    sc.remove_client_namespace(late)
    sc.add_client_namespace(late, allowed=True)
    report = sc.assert_conforms("enforce: namespace deleted and recreated")
    assert _from(report, [late]) and all(r.flow.expected.allowed for r in _from(report, [late]))


def test_enforce_troubleshooting_ingress_controller_missing_then_added(scenario):
    """The documentation's 'Ingress controller unable to reach GIM': its namespace must be listed."""
    sc = scenario("enforce", own_values=True)
    controller_ns = sc.topology.allowed_namespaces[0]
    listed = sc.values.allowed_namespaces
    sc.deploy(sc.with_values(allowed_namespaces=tuple(n for n in listed if n != controller_ns)))
    missing = sc.assert_conforms("enforce: ingress controller namespace missing")
    assert _from(missing, [controller_ns]) and not any(
        r.flow.expected.allowed for r in _from(missing, [controller_ns])
    )

    sc.deploy(sc.with_values(allowed_namespaces=listed))
    added = sc.assert_conforms("enforce: ingress controller namespace added")
    assert all(r.flow.expected.allowed for r in _from(added, [controller_ns]))


def test_enforce_extra_policy_egress_example_cuts_all_other_gim_egress(scenario):
    """The documentation's SMTP egress example selects every GIM pod for Egress: from then on, their
    only egress is TCP 587 to 10.0.0.0/24. DNS and GIM-to-GIM are blocked too; ingress is unchanged."""
    sc = scenario("enforce", extra_policies=(smtp_egress_policy(),), own_values=True)
    report = sc.assert_conforms("enforce + SMTP egress extraPolicy", include_dns=True)
    gim = sc.topology.gim_namespace
    from_gim = _from(report, [gim])
    assert from_gim and not any(r.flow.expected.allowed for r in from_gim)
    assert {r.flow.promise.promise for r in from_gim} == {EXTRA_POLICIES}
    for ns in sc.topology.allowed_namespaces:
        assert all(
            r.flow.expected.allowed for r in _from(report, [ns]) if r.flow.destination.namespace == gim
        )

    state = sc.state()
    worker = state.pod(sc.topology.client_key(gim))
    smtp = Simulator(state).verdict(worker, SMTP_RELAY, SMTP_PORT)
    assert smtp.egress.allowed, smtp.reason
    dns = sc.dns_results(from_gim)  # skips, saying why, on a cluster without a DNS Service
    assert dns, f"the cluster DNS {sc.cluster_dns().service} was not probed from GIM"
    sc.notes.append("enforce + SMTP example: GIM pods lose DNS and GIM-to-GIM egress")
