"""The interface every backend implements: the tests never know which one runs.

A backend applies Kubernetes objects, reports the state it actually holds (pod IPs, namespace
labels, the policies in force) and answers probes. ``model`` answers them with the simulator;
``kind`` and ``existing`` exec ``agnhost connect`` in real client pods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from conformance.backends.clock import RealClock
from conformance.backends.nodes import Node, Schedulable, schedulable
from conformance.backends.pod_status import PodProblem, summary
from conformance.netpol.model import Cluster, K8sObject, Service
from conformance.netpol.probing import Observation, Probe, sample_twice


class Clock(Protocol):
    """Where time comes from: every wait, retry and timing of the suite reads ``backend.clock``."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class HeldConnection(Protocol):
    def still_alive(self) -> bool: ...

    def close(self) -> None: ...


class BackendUnavailable(Exception):
    """The backend cannot start (no docker, no kind, no kubeconfig...): the message says how to fix it."""


class ApiError(RuntimeError):
    """The API server answered a request with an error (403 Forbidden, 404 Not Found...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class PodsCannotRun(RuntimeError):
    """Pods that will never become Ready (a container crash-looping, an image that cannot be pulled)."""

    def __init__(self, problems: Mapping[str, PodProblem]) -> None:
        self.problems = dict(problems)
        super().__init__(summary(self.problems.values()))


class Forbidden(Exception):
    """The API server's authorizer refused a request (HTTP 403 ``Forbidden``, RBAC): the message is the
    API server's, which names the verb, resource, API group and namespace the identity lacks. Not a
    RuntimeError, so code that tolerates a refused object (a canary ``not checked``) never hides it."""

    status = 403


class Backend(ABC):
    """A place where objects are applied and connectivity is observed."""

    name: str = "?"
    clock: Clock = RealClock()
    started: str = ""  # what opening it did and took (kind: the cluster created, its enforcer Ready)

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
        """Wait until every pod of the namespaces is Ready and has an IP. Raises PodsCannotRun at once
        when a pod never will (its container crash-loops, its image cannot be pulled)."""

    def unready_pods(self, namespaces: Iterable[str]) -> dict[str, PodProblem | None]:
        """The probe pods of the namespaces that are not Ready yet, each with why it never will be (None:
        it may still). A backend that cannot tell answers from ``wait_ready`` without waiting."""
        try:
            self.wait_ready(namespaces, 0)
        except PodsCannotRun as exc:
            return dict(exc.problems)
        except (RuntimeError, TimeoutError):
            return {"(some pod)": None}
        return {}

    @abstractmethod
    def state(self, namespaces: Iterable[str]) -> Cluster:
        """What the backend holds now: every namespace of the cluster with its labels, and the pods,
        Services and NetworkPolicies of ``namespaces``."""

    def namespace_phases(self) -> dict[str, str]:
        """Every namespace of the cluster with its phase (``Active`` or ``Terminating``)."""
        return {name: "Active" for name in self.state([]).namespaces}

    def nodes(self) -> list[Node] | None:
        """The cluster's nodes (Ready condition, cordon, taints); None when the backend cannot tell."""
        return None

    def schedulable_nodes(self, tolerations: Sequence[Mapping[str, object]] = ()) -> Schedulable | None:
        """The nodes on which a pod with ``tolerations`` (the probe pods have none of their own) can be
        scheduled now, and why each other node cannot take it; None when the backend cannot list nodes."""
        nodes = self.nodes()
        return None if nodes is None else schedulable(nodes, tolerations)

    def resolv_conf(self, pod_key: str) -> str:
        """The /etc/resolv.conf of a running pod, as the pod sees it."""
        raise NotImplementedError(f"the {self.name} backend cannot read a pod's resolv.conf")

    def services_all(self) -> list[Service]:
        """Every Service of the cluster, in all namespaces."""
        return self.state(self.state([]).namespaces).services

    @abstractmethod
    def probe(self, probes: Sequence[Probe], timeout_s: float) -> list[Observation]:
        """Run the probes (in parallel where the backend can) and return one observation each,
        in the same order."""

    def probe_samples(
        self, probes: Sequence[Probe], timeout_s: float, confirm: Sequence[bool]
    ) -> list[list[Observation]]:
        """The samples of one round: every probe once, and a probe with ``confirm[i]`` (a flow expected
        blocked) that did not connect once more right away (``to_confirm`` says which), so that a block
        is seen twice in a row without another round. Backends that batch probes do both in one exec per
        client pod."""
        return sample_twice(probes, confirm, lambda some: self.probe(some, timeout_s))

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
