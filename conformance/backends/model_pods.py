"""The model kubelet's containers that cannot run: a crash loop, an image that cannot be pulled.

What the kubelet does (Kubernetes 1.28, pkg/kubelet):

- a container that exits is restarted (restartPolicy Always): the first time at once, then after a
  back-off that starts at 10 s and doubles up to 300 s (kubelet.go ``backOffPeriod``,
  ``MaxContainerBackOff``; kuberuntime_manager.go ``doBackOff``). Between restarts its status is
  ``state.waiting.reason: CrashLoopBackOff`` ("back-off 20s restarting failed container=..."), with
  ``lastState.terminated`` {exitCode, reason: Error, message} and ``restartCount``; the pod stays
  ``Running``, never Ready. The message is the log tail only for a container that says
  ``terminationMessagePolicy: FallbackToLogsOnError`` (the probe containers do); with the default
  ``File`` it is empty (kuberuntime_container.go ``getTerminationMessage``), and the log is read with
  ``kubectl logs --previous`` (``last_log``);
- a container killed for exceeding its memory is ``lastState.terminated`` {exitCode: 137, reason:
  OOMKilled} and restarted with the same back-off;
- an image that cannot be pulled: ``state.waiting.reason: ErrImagePull`` with the runtime's error at each
  attempt, ``ImagePullBackOff`` in between (the same back-off); since Kubernetes 1.32 the back-off
  message carries the last pull error (kubernetes PR #127918), as here. The pod stays ``Pending``.

The SCTP failure is agnhost porter's: it opens every ``SERVE_SCTP_PORT_<n>`` listener at start and exits
1 when one fails; without the sctp kernel module the socket call fails with EPROTONOSUPPORT.

The enforcer that cannot start (``enforcer-crash``) fails as Calico v3.31.2 did in issue 21's run, on a
docker host short of memory: calico-node crash-loops, Typha and kube-controllers are OOMKilled. A Go
program whose allocation fails prints ``fatal error: runtime: out of memory`` and exits 2 (Go runtime,
``throw``); a container over its memory limit is killed by the kernel (SIGKILL: 128 + 9).
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.backends.model_faults import Faults
from conformance.netpol.model import K8sObject

BACKOFF_INITIAL_S = 10.0
BACKOFF_MAX_S = 300.0
RESYNC_S = 1.0  # the pod worker notices an exit, or a failed pull, about a second later
# What agnhost 2.56's porter logs (klog) when the kernel has no SCTP, as seen live on kind (issue 22).
SCTP_ERROR = "I1205 08:27:33.509521       1 log.go:245] Failed to listen SCTP. error:protocol not supported"
GO_OUT_OF_MEMORY = "fatal error: runtime: out of memory"
LOG_TAIL_ON_ERROR = "FallbackToLogsOnError"
# enforcer-crash: how each Calico image's container fails, by image repository.
ENFORCER_CRASH = {
    "quay.io/calico/node": ("crash", 2, GO_OUT_OF_MEMORY),
    "quay.io/calico/typha": ("oom", 137, ""),
    "quay.io/calico/kube-controllers": ("oom", 137, ""),
}


@dataclass(frozen=True)
class ContainerFault:
    container: str
    image: str
    kind: str  # "crash", "oom" or "pull"
    message: str  # the container's last log line (crash) or the runtime's pull error
    exit_code: int = 1  # of each exit (crash, oom)


def pod_fault(pod: K8sObject, faults: Faults) -> ContainerFault | None:
    """The container of ``pod`` that cannot run under ``faults``, if any."""
    for c in (pod.get("spec") or {}).get("containers") or ():
        image = str(c.get("image") or "")
        if image in faults.unpullable:
            ref = image if "/" in image else f"docker.io/library/{image}"
            error = (
                f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}":'
                f' failed to resolve reference "{ref}": {ref}: not found'
            )
            return ContainerFault(str(c.get("name")), image, "pull", error)
        serves_sctp = any(str(e.get("name", "")).startswith("SERVE_SCTP_PORT_") for e in c.get("env") or ())
        if faults.no_sctp and serves_sctp:
            return ContainerFault(str(c.get("name")), image, "crash", SCTP_ERROR)
        repository = image.split("@", 1)[0].rsplit(":", 1)[0]
        if faults.enforcer_crash and repository in ENFORCER_CRASH:
            kind, code, log = ENFORCER_CRASH[repository]
            return ContainerFault(str(c.get("name")), image, kind, log, code)
    return None


def last_log(pod: K8sObject, container: str, fault: ContainerFault | None) -> str:
    """What ``kubectl logs --previous`` prints for a container of ``pod``: a crashed container's last
    line (an OOMKilled one was killed mid-work: nothing to single out)."""
    if fault is None or fault.container != container or fault.kind != "crash":
        return ""
    return fault.message + "\n"


def backoff(attempt: int) -> float:
    """The kubelet's back-off after failed attempt ``attempt`` (2, 3...): 10 s, 20 s, 40 s... at most
    300 s. The first failure is retried at the next sync, without back-off."""
    return RESYNC_S if attempt < 2 else min(BACKOFF_INITIAL_S * 2 ** (attempt - 2), BACKOFF_MAX_S)


def attempt_at(elapsed: float) -> tuple[int, float, float]:
    """Which attempt (1, 2...) the kubelet is at ``elapsed`` seconds after the first one: its number,
    when it started, and the back-off after it."""
    n, start = 1, 0.0
    while start + backoff(n) <= elapsed:
        start += backoff(n)
        n += 1
    return n, start, backoff(n)


def status(pod: K8sObject, fault: ContainerFault, elapsed: float) -> dict:
    """The pod's status ``elapsed`` seconds after the kubelet first tried to start its containers."""
    meta = pod.get("metadata") or {}
    n, start, wait = attempt_at(elapsed)
    statuses = []
    for c in (pod.get("spec") or {}).get("containers") or ():
        name, image = str(c.get("name")), str(c.get("image") or "")
        cs: dict = {"name": name, "image": image, "ready": False, "restartCount": 0}
        if name != fault.container and not (fault.kind == "pull" and image == fault.image):
            cs["state"] = {"running": {}}
        elif fault.kind == "pull":
            if elapsed - start < RESYNC_S:  # this attempt just failed
                cs["state"] = {"waiting": {"reason": "ErrImagePull", "message": fault.message}}
            else:
                message = f'Back-off pulling image "{fault.image}": ErrImagePull: {fault.message}'
                cs["state"] = {"waiting": {"reason": "ImagePullBackOff", "message": message}}
        else:
            reason = "OOMKilled" if fault.kind == "oom" else "Error"
            exited: dict = {"exitCode": fault.exit_code, "reason": reason}
            if c.get("terminationMessagePolicy") == LOG_TAIL_ON_ERROR and fault.message:
                exited["message"] = fault.message
            cs["restartCount"] = n - 1
            if n == 1:  # exited, not restarted yet
                cs["state"] = {"terminated": exited}
            else:
                cs["lastState"] = {"terminated": exited}
                why = f"back-off {wait:g}s restarting failed container={name} pod={meta.get('name')}"
                cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": why}}
        statuses.append(cs)
    not_ready = {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}
    return {
        "phase": "Pending" if fault.kind == "pull" else "Running",
        "conditions": [not_ready],
        "containerStatuses": statuses,
    }
