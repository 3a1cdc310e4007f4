"""One test's world: its namespaces, stand-in workloads and clients, the policies it deploys, its checks.

Tests only talk to a Scenario; the Scenario only talks to the Backend interface, so the same test
runs on the model backend and on a live cluster.
"""

from __future__ import annotations

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
from conformance.suite.dns import ClusterDns, find_cluster_dns
from conformance.suite.flows import Flow, plan_flows, without_safety_net
from conformance.suite.topology import Topology
from conformance.suite.verdicts import CheckReport, FlowResult, check


@dataclass(frozen=True)
class Timing:
    probe_timeout_s: float = 2.0
    converge_timeout_s: float = 30.0
    ready_timeout_s: float = 180.0
    retry_interval_s: float = 1.0


@dataclass
class Scenario:
    backend: Backend
    topology: Topology
    values: NetpolValues
    timing: Timing = field(default_factory=Timing)
    manifests_policies: tuple[K8sObject, ...] | None = None  # the chart's own policies (--manifests)
    reports: list[CheckReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    applied: list[K8sObject] = field(default_factory=list)
    borrowed: tuple[str, ...] = ()  # client namespaces that existed before the scenario
    created: list[K8sObject] = field(default_factory=list)
    cni: CniFeatureReport | None = None  # the session's CNI feature canaries, named in mismatch explanations
    _dns: ClusterDns | None = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def setup(self) -> None:
        """Create the namespaces, stand-ins and clients. A client namespace that already exists (the
        values name real namespaces) gets only its client pod; a GIM namespace that already exists is
        refused: the suite deploys policies there and deletes it at the end."""
        present = self._wait_out_terminating()
        gim = self.topology.gim_namespace
        if gim in present:
            pytest.fail(
                f"namespace {gim} already exists in this cluster: the suite deploys its own stand-ins and "
                "policies there and deletes it afterwards. Pass --gim-namespace with an unused name, run "
                "`gim-netpol cleanup` if a crashed run left it, or check a live GIM with `gim-netpol verify`",
                pytrace=False,
            )
        self.borrowed = tuple(ns for ns in self.topology.client_namespaces if ns in present)
        objects = [o for o in self.topology.objects() if not self._is_borrowed_namespace(o)]
        self.created = [o for o in objects if o["kind"] != "Namespace"]
        self.backend.apply(objects)
        self.backend.wait_ready(self.topology.namespaces, self.timing.ready_timeout_s)

    def _wait_out_terminating(self) -> dict[str, str]:
        """The cluster's namespaces, once those of the topology still being deleted are gone.

        Namespace deletion is asynchronous (Terminating for 10-20 s on a real cluster) and a
        terminating namespace takes no new objects (403 "is being terminated"): a previous test's GIM
        namespace, or a client namespace this run created, is waited out, never refused nor borrowed.
        """
        phases = self.backend.namespace_phases()
        terminating = [ns for ns in self.topology.namespaces if phases.get(ns) == "Terminating"]
        if terminating:
            self.backend.wait_gone(self.topology.namespace_objects(terminating), self.timing.ready_timeout_s)
            phases = self.backend.namespace_phases()
        return phases

    def _is_borrowed_namespace(self, obj: K8sObject) -> bool:
        return obj["kind"] == "Namespace" and obj["metadata"]["name"] in self.borrowed

    def teardown(self) -> None:
        """Delete what the scenario created: its namespaces, and its pods in namespaces it borrowed."""
        in_borrowed = [o for o in self.created if o["metadata"].get("namespace") in self.borrowed]
        if in_borrowed:
            self.backend.delete(in_borrowed)
        self.backend.delete(
            [o for o in self.topology.namespace_objects() if not self._is_borrowed_namespace(o)]
        )

    def add_client_namespace(self, namespace: str, *, allowed: bool) -> None:
        """Create one more client namespace (with its client pod) now, after the policies."""
        t = self.topology
        if allowed:
            self.topology = replace(t, allowed_namespaces=(*t.allowed_namespaces, namespace))
        else:
            self.topology = replace(t, other_namespaces=(*t.other_namespaces, namespace))
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
        clock = self.backend.clock
        start = clock.now()
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
        return clock.now() - start

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
        if include_dns:
            self.cluster_dns()
        state = self.state()
        contract = Contract(self.values, self.topology.gim_namespace, state)
        extra: list[tuple[Service, list]] = []
        dns = self.cluster_dns() if include_dns else None
        if dns is not None and dns.found and dns.service is not None:
            extra = [(dns.service, list(dns.endpoints))]
        return plan_flows(
            state,
            clients if clients is not None else self.topology.client_keys,
            self.topology.gim_namespace,
            contract=contract,
            extra_targets=extra,
        )

    def check(
        self, label: str, *, clients: Sequence[str] | None = None, include_dns: bool = False
    ) -> CheckReport:
        report = check(
            self.backend,
            self.flows(clients=clients, include_dns=include_dns),
            label=label,
            probe_timeout_s=self.timing.probe_timeout_s,
            deadline_s=self.timing.converge_timeout_s,
            retry_interval_s=self.timing.retry_interval_s,
        )
        if report.mismatches:
            report.hints = feature_hints(self.state().policies, self.cni)
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
