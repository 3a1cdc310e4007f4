"""The interface every backend implements: the tests never know which one runs.

A backend applies Kubernetes objects, reports the state it actually holds (pod IPs, namespace
labels, the policies in force) and answers probes. ``model`` answers them with the simulator;
``kind`` and ``existing`` exec ``agnhost connect`` in real client pods.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from conformance.model import Cluster, K8sObject


class Outcome(enum.StrEnum):
    CONNECTED = "connected"
    BLOCKED = "blocked"  # connect timed out: Calico drops denied packets
    REFUSED = "refused"  # the packet got through but nothing listens there
    ERROR = "error"  # the probe itself failed: never counted as blocked

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


class HeldConnection(Protocol):
    def still_alive(self) -> bool: ...

    def close(self) -> None: ...


class BackendUnavailable(Exception):
    """The backend cannot start (no docker, no kind, no kubeconfig...): the message says how to fix it."""


class Backend(ABC):
    """A place where objects are applied and connectivity is observed."""

    name: str = "?"

    @abstractmethod
    def apply(self, objects: Sequence[K8sObject]) -> None:
        """Create or replace the objects (Namespaces first), like ``kubectl apply``."""

    @abstractmethod
    def delete(self, objects: Sequence[K8sObject]) -> None:
        """Delete the objects; objects already gone are not an error."""

    def wait_gone(self, objects: Sequence[K8sObject], timeout_s: float) -> None:
        """Wait until deleted objects are really gone (a namespace terminates for a while)."""

    @abstractmethod
    def wait_ready(self, namespaces: Iterable[str], timeout_s: float) -> None:
        """Wait until every pod of the namespaces is Ready and has an IP."""

    @abstractmethod
    def state(self, namespaces: Iterable[str]) -> Cluster:
        """What the backend holds now: every namespace of the cluster with its labels, and the pods,
        Services and NetworkPolicies of ``namespaces``."""

    @abstractmethod
    def probe(self, probes: Sequence[Probe], timeout_s: float) -> list[Observation]:
        """Run the probes (in parallel where the backend can) and return one observation each,
        in the same order."""

    def repro(self, probe: Probe, timeout_s: float) -> str:
        """A command a person can paste to run the probe again by hand."""
        ns, pod = probe.client.split("/", 1)
        return (
            f"kubectl exec -n {ns} {pod} -- /agnhost connect {probe.host}:{probe.port}"
            f" --timeout={int(timeout_s)}s --protocol={probe.protocol.lower()}"
        )

    def hold_connection(self, probe: Probe, timeout_s: float) -> HeldConnection | None:
        """Open a connection that stays open, to test whether it survives a policy change; None when
        the backend cannot observe established connections (the model has no connection tracking)."""
        return None

    def diagnose(self, pod_key: str) -> str:
        """What the backend knows about a pod that failed to probe (its phase and events)."""
        return ""

    def close(self) -> None:
        """Release what the backend holds (connections, threads). Does not delete objects."""
