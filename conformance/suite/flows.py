"""Which probes a scenario runs, and what each one is expected to show.

A flow is one probe (client pod -> pod IP or Service ClusterIP, port) with two expectations: the
simulator's verdict on the objects the backend actually holds, and the documented contract's promise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from conformance.gim.contract import Contract, Promise
from conformance.netpol.model import Cluster, Pod, Service
from conformance.netpol.probing import Probe
from conformance.netpol.simulator import Simulator, Verdict

PROBED_PROTOCOLS = ("TCP", "SCTP")  # agnhost connect has no UDP mode


@dataclass(frozen=True, slots=True)
class Flow:
    probe: Probe
    source: Pod
    destination: Pod  # for a Service probe: the endpoint pod the connection lands on
    destination_port: int  # the port on the destination pod (a Service's resolved targetPort)
    expected: Verdict  # the simulator on the applied objects
    promise: Promise | None  # the documented contract, when the scenario has values

    @property
    def destination_serves(self) -> bool:
        """Whether the destination is known to listen on the probed port: a probe server (agnhost porter
        listens on every port it declares, and is Ready) or a DNS pod declaring it."""
        return any(
            cp.port == self.destination_port and cp.protocol == self.probe.protocol
            for cp in self.destination.ports
        )

    @property
    def contract_broken(self) -> bool:
        return self.promise is not None and self.promise.allowed != self.expected.allowed


def _target_port(service_port_target: int | str, pod: Pod, protocol: str) -> int | None:
    if isinstance(service_port_target, int):
        return service_port_target
    named = pod.named_port(service_port_target, protocol)
    return named.port if named else None


def plan_flows(
    state: Cluster,
    clients: Iterable[str],
    destination_namespace: str,
    *,
    contract: Contract | None,
    simulator: Simulator | None = None,
    via: Sequence[str] = ("pod", "service"),
    extra_targets: Sequence[tuple[Service, Sequence[Pod]]] = (),
) -> list[Flow]:
    """Every client pod -> every declared port of every pod (and Service) of ``destination_namespace``."""
    sim = simulator or Simulator(state)
    pods = {p.key: p for p in state.pods}
    sources = [pods[c] for c in clients if c in pods and pods[c].ip]
    # NetworkPolicy does not apply to host-network pods: probing one would probe its node.
    servers = [p for p in state.pods_in(destination_namespace) if p.ports and p.ip and not p.host_network]
    services: list[tuple[Service, list[Pod]]] = [
        (s, [p for p in servers if s.selects(p)])
        for s in state.services
        if s.namespace == destination_namespace
    ]
    services += [(s, list(eps)) for s, eps in extra_targets]
    flows: list[Flow] = []

    def add(src: Pod, probe: Probe, dst: Pod, dst_port: int, protocol: str) -> None:
        verdict = sim.verdict(src, dst, dst_port, protocol)
        promise = contract.expect(src, dst, dst_port, protocol) if contract else None
        flows.append(Flow(probe, src, dst, dst_port, verdict, promise))

    for src in sources:
        if "pod" in via:
            for dst in servers:
                if dst.key == src.key:
                    continue
                for cp in dst.ports:
                    if cp.protocol in PROBED_PROTOCOLS:
                        probe = Probe(src.key, dst.key, dst.ip or "", cp.port, cp.protocol, "pod")
                        add(src, probe, dst, cp.port, cp.protocol)
        if "service" in via:
            for svc, endpoints in services:
                if not svc.cluster_ip:
                    continue
                for sp in svc.ports:
                    if sp.protocol not in PROBED_PROTOCOLS:
                        continue
                    # kube-proxy picks any endpoint: a Service is probed only when they all agree.
                    landing = [
                        (dst, port)
                        for dst in endpoints
                        if dst.key != src.key and (port := _target_port(sp.target_port, dst, sp.protocol))
                    ]
                    verdicts = {sim.verdict(src, dst, port, sp.protocol).allowed for dst, port in landing}
                    if len(verdicts) == 1:
                        dst, port = landing[0]
                        probe = Probe(src.key, svc.key, svc.cluster_ip, sp.port, sp.protocol, "service")
                        add(src, probe, dst, port, sp.protocol)
    return flows


def without_safety_net(policies: Iterable[dict]) -> list[dict]:
    """The policies minus any allow-all (a policy for every pod with an empty rule): what enforce keeps."""

    def allow_all(policy: dict) -> bool:
        spec = policy.get("spec") or {}
        if spec.get("podSelector") not in (None, {}) and spec.get("podSelector") != {"matchLabels": {}}:
            return False
        return {} in (spec.get("ingress") or []) or {} in (spec.get("egress") or [])

    return [p for p in policies if not allow_all(p)]
