"""The modes: disabled, dryrun, enforce, and switching between them as ``helm upgrade`` does.

Every check compares three things: the documented contract for the values, the simulator's verdict
on the objects actually applied, and what the probes observe. Test names carry the mode, so
``pytest -k enforce`` runs the enforce-mode tests and ``-k dryrun`` the dryrun ones.
"""

from __future__ import annotations

import pytest

from conformance.gim.contract import DRYRUN_BLOCKS_NOTHING, EXTRA_POLICIES, Contract
from conformance.gim.examples import smtp_egress_policy
from conformance.netpol.model import policy_name


@pytest.mark.disabled
def test_disabled_deploys_no_policy_and_blocks_nothing(scenario):
    sc = scenario("disabled")
    assert sc.state().policies_in(sc.topology.gim_namespace) == [], (
        "networkPolicy.enabled=false rendered policies"
    )
    report = sc.assert_conforms("disabled")
    assert all(r.flow.expected.allowed for r in report.results)


@pytest.mark.dryrun
def test_dryrun_blocks_nothing_and_lists_what_the_switch_would_block(scenario):
    sc = scenario("dryrun")
    policies = sc.state().policies_in(sc.topology.gim_namespace)
    assert policies, "dryrun must deploy the policies (with a safety net), not nothing"
    report = sc.assert_conforms("dryrun")
    assert report.results and all(r.flow.expected.allowed for r in report.results)
    assert {r.flow.promise.promise for r in report.results if r.flow.promise} == {DRYRUN_BLOCKS_NOTHING}

    # What the documentation asks users to find out by hand before switching to enforce: exactly the
    # flows that the contract of the same values under enforce blocks.
    would_block = sc.would_block_under_enforce()
    enforce = Contract(sc.with_values(mode="enforce"), sc.topology.gim_namespace, sc.state())
    pod_flows = [f for f in sc.flows() if f.probe.via == "pod"]
    blocked_by_contract = {
        f.probe for f in pod_flows if not enforce.expect(f.source, f.destination, f.destination_port).allowed
    }
    assert {f.probe for f in would_block} == blocked_by_contract
    assert {f.source.namespace for f in would_block} >= set(sc.topology.other_namespaces)
    for f in would_block:
        sc.notes.append(f"dryrun: enforce would block {f.probe.client} -> {f.probe.target}:{f.probe.port}")


@pytest.mark.dryrun
def test_dryrun_with_egress_extra_policy_blocks_nothing(scenario):
    sc = scenario("dryrun", extra_policies=(smtp_egress_policy(),), own_values=True)
    assert "allow-external-smtp" in {policy_name(p) for p in sc.state().policies}
    # GIM-to-GIM and DNS egress would be cut by the extra policy; the safety net must keep them open.
    report = sc.assert_conforms("dryrun + egress extraPolicy", include_dns=True)
    dns = sc.dns_results(report.results)  # skips, saying why, on a cluster without a DNS Service
    assert dns and all(r.flow.expected.allowed for r in dns)


@pytest.mark.enforce
def test_enforce_blocks_exactly_the_namespaces_not_listed(scenario):
    sc = scenario("enforce")
    report = sc.assert_conforms("enforce")
    allowed_sources = {sc.topology.gim_namespace, *sc.topology.allowed_namespaces}
    by_namespace = [r for r in report.results if r.flow.promise.promise != EXTRA_POLICIES]
    assert by_namespace, "every flow was governed by extraPolicies: nothing left to test"
    for r in by_namespace:
        assert r.flow.expected.allowed == (r.flow.source.namespace in allowed_sources), r.flow.expected.reason


@pytest.mark.switch
def test_helm_upgrade_switches_modes_both_ways(scenario):
    """dryrun -> enforce -> dryrun, applying the new set and deleting what it no longer renders."""
    sc = scenario("dryrun", switches_modes=True)
    before = {policy_name(p) for p in sc.state().policies_in(sc.topology.gim_namespace)}
    first = sc.assert_conforms("switch: dryrun")
    assert all(r.flow.expected.allowed for r in first.results)

    api_s = sc.deploy(sc.with_values(mode="enforce"))
    after = {policy_name(p) for p in sc.state().policies_in(sc.topology.gim_namespace)}
    assert after < before, f"the switch to enforce must remove the safety net: {sorted(before - after)}"
    to_enforce = sc.assert_conforms("switch: dryrun -> enforce")
    assert any(not r.flow.expected.allowed for r in to_enforce.results)
    sc.notes.append(f"switch to enforce: applied in {api_s:.2f}s, held after {to_enforce.converge_s:.2f}s")

    api_s = sc.deploy(sc.with_values(mode="dryrun"))
    back = sc.assert_conforms("switch: enforce -> dryrun")
    assert all(r.flow.expected.allowed for r in back.results)
    sc.notes.append(f"switch back to dryrun: applied in {api_s:.2f}s, held after {back.converge_s:.2f}s")


@pytest.mark.switch
def test_helm_upgrade_reports_whether_established_connections_survive_the_switch(scenario, netpol_backend):
    """Implementation-defined (Calico keeps established connections): reported, not asserted."""
    sc = scenario("dryrun", switches_modes=True)
    other = sc.topology.other_namespaces[0]
    flows = sc.flows(clients=[sc.topology.client_key(other)])
    flow = next(f for f in flows if f.probe.via == "pod" and f.probe.protocol == "TCP")
    held = netpol_backend.hold_connection(flow.probe, sc.timing.probe_timeout_s)
    if held is None:
        pytest.skip(
            f"the {netpol_backend.name} backend cannot hold connections (no connection tracking): "
            "run on a live cluster to see this"
        )
    try:
        sc.deploy(sc.with_values(mode="enforce"))
        sc.assert_conforms("switch with a connection held: new connections from the namespace not listed")
        survived = held.still_alive()
    finally:
        held.close()
    sc.notes.append(
        f"an established connection {flow.probe.client} -> {flow.probe.target}:{flow.probe.port} "
        f"{'SURVIVED' if survived else 'was CUT by'} the switch to enforce"
    )
