"""The documented contract: what the values promise, written from the documentation alone.

It does not look at the rendered default policies: it states, flow by flow, what the product
documentation says must happen, and names the promise. ``extraPolicies`` are "rendered alongside, as
given", so the flows they govern are decided by NetworkPolicy semantics applied to those policies only.
Comparing this with the simulator's verdict on the policies actually applied is how the suite catches
a chart (or a renderer) that does not implement its own values.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.gim.values import NetpolValues
from conformance.netpol.model import Cluster, Pod, policy_namespace
from conformance.netpol.simulator import Simulator

DISABLED_BLOCKS_NOTHING = "disabled: nothing is blocked"
DRYRUN_BLOCKS_NOTHING = "dryrun blocks nothing"
SAME_NAMESPACE = "GIM pods reach each other"
NOT_LISTED_BLOCKED = "namespaces not listed are blocked"
EXTRA_POLICIES = "extraPolicies are applied as given"
OUTSIDE_GIM = "traffic that does not involve GIM is not affected"
NOT_GIMS_POLICIES = "policies outside the GIM namespace (not the chart's) decide"


def namespace_allowed(namespace: str) -> str:
    return f"namespace {namespace} is allowed"


@dataclass(frozen=True, slots=True)
class Promise:
    allowed: bool
    promise: str


class Contract:
    """The expected verdict of every flow, as the documentation states it for ``values``."""

    def __init__(self, values: NetpolValues, gim_namespace: str, cluster: Cluster) -> None:
        self.values = values
        self.gim_namespace = gim_namespace
        extra_policies = [
            {**p, "metadata": {**(p.get("metadata") or {}), "namespace": gim_namespace}}
            for p in values.extra_policies
        ]
        self._extras = Simulator(Cluster(cluster.namespaces, cluster.pods, cluster.services, extra_policies))
        # Policies the chart does not own (e.g. a default-deny in kube-system) apply whatever the values say.
        outside = [p for p in cluster.policies if policy_namespace(p) != gim_namespace]
        self._outside = Simulator(Cluster(cluster.namespaces, cluster.pods, cluster.services, outside))

    def expect(self, src: Pod | str, dst: Pod | str, port: int, protocol: str = "TCP") -> Promise:
        values = self.values
        if not self._outside.verdict(src, dst, port, protocol).allowed:
            return Promise(False, NOT_GIMS_POLICIES)
        if not values.enabled:
            return Promise(True, DISABLED_BLOCKS_NOTHING)
        if values.mode != "enforce":
            return Promise(True, DRYRUN_BLOCKS_NOTHING)
        gim = self.gim_namespace
        # NetworkPolicy selectors never match a host-network pod: as a source it is only an IP.
        src_ns = src.namespace if isinstance(src, Pod) and not src.host_network else None
        dst_in_gim = isinstance(dst, Pod) and dst.namespace == gim and not dst.host_network
        src_in_gim = isinstance(src, Pod) and src.namespace == gim and not src.host_network

        extra = self._extras.verdict(src, dst, port, protocol) if values.extra_policies else None
        # Egress from GIM pods is only ever restricted by extraPolicies.
        if src_in_gim and extra is not None and extra.egress.isolated and not extra.egress.allowed:
            return Promise(False, EXTRA_POLICIES)
        if not dst_in_gim:
            if src_in_gim and extra is not None and extra.egress.isolated:
                return Promise(True, EXTRA_POLICIES)
            return Promise(True, OUTSIDE_GIM)

        if src_ns == gim:
            allowed, promise = True, SAME_NAMESPACE
        elif src_ns is not None and src_ns in values.allowed_namespaces:
            allowed, promise = True, namespace_allowed(src_ns)
        else:
            allowed, promise = False, NOT_LISTED_BLOCKED
        if not allowed and extra is not None and extra.ingress.isolated and extra.ingress.allowed:
            allowed, promise = True, EXTRA_POLICIES
        if allowed and src_in_gim and extra is not None and extra.egress.isolated:
            promise = EXTRA_POLICIES
        return Promise(allowed, promise)
