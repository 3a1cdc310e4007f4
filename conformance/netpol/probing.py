"""The probe vocabulary shared by every prober: what is tried (Probe), what came of it (Outcome) and
what was seen (Observation). The simulator, the backends and the live probers all speak it."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass


class Outcome(enum.StrEnum):
    CONNECTED = "connected"
    BLOCKED = "blocked"  # connect timed out: Calico drops denied packets
    REFUSED = "refused"  # the packet got through but nothing listens there
    # Refused on a port the destination is known to serve: the CNI answered the denied connection with
    # a reject (kube-router: iptables REJECT, ICMP port-unreachable). A block, seen at once.
    REJECTED = "rejected"
    ERROR = "error"  # the probe itself failed: never counted as blocked

    @property
    def blocked(self) -> bool:
        return self in (Outcome.BLOCKED, Outcome.REJECTED)

    @property
    def reached(self) -> bool:
        """Whether the packets reached the destination (a refusal proves they did)."""
        return self in (Outcome.CONNECTED, Outcome.REFUSED)


@dataclass(frozen=True, slots=True)
class Probe:
    """One connection attempt from a client pod to a host and port."""

    client: str  # "namespace/pod" of the client pod
    target: str  # "namespace/name" of the destination pod or Service, for tables and messages
    host: str  # the IP to connect to
    port: int
    protocol: str = "TCP"
    via: str = "pod"  # "pod" (pod IP) or "service" (ClusterIP)


@dataclass(frozen=True, slots=True)
class Observation:
    probe: Probe
    outcome: Outcome
    detail: str = ""  # agnhost's stderr, the exec error, the pod's events...
    latency_s: float = 0.0


def rejected(observation: Observation) -> Observation:
    """A refusal from a destination known to listen on that port, read as what it is: a reject."""
    if observation.outcome is not Outcome.REFUSED:
        return observation
    detail = f"rejected: refused on a port the destination serves ({observation.detail.strip()})"
    return Observation(observation.probe, Outcome.REJECTED, detail, observation.latency_s)


def to_confirm(probes: Sequence[Probe], confirm: Sequence[bool], first: Sequence[Observation]) -> list[int]:
    """Which probes get their second sample in the same round: those asked to confirm (flows expected
    blocked) whose first sample did not connect, unless a probe of the same client asked to confirm did
    connect. That leak says the CNI is still programming the policies, so a block seen now may be a
    moment early: the round ends after one timeout and the flows are sampled again in the next one. The
    batch script (conformance.probes.batch) applies the same rule inside the client pod."""
    leaked = {
        p.client
        for p, c, o in zip(probes, confirm, first, strict=True)
        if c and o.outcome is Outcome.CONNECTED
    }
    return [
        i
        for i, (p, c, o) in enumerate(zip(probes, confirm, first, strict=True))
        if c and o.outcome is not Outcome.CONNECTED and p.client not in leaked
    ]


def sample_twice(
    probes: Sequence[Probe],
    confirm: Sequence[bool],
    run: Callable[[Sequence[Probe]], list[Observation]],
) -> list[list[Observation]]:
    """A round's samples: ``run`` every probe once, then once more those ``to_confirm`` names."""
    first = run(probes)
    samples = [[o] for o in first]
    again = to_confirm(probes, confirm, first)
    if again:
        for i, o in zip(again, run([probes[i] for i in again]), strict=True):
            samples[i].append(o)
    return samples
