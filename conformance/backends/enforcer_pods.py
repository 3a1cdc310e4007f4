"""The pods of the NetworkPolicy enforcer while a backend waits for it to start: which of them can never
become Ready (the wait stops at once and names them), which are not Ready yet (named at the deadline).

Read the same way for every enforcer and every backend: ``read_pods`` takes the namespaces the enforcer
runs in and a callable that answers like ``kubectl get pods -n NS -o json`` (the kind backend's kubectl,
the model's API), and reads each pod with ``pod_status.never_ready``, as the canaries do.

An enforcer's pods are not the suite's probe pods: they may fail while it comes up (calico-node restarts
while Typha is not there yet; the operator creates the Secrets a container mounts a moment after the
pod), so only what does not resolve by itself stops the wait: a container back in ``CrashLoopBackOff``
(or killed, ``OOMKilled``) after ``CRASH_RESTARTS`` restarts, an image that cannot be pulled after
the kubelet's first retry (``ImagePullBackOff``), an invalid image name. Calico's containers keep the
default ``terminationMessagePolicy: File``, so a crash leaves no message in the pod's status: the last
line of the previous container's log is read instead (``last_log``, ``kubectl logs --previous``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from conformance.backends.base import BackendUnavailable, Clock
from conformance.backends.pod_status import PodProblem, last_line, never_ready, summary

# Where Calico installed by its operator runs (docs.tigera.io, Calico v3.31, "Kind multi-node install"):
# the operator in tigera-operator, calico-node, Typha, kube-controllers and the CSI driver in
# calico-system; kube-system holds CoreDNS, which stays Pending until the CNI runs.
CALICO_NAMESPACES = ("calico-system", "tigera-operator", "kube-system")

# Restarts after which a container back in CrashLoopBackOff is taken to crash for good: with the
# kubelet's back-off (10 s, 20 s, 40 s...) about a minute after its first start.
CRASH_RESTARTS = 3
# Pull reasons that do not resolve by themselves; ErrImagePull alone is the first failed attempt.
HOPELESS_PULLS = ("ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")

# kubectl_json("get", "pods", "-n", NS) -> the JSON `kubectl get pods -n NS -o json` prints.
KubectlJson = Callable[..., dict]
# last_log(namespace, pod, container) -> the log of the container's previous run (its end suffices).
LastLog = Callable[[str, str, str], str]


@dataclass(frozen=True)
class EnforcerPods:
    """The enforcer's pods that are not Ready: those that never will be, and the others with their state."""

    stuck: dict[str, PodProblem] = field(default_factory=dict)  # namespace/name -> why never
    waiting: dict[str, str] = field(default_factory=dict)  # namespace/name -> its state now

    def never_ready_line(self) -> str:
        others = f" ({len(self.waiting)} other pod(s) not Ready yet)" if self.waiting else ""
        return f"pods that can never be Ready: {summary(self.stuck.values())}{others}"

    def not_ready_line(self) -> str:
        states = {**{k: p.what() for k, p in self.stuck.items()}, **self.waiting}
        return "pods not Ready: " + "; ".join(f"{k}: {state}" for k, state in sorted(states.items()))

    def messages(self) -> str:
        """Everything the pods said, for hints (``too many open files``)."""
        return " ".join([*(p.message for p in self.stuck.values()), *self.waiting.values()])


class EnforcerCannotStart(BackendUnavailable):
    """The enforcer will never start: some of its pods can never be Ready. The message names them."""

    def __init__(self, what: str, pods: EnforcerPods, hint: str = "") -> None:
        self.pods = pods
        text = f"{what} will never be reached: {pods.never_ready_line()}"
        super().__init__(text + (f" ({hint})" if hint else ""))


def _ready(pod: dict) -> bool:
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()
    )
    return status.get("phase") == "Running" and ready


def hopeless(problem: PodProblem, restarts: int = CRASH_RESTARTS) -> bool:
    """Whether an enforcer pod's problem will not resolve by itself (see the module's docstring)."""
    if problem.pull:
        return problem.reason in HOPELESS_PULLS
    crashed = problem.exit_code is not None or problem.restarts > 0
    return crashed and problem.restarts >= restarts


def pod_state(pod: dict) -> str:
    """A pod that is not Ready, in a few words: ``Pending, not scheduled (0/3 nodes are available...)``,
    ``Pending, container calico-node PodInitializing``, ``Running, container calico-node not ready``."""
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return f"{phase}, not scheduled ({last_line(cond.get('message') or cond.get('reason'))})"
    statuses = [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]
    for cs in statuses:
        state = cs.get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting:
            detail = last_line(waiting.get("message"))
            return f"{phase}, container {cs.get('name')} {waiting.get('reason')}" + (
                f": {detail}" if detail else ""
            )
        if state.get("terminated") and (state["terminated"].get("exitCode") or 0) != 0:
            term = state["terminated"]
            return f"{phase}, container {cs.get('name')} exited {term.get('exitCode')} ({term.get('reason')})"
    for cs in status.get("containerStatuses") or ():
        if not cs.get("ready"):
            return f"{phase}, container {cs.get('name')} not ready"
    return f"{phase}, not Ready"


def read_pods(
    namespaces: Sequence[str],
    kubectl_json: KubectlJson,
    *,
    last_log: LastLog | None = None,
    restarts: int = CRASH_RESTARTS,
) -> EnforcerPods:
    """The pods of ``namespaces`` that are not Ready (finished pods aside), each either stuck (with why,
    and the last log line of a crashed container when its status has no message) or waiting."""
    stuck: dict[str, PodProblem] = {}
    waiting: dict[str, str] = {}
    for namespace in namespaces:
        for pod in kubectl_json("get", "pods", "-n", namespace).get("items") or ():
            meta = pod.get("metadata") or {}
            key = f"{meta.get('namespace') or namespace}/{meta.get('name')}"
            if _ready(pod) or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            problem = never_ready(pod)
            if problem is None:
                waiting[key] = pod_state(pod)
            elif hopeless(problem, restarts):
                if not problem.pull and not problem.message and last_log is not None:
                    problem = replace(problem, message=_last_log(last_log, namespace, meta, problem))
                stuck[key] = problem
            else:
                waiting[key] = problem.what()
    return EnforcerPods(stuck, waiting)


def _last_log(last_log: LastLog, namespace: str, meta: dict[str, Any], problem: PodProblem) -> str:
    try:
        return last_line(last_log(namespace, str(meta.get("name")), problem.container))
    except Exception:  # a log that cannot be read takes nothing away from what the status says
        return ""


def wait_pods_ready(
    what: str,
    namespaces: Sequence[str],
    kubectl_json: KubectlJson,
    *,
    clock: Clock,
    timeout_s: float,
    poll_s: float = 3.0,
    last_log: LastLog | None = None,
) -> None:
    """Until every pod of ``namespaces`` is Ready. Raises EnforcerCannotStart as soon as one can never
    be, and BackendUnavailable at the deadline, naming the pods not Ready and their state."""
    deadline = clock.now() + timeout_s
    while True:
        pods = read_pods(namespaces, kubectl_json, last_log=last_log)
        if pods.stuck:
            raise EnforcerCannotStart(what, pods)
        if not pods.waiting:
            return
        if clock.now() >= deadline:
            raise BackendUnavailable(f"{what} not reached within {timeout_s:g}s: {pods.not_ready_line()}")
        clock.sleep(poll_s)
