"""Why a pod cannot become Ready, read from its status as the kubelet writes it.

Read the same way on the model and on a live cluster (``status.containerStatuses``, the fields of
V1ContainerStatus, Kubernetes 1.28 API reference): a container waiting with a reason that does not
resolve by itself (``CrashLoopBackOff``, ``ErrImagePull``, ``ImagePullBackOff``,
``CreateContainerConfigError``, ``InvalidImageName``...), or one that already restarted after a failed
exit (``restartCount`` > 0 and ``lastState.terminated`` with a non-zero ``exitCode``; its ``reason`` is
named when it says more than the exit code: ``OOMKilled``, exit code 137). Such a pod is reported at once
instead of being waited for until the readiness timeout.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conformance.netpol.model import K8sObject

# Waiting reasons of the kubelet (pkg/kubelet/images/types.go, pkg/kubelet/container/sync_result.go,
# pkg/kubelet/kuberuntime: ErrCrashLoopBackOff), v1.28.
PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
STUCK_REASONS = (
    "CrashLoopBackOff",
    *PULL_REASONS,
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
)


@dataclass(frozen=True)
class PodProblem:
    """A container that keeps a pod from ever becoming Ready."""

    pod: str  # namespace/name
    container: str
    reason: str  # CrashLoopBackOff, ImagePullBackOff...
    message: str = ""  # the waiting message, or the last termination's
    image: str = ""
    exit_code: int | None = None  # of the last termination
    restarts: int = 0
    last_reason: str = ""  # of the last termination: OOMKilled, Error...

    @property
    def pull(self) -> bool:
        return self.reason in PULL_REASONS

    def line(self) -> str:
        """One line: the pod, the container, the reason, the message, the exit code."""
        return f"{self.pod}: {self.what()}"

    def what(self) -> str:
        """The problem without the pod's name: the container, the reason, the message, the exit code."""
        detail = f": {self.message}" if self.message else ""
        if self.pull:
            return f"container {self.container} cannot pull image {self.image!r} ({self.reason}){detail}"
        if self.exit_code is None and not self.restarts:
            return f"container {self.container} cannot start ({self.reason}){detail}"
        # "Error" says nothing the exit code does not; OOMKilled (exit code 137) says why it was killed.
        killed = f", {self.last_reason}" if self.last_reason not in ("", "Error", self.reason) else ""
        exited = f", last exit code {self.exit_code}" if self.exit_code is not None else ""
        restarts = f", restarted {self.restarts}x" if self.restarts else ""
        return f"container {self.container} keeps exiting ({self.reason}{killed}{exited}{restarts}){detail}"


def summary(problems: Iterable[PodProblem]) -> str:
    """Problems on one line, pods that share the same problem named together."""
    pods: dict[str, list[str]] = {}
    for p in problems:
        pods.setdefault(p.what(), []).append(p.pod)
    return "; ".join(f"{', '.join(names)}: {what}" for what, names in pods.items())


# Since Kubernetes 1.32 the back-off message carries the last pull error (kubernetes PR #127918); before,
# it is only 'Back-off pulling image "..."' and the error is in the pod's events.
_BACKOFF_PREFIX = re.compile(r'^Back-off pulling image "[^"]*"(?::\s*)?(?:ErrImagePull:\s*)?')


def last_line(text: Any) -> str:
    """A message on one line: the last non-empty line of a log tail (FallbackToLogsOnError), 300 chars."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def never_ready(pod: K8sObject) -> PodProblem | None:
    """Why ``pod`` cannot become Ready, or None when it may still (Pending, starting, probing)."""
    meta = pod.get("metadata") or {}
    key = f"{meta.get('namespace')}/{meta.get('name')}"
    status = pod.get("status") or {}
    statuses = [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        restarts = int(cs.get("restartCount") or 0)
        failed_exit = restarts > 0 and last and last.get("exitCode") not in (None, 0)
        reason = waiting.get("reason") or ""
        if reason not in STUCK_REASONS and not failed_exit:
            continue
        pulling = reason in PULL_REASONS
        if pulling:
            message = _BACKOFF_PREFIX.sub("", last_line(waiting.get("message")))
        else:
            message = last_line(last.get("message")) if last else last_line(waiting.get("message"))
        return PodProblem(
            key,
            str(cs.get("name")),
            reason or str(last.get("reason") or "Error"),
            message,
            str(cs.get("image") or ""),
            None if pulling or not last else last.get("exitCode"),
            restarts,
            "" if pulling else str(last.get("reason") or ""),
        )
    return None
