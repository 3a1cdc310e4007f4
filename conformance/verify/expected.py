"""The expected verdict of every flow into GIM, and whether it keeps the documented contract.

For every namespace of the cluster, every GIM pod and every port it declares, the simulator decides
on the policies the cluster holds. A namespace is represented by its own pods (their labels matter to
extra policies); a namespace with no pod by a client pod with no labels, named ``SYNTHETIC_CLIENT``
(a new workload there). Host-network pods are left out: their traffic leaves from the node's IP.

Each flow is also checked against the contract of the inferred values (``conformance.gim.contract``),
and, outside enforce, decided again on the policies enforce would leave in place (the safety net
removed; for a disabled install, the reference enforce policies with no allowed namespace).
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.gim.contract import NOT_GIMS_POLICIES, Contract
from conformance.gim.render import render
from conformance.gim.values import NetpolValues
from conformance.netpol.model import Cluster, K8sObject, Pod, policy_key
from conformance.netpol.simulator import Simulator, Verdict
from conformance.verify.inference import DRYRUN, ENFORCE, Inference

SYNTHETIC_CLIENT = "verify-synthetic-client"


@dataclass(frozen=True)
class ExpectedFlow:
    source: str  # namespace/pod
    source_namespace: str
    synthetic: bool  # the source stands for a namespace with no pod
    destination: str  # namespace/pod (a GIM pod)
    port: int
    protocol: str
    allowed: bool  # the simulator, on the policies in place
    reason: str
    promise: str  # the documented promise that governs this flow
    promised: bool  # what that promise says
    enforce_allowed: bool  # the simulator, on the policies enforce would leave
    enforce_reason: str
    violation: str | None = None  # why this flow breaks the contract
    note: str | None = None  # why a disagreement is not GIM's doing


def values_of(inference: Inference, cluster: Cluster) -> NetpolValues:
    """The values the inferred configuration stands for (extra policies as the cluster holds them)."""
    extras = [p for p in cluster.policies if policy_key(p) in set(inference.extra_policies)]
    return NetpolValues(
        enabled=inference.enabled,
        mode=inference.mode if inference.enabled else DRYRUN,
        allowed_namespaces=tuple(inference.allowed_namespaces),
        extra_policies=tuple(_as_given(p) for p in extras),
    )


def _as_given(policy: K8sObject) -> K8sObject:
    meta = {k: v for k, v in (policy.get("metadata") or {}).items() if k in ("name", "namespace", "labels")}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": policy.get("spec"),
    }


def enforce_policies(cluster: Cluster, inference: Inference) -> list[K8sObject]:
    """The cluster's policies as they would be under enforce with the same allowedNamespaces."""
    if inference.mode == ENFORCE:
        return list(cluster.policies)
    if inference.mode == DRYRUN:
        nets = set(inference.safety_nets)
        return [p for p in cluster.policies if policy_key(p) not in nets]
    # Disabled: what `enabled: true, mode: enforce` would add, with no allowed namespace yet.
    values = NetpolValues(enabled=True, mode=ENFORCE)
    rendered = list(render(values, inference.namespace))
    taken = {policy_key(p) for p in cluster.policies}
    return list(cluster.policies) + [p for p in rendered if policy_key(p) not in taken]


def with_policies(cluster: Cluster, policies: list[K8sObject], extra_pods: list[Pod] = ()) -> Cluster:
    return Cluster(dict(cluster.namespaces), [*cluster.pods, *extra_pods], list(cluster.services), policies)


def synthetic_client(namespace: str) -> Pod:
    return Pod(namespace=namespace, name=SYNTHETIC_CLIENT, labels={})


def sources_by_namespace(cluster: Cluster) -> dict[str, list[Pod]]:
    """The pods that stand for each namespace: its own (host-network ones left out), or a synthetic one."""
    out: dict[str, list[Pod]] = {}
    for name in sorted(cluster.namespaces):
        pods = [p for p in cluster.pods_in(name) if not p.host_network]
        out[name] = pods or [synthetic_client(name)]
    return out


def destinations(cluster: Cluster, gim_namespace: str) -> list[Pod]:
    return [p for p in cluster.pods_in(gim_namespace) if p.ports and not p.host_network]


def _check(src: Pod, gim: str, verdict: Verdict, promise) -> tuple[str | None, str | None]:
    """(violation, note) for one flow."""
    if promise.promise == NOT_GIMS_POLICIES and not verdict.allowed:
        if verdict.ingress.allowed and not verdict.egress.allowed:
            return None, f"blocked at the source by {src.namespace}'s own egress policies: {verdict.reason}"
        return None, f"blocked by policies outside the GIM namespace: {verdict.reason}"
    if verdict.allowed == promise.allowed:
        return None, None
    if promise.allowed and src.namespace != gim and verdict.ingress.allowed and not verdict.egress.allowed:
        return None, f"blocked at the source by {src.namespace}'s own egress policies: {verdict.reason}"
    action = "blocked" if promise.allowed else "allowed"
    return f"breaks '{promise.promise}': {action} ({verdict.reason})", None


def expected_flows(cluster: Cluster, inference: Inference) -> tuple[list[ExpectedFlow], list[str]]:
    """Every (source, GIM pod, port) flow with its verdicts, and notes on how sources were chosen."""
    gim = inference.namespace
    by_ns = sources_by_namespace(cluster)
    synthetic = [
        pods[0] for pods in by_ns.values() if pods[0].name == SYNTHETIC_CLIENT and pods[0].ip is None
    ]
    synthetic_keys = {p.key for p in synthetic}
    current = with_policies(cluster, list(cluster.policies), synthetic)
    simulator = Simulator(current)
    enforce_sim = Simulator(with_policies(cluster, enforce_policies(cluster, inference), synthetic))
    contract = Contract(values_of(inference, cluster), gim, current)
    notes: list[str] = []
    if synthetic:
        names = ", ".join(p.namespace for p in synthetic)
        notes.append(f"namespaces with no pod, represented by a client pod with no labels: {names}")
    on_host = sorted({p.namespace for p in cluster.pods if p.host_network})
    if on_host:
        notes.append("host-network pods are not sources (they use the node's IP): in " + ", ".join(on_host))
    targets = destinations(cluster, gim)
    if not targets:
        notes.append(f"no pod in {gim} declares a container port: no flow to check")
    flows: list[ExpectedFlow] = []
    for namespace, sources in by_ns.items():
        for src in sources:
            for dst in targets:
                if dst.key == src.key:
                    continue
                for port in dst.ports:
                    verdict = simulator.verdict(src, dst, port.port, port.protocol)
                    if inference.mode == ENFORCE:
                        enforce = verdict
                    else:
                        enforce = enforce_sim.verdict(src, dst, port.port, port.protocol)
                    promise = contract.expect(src, dst, port.port, port.protocol)
                    violation, note = _check(src, gim, verdict, promise)
                    flows.append(
                        ExpectedFlow(
                            source=src.key,
                            source_namespace=namespace,
                            synthetic=src.key in synthetic_keys,
                            destination=dst.key,
                            port=port.port,
                            protocol=port.protocol,
                            allowed=verdict.allowed,
                            reason=verdict.reason,
                            promise=promise.promise,
                            promised=promise.allowed,
                            enforce_allowed=enforce.allowed,
                            enforce_reason=enforce.reason,
                            violation=violation,
                            note=note,
                        )
                    )
    return flows, notes
