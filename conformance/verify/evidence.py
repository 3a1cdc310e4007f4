"""What every evidence source shares: the GIM pod and port a source needs, how a Service port reaches
pods, container flags, and the ``add`` callback by which a source records a need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from conformance.netpol.model import Cluster, K8sObject, Pod, Service
from conformance.netpol.snapshot import FINISHED_PHASES
from conformance.verify.discovery import ClusterView


@dataclass(frozen=True)
class Target:
    """A GIM pod and port that a source needs to reach."""

    pod: str  # namespace/name
    port: int
    protocol: str = "TCP"


class Add(Protocol):
    """How a source records a need: the source namespace, one line of evidence, the source pod keys
    (empty: any pod of the namespace), the GIM targets, ``advice`` (what to do when the sources use
    the host network) and ``observed`` (the evidence is observed traffic, not an API object)."""

    def __call__(
        self,
        namespace: str,
        evidence: str,
        sources: list[str],
        targets: list[Target],
        advice: str = "",
        *,
        observed: bool = False,
    ) -> None: ...


def pod_key(pod: K8sObject) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name')}"


def running_pods(view: ClusterView) -> list[K8sObject]:
    """The raw pods that can still open connections (not Succeeded or Failed)."""
    return [p for p in view.objects("Pod") if (p.get("status") or {}).get("phase") not in FINISHED_PHASES]


def container_tokens(pod: K8sObject) -> list[list[str]]:
    """Each container's command and args, as strings."""
    spec = pod.get("spec") or {}
    return [
        [str(t) for t in (c.get("command") or []) + (c.get("args") or [])]
        for c in spec.get("containers") or []
    ]


def flag_value(tokens: list[str], flag: str) -> str | None:
    """The value of ``--flag=value`` or ``--flag value`` in a container's command line."""
    for i, token in enumerate(tokens):
        if token.startswith(flag + "="):
            return token[len(flag) + 1 :]
        if token == flag and i + 1 < len(tokens):
            return tokens[i + 1]
    return None


def _resolve_service_port(svc: Service, port: int | str | None) -> list[tuple[int | str, str]]:
    """(targetPort, protocol) of the Service ports that ``port`` (number, name or None: all) names."""
    out = []
    for sp in svc.ports:
        if port is None or port == sp.port or (isinstance(port, str) and port == sp.name):
            out.append((sp.target_port, sp.protocol))
    return out


def pod_port(pod: Pod, target: int | str, protocol: str) -> int | None:
    if isinstance(target, int):
        return target
    if target.isdigit():
        return int(target)
    named = pod.named_port(target, protocol)
    return named.port if named else None


def service_targets(cluster: Cluster, svc: Service, port: int | str | None) -> list[Target]:
    targets = []
    for target_port, protocol in _resolve_service_port(svc, port):
        for pod in cluster.pods:
            if svc.selects(pod):
                number = pod_port(pod, target_port, protocol)
                if number is not None:
                    targets.append(Target(pod.key, number, protocol))
    return targets
