"""One test's world on the probe fleet: the values it deploys, the namespaces it adds, its checks.

Tests only talk to a Scenario; the Scenario only talks to the Backend interface, so the same test
runs on the model backend and on a live cluster.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pytest

from conformance.backends.base import Backend
from conformance.gim.contract import Contract
from conformance.gim.render import render
from conformance.gim.values import NetpolValues
from conformance.netpol.model import Cluster, K8sObject, Service, policy_key
from conformance.netpol.simulator import Simulator
from conformance.probes.agnhost import RUN_LABEL
from conformance.suite.cni_features import CniFeatureReport, feature_hints
from conformance.suite.cross_node import coverage
from conformance.suite.dns import ClusterDns, find_cluster_dns
from conformance.suite.fleet import Fleet, FleetBroken
from conformance.suite.flows import Flow, plan_flows, without_safety_net
from conformance.suite.observations import fingerprint
from conformance.suite.topology import Topology
from conformance.suite.verdicts import CheckReport, FlowResult, check

_scratch_serial = itertools.count(1)


@dataclass(frozen=True)
class Timing:
    # A dropped packet costs the whole timeout, and a block must be seen twice. Upstream's probes use
    # `agnhost connect --timeout=1s` and re-probe; but Linux sends its first SYN retransmission after
    # 1 s (initial RTO, RFC 6298 2.1), so 1 s reads one lost SYN on an allowed path as a block. 2 s
    # leaves room for that retransmission; an allowed flow is probed again until the deadline anyway.
    probe_timeout_s: float = 2.0
    converge_timeout_s: float = 30.0
    ready_timeout_s: float = 180.0
    retry_interval_s: float = 1.0


@dataclass
class Scenario:
    """One test on the fleet: the values it deploys, the checks it makes, what it adds and removes."""

    backend: Backend
    fleet: Fleet
    topology: Topology  # the fleet as this test sees it (which client namespaces the values allow)
    values: NetpolValues
    timing: Timing = field(default_factory=Timing)
    manifests_policies: tuple[K8sObject, ...] | None = None  # the chart's own policies (--manifests)
    reports: list[CheckReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    applied: list[K8sObject] = field(default_factory=list)
    cni: CniFeatureReport | None = None  # the session's CNI feature canaries, named in mismatch explanations
    _dns: ClusterDns | None = None
    added: list[str] = field(default_factory=list)  # client namespaces this test created itself
    last_apply_s: float = 0.0  # what the last deploy cost, reported with the next check
    owns_fleet: bool = False  # the fleet is this scenario's alone: set up and deleted with it
    deploys: int = 0  # after a second deploy, checks observe the transition themselves (nothing shared)

    @classmethod
    def standalone(
        cls,
        backend: Backend,
        topology: Topology,
        values: NetpolValues,
        timing: Timing | None = None,
        manifests_policies: tuple[K8sObject, ...] | None = None,
    ) -> Scenario:
        """A scenario on a fleet of its own (``--fleet test``, ``gim-netpol plan``, the suite's tests)."""
        timing = timing or Timing()
        fleet = Fleet(backend, topology, timing.ready_timeout_s)
        return cls(backend, fleet, topology, values, timing, manifests_policies, owns_fleet=True)

    # -- lifecycle -----------------------------------------------------------------------------------
    def setup(self) -> None:
        """Create the scenario's own fleet (a shared fleet is set up once by the session)."""
        if self.owns_fleet:
            try:
                self.fleet.setup()
            except FleetBroken as e:
                raise pytest.fail.Exception(str(e), pytrace=False) from None

    def teardown(self) -> None:
        """Return the fleet to its known state: the test's policies deleted (with any other policy of
        the run in the fleet's namespaces), and the namespaces it created deleted; a fleet of its own
        is deleted whole. Deleted namespaces are not waited for: their names are this scenario's alone
        (``scratch_name``), so nothing needs them gone, and they terminate while the next test runs."""
        self.fleet.reset()  # the test's policies carry the run label: the reset deletes them
        self.applied = []
        if self.added:
            self.backend.delete(self.topology.namespace_objects(self.added))
            self.added = []
        if self.owns_fleet:
            self.fleet.teardown()

    def scratch_name(self, role: str) -> str:
        """A namespace name that no other scenario of this process uses (the fleet's GIM namespace
        already tells runs and xdist workers apart)."""
        return f"{role}-{next(_scratch_serial)}-{self.topology.gim_namespace}"[:63].rstrip("-")

    def add_client_namespace(self, namespace: str, *, allowed: bool) -> None:
        """Create one more client namespace (with its client pod) now, after the policies."""
        t = self.topology
        if allowed:
            self.topology = replace(t, allowed_namespaces=(*t.allowed_namespaces, namespace))
        else:
            self.topology = replace(t, other_namespaces=(*t.other_namespaces, namespace))
        if namespace not in self.added:
            self.added.append(namespace)
        self.backend.apply(
            self.topology.namespace_objects([namespace]) + self.topology.client_objects(namespace)
        )
        self.backend.wait_ready([namespace], self.timing.ready_timeout_s)

    def remove_client_namespace(self, namespace: str) -> None:
        """Delete a client namespace and wait until it is gone (so that it can be created again)."""
        t = self.topology
        self.topology = replace(
            t,
            allowed_namespaces=tuple(n for n in t.allowed_namespaces if n != namespace),
            other_namespaces=tuple(n for n in t.other_namespaces if n != namespace),
        )
        objects = self.topology.namespace_objects([namespace])
        self.backend.delete(objects)
        self.backend.wait_gone(objects, self.timing.ready_timeout_s)
        if namespace in self.added:
            self.added.remove(namespace)

    # -- policies ------------------------------------------------------------------------------------
    def policies_for(self, values: NetpolValues) -> list[K8sObject]:
        """What a ``helm install`` with ``values`` puts in the GIM namespace: the chart's own output
        when the run was given ``--manifests``, else the reference rendering."""
        if self.manifests_policies is not None:
            policies = [dict(p) for p in self.manifests_policies]
        else:
            policies = render(values, self.topology.gim_namespace)
        return [self._labelled(p) for p in policies]

    def _labelled(self, policy: K8sObject) -> K8sObject:
        """The policy with the run label added (labels do not change what a NetworkPolicy does)."""
        meta = dict(policy.get("metadata") or {})
        meta["labels"] = {**(meta.get("labels") or {}), RUN_LABEL: self.topology.run_id}
        return {**policy, "metadata": meta}

    def deploy(self, values: NetpolValues | None = None) -> float:
        """Install or upgrade to ``values`` as ``helm upgrade`` would: apply the new set, then delete the
        policies it no longer renders. Returns the seconds the API took."""
        start = self.backend.clock.now()
        if values is not None:
            self.values = values
        policies = self.policies_for(self.values)
        wanted = {policy_key(p) for p in policies}
        stale = [p for p in self.applied if policy_key(p) not in wanted]
        if policies:
            self.backend.apply(policies)
        if stale:
            self.backend.delete(stale)
        self.applied = policies
        self.deploys += 1
        self.last_apply_s = self.backend.clock.now() - start
        return self.last_apply_s

    def with_values(self, **changes) -> NetpolValues:
        return replace(self.values, **changes)

    # -- observation ---------------------------------------------------------------------------------
    def cluster_dns(self) -> ClusterDns:
        """The cluster DNS as the GIM client pod sees it (looked up once per scenario)."""
        if self._dns is None:
            self._dns = find_cluster_dns(self.backend, self.topology.client_key(self.topology.gim_namespace))
        return self._dns

    def dns_results(self, results: Sequence[FlowResult]) -> list[FlowResult]:
        """The results of ``results`` that probed the cluster DNS; skips the test, with the reason,
        when the cluster has no DNS Service to probe."""
        dns = self.cluster_dns()
        if not dns.found:
            self.notes.append(f"DNS: {dns.not_checked()}")
            pytest.skip(dns.not_checked())
        return [r for r in results if r.flow.destination.namespace == dns.namespace]

    def state(self) -> Cluster:
        dns = self._dns.namespace if self._dns is not None and self._dns.namespace else None
        return self.backend.state([*self.topology.namespaces, *([dns] if dns else [])])

    def flows(self, *, clients: Sequence[str] | None = None, include_dns: bool = False) -> list[Flow]:
        return self._planned(clients, include_dns)[1]

    def _planned(self, clients: Sequence[str] | None, include_dns: bool) -> tuple[Cluster, list[Flow]]:
        """The cluster as read now and the flows to probe in it."""
        dns = self.cluster_dns() if include_dns else None  # before state(): it reads the DNS namespace
        state = self.state()
        contract = Contract(self.values, self.topology.gim_namespace, state)
        extra: list[tuple[Service, list]] = []
        if dns is not None and dns.found and dns.service is not None:
            extra = [(dns.service, list(dns.endpoints))]
        return state, plan_flows(
            state,
            clients if clients is not None else self.topology.client_keys,
            self.topology.gim_namespace,
            contract=contract,
            extra_targets=extra,
        )

    def check(
        self, label: str, *, clients: Sequence[str] | None = None, include_dns: bool = False
    ) -> CheckReport:
        try:
            ready_s = self.fleet.confirm_ready()
        except FleetBroken as e:
            raise pytest.fail.Exception(str(e), pytrace=False) from None
        state, flows = self._planned(clients, include_dns)
        # A check right after the test's one deploy may share an observation made under the same objects;
        # one after a redeploy (a switch, a namespace listed later) observes its transition itself.
        key = fingerprint(state, flows) if self.deploys <= 1 else None
        report = self.fleet.shared.reuse(key, flows, label) if key else None
        if report is None:
            report = check(
                self.backend,
                flows,
                label=label,
                probe_timeout_s=self.timing.probe_timeout_s,
                deadline_s=self.timing.converge_timeout_s,
                retry_interval_s=self.timing.retry_interval_s,
            )
            if key:
                self.fleet.shared.keep(key, report)
        # Where the pods ran, against the nodes that could run them now: no flow across nodes fails the check.
        report.nodes = coverage(self.backend, flows, self.topology.run_id)
        if report.mismatches:
            report.hints = feature_hints(state.policies, self.cni)  # the policies the flows were planned on
        report.apply_s, report.ready_s = self.last_apply_s, ready_s
        self.last_apply_s = 0.0
        self.reports.append(report)
        return report

    def assert_conforms(self, label: str, **kwargs) -> CheckReport:
        """Check, and fail with the tables, the mismatches and their repro commands if anything disagrees."""
        report = self.check(label, **kwargs)
        if not report.ok:
            pytest.fail(report.explain(), pytrace=False)
        return report

    def would_block_under_enforce(self) -> list[Flow]:
        """Under dryrun: the flows that enforce would block (the same policies without the safety net)."""
        state = self.state()
        stripped = Cluster(state.namespaces, state.pods, state.services, without_safety_net(state.policies))
        flows = plan_flows(
            stripped,
            self.topology.client_keys,
            self.topology.gim_namespace,
            contract=None,
            simulator=Simulator(stripped),
            via=("pod",),
        )
        return [f for f in flows if not f.expected.allowed]
