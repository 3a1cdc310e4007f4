"""Manifests of the probe pods (agnhost servers and clients) and the probe command itself.

Everything here is a pure function: objects as plain dicts, ready for ``KubeBackend.apply`` or
``gim-netpol plan``.

Upstream behaviour relied on (kubernetes/kubernetes, test/images/agnhost):
- ``agnhost porter`` (porter/porter.go) serves TCP on every port named by an environment variable
  ``SERVE_PORT_<n>`` (and SCTP for ``SERVE_SCTP_PORT_<n>``), all from one process: one container
  serves every TCP port of a stand-in. UDP support in porter (``SERVE_UDP_PORT_<n>``) only arrived
  with kubernetes PR #135911 (Dec 2025), after the pinned tag, so UDP ports get one extra container
  each running ``agnhost serve-hostname --udp --http=false --port <n>``, as the upstream netpol e2e
  model does (test/e2e/network/netpol/model.go, Container.Spec).
- ``agnhost pause`` (pause/pause.go) just waits for a signal: the clients.
- ``agnhost connect HOST:PORT --timeout=<duration> --protocol=tcp|udp|sctp`` (connect/connect.go)
  exits 0 on success, else exits 1 with stderr starting with one of ``TIMEOUT``, ``REFUSED``,
  ``DNS:``, ``OTHER:``, ``UNKNOWN:``. For UDP it sends a datagram (``--udp-data``, default
  "hostname") and waits for the reply: a server that answers proves the path; no reply within the
  timeout is ``TIMEOUT``; an ICMP port-unreachable is ``REFUSED``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from conformance.errors import UserError
from conformance.netpol.model import ContainerPort, K8sObject, ServicePort
from conformance.netpol.probing import Outcome

# The agnhost tag of the kubernetes e2e image list (kubernetes/kubernetes test/utils/image/manifest.go,
# `configs[Agnhost] = Config{list.PromoterE2eRegistry, "agnhost", "2.52"}`). Override with --probe-image
# for a mirror; the image runs as given (no USER in its Dockerfile), hence the numeric uid below.
AGNHOST_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.52"

RUN_LABEL = "conformance.gitguardian.com/run"

# A container that exits with an error gets its last log lines as lastState.terminated.message (Pod API,
# Container.terminationMessagePolicy): agnhost porter's "Failed to listen: ..." reaches the report.
LOG_TAIL_ON_ERROR = "FallbackToLogsOnError"

PROBE_UID = 65532  # any non-zero uid: Pod Security "restricted" wants runAsNonRoot
MIN_PORT = 1024  # a non-root process without NET_BIND_SERVICE cannot bind below this

_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def _metadata(namespace: str, name: str, labels: Mapping[str, str], run_id: str) -> dict:
    return {"name": name, "namespace": namespace, "labels": {**labels, RUN_LABEL: run_id}}


def _container_security() -> dict:
    # Pod Security Standards, "restricted" profile
    # (kubernetes.io/docs/concepts/security/pod-security-standards).
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": PROBE_UID,
        "runAsGroup": PROBE_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_spec(containers: list[dict], run_id: str) -> dict:
    return {
        "containers": containers,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": PROBE_UID,
            "runAsGroup": PROBE_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # Probe pods are killed, not drained (as the upstream netpol e2e pods: grace period 0).
        "terminationGracePeriodSeconds": 0,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        # Spread the run's probe pods over the nodes, so that same-node and cross-node paths are
        # both exercised; ScheduleAnyway keeps single-node clusters working.
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {RUN_LABEL: run_id}},
            }
        ],
    }


def _check_port(port: ContainerPort, where: str) -> None:
    if not MIN_PORT <= port.port <= 65535:
        raise UserError(
            f"port {port.port}/{port.protocol} cannot be served by an unprivileged probe pod: "
            f"ports must be in {MIN_PORT}..65535",
            source=where,
        )
    if port.protocol not in ("TCP", "UDP", "SCTP"):
        raise UserError(f"unknown protocol {port.protocol!r} for port {port.port}", source=where)
    if port.name is not None and not _is_iana_svc_name(port.name):
        raise UserError(f"invalid container port name {port.name!r} (IANA service name)", source=where)


def _is_iana_svc_name(name: str) -> bool:
    # As the API server validates container port names (k8s.io/apimachinery validation.IsValidPortName):
    # at most 15 characters, [a-z0-9-], at least one letter, no leading, trailing or double hyphen.
    return (
        len(name) <= 15
        and bool(_PORT_NAME.match(name))
        and "--" not in name
        and any(c.isalpha() for c in name)
    )


def _port_entry(port: ContainerPort) -> dict:
    entry: dict = {"containerPort": port.port, "protocol": port.protocol}
    if port.name:
        entry["name"] = port.name
    return entry


def server_pod(
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    ports: Sequence[ContainerPort],
    *,
    image: str = AGNHOST_IMAGE,
    run_id: str,
) -> K8sObject:
    """A stand-in for a GIM workload: listens on every port (TCP and SCTP via ``agnhost porter``,
    UDP via one ``serve-hostname --udp`` container per port), with the workload's labels."""
    where = f"{namespace}/{name}"
    if not ports:
        raise UserError("a server pod needs at least one port", source=where)
    seen: set[tuple[int, str]] = set()
    for port in ports:
        _check_port(port, where)
        if (port.port, port.protocol) in seen:
            raise UserError(f"port {port.port}/{port.protocol} listed twice", source=where)
        seen.add((port.port, port.protocol))
    # Names must be unique within a container: porter's ports share one container.
    porter_names = [p.name for p in ports if p.name and p.protocol in ("TCP", "SCTP")]
    for dup in sorted({n for n in porter_names if porter_names.count(n) > 1}):
        raise UserError(f"container port name {dup!r} used for two ports", source=where)

    porter_ports = [p for p in ports if p.protocol in ("TCP", "SCTP")]
    containers: list[dict] = []
    if porter_ports:
        env = [
            {
                "name": f"SERVE_{'SCTP_' if p.protocol == 'SCTP' else ''}PORT_{p.port}",
                "value": f"{name} {p.port}/{p.protocol}",
            }
            for p in porter_ports
        ]
        porter: dict = {
            "name": "server",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["/agnhost", "porter"],
            "env": env,
            "ports": [_port_entry(p) for p in porter_ports],
            "securityContext": _container_security(),
            "terminationMessagePolicy": LOG_TAIL_ON_ERROR,
        }
        tcp = [p for p in porter_ports if p.protocol == "TCP"]
        if tcp:
            # Ready means listening: wait_ready then proves the server side of every probe.
            porter["readinessProbe"] = {"tcpSocket": {"port": tcp[0].port}, "periodSeconds": 2}
        containers.append(porter)
    for p in ports:
        if p.protocol == "UDP":
            containers.append(
                {
                    "name": f"udp-{p.port}",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["/agnhost", "serve-hostname", "--udp", "--http=false", f"--port={p.port}"],
                    "ports": [_port_entry(p)],
                    "securityContext": _container_security(),
                    "terminationMessagePolicy": LOG_TAIL_ON_ERROR,
                }
            )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(namespace, name, labels, run_id),
        "spec": _pod_spec(containers, run_id),
    }


def client_pod(
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    *,
    image: str = AGNHOST_IMAGE,
    run_id: str,
) -> K8sObject:
    """A client that idles (``agnhost pause``) until probes exec ``agnhost connect`` in it."""
    container = {
        "name": "client",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/agnhost", "pause"],
        "securityContext": _container_security(),
        "terminationMessagePolicy": LOG_TAIL_ON_ERROR,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(namespace, name, labels, run_id),
        "spec": _pod_spec([container], run_id),
    }


def service(
    namespace: str,
    name: str,
    selector: Mapping[str, str],
    ports: Sequence[ServicePort | ContainerPort],
    run_id: str,
) -> K8sObject:
    """A ClusterIP Service in front of a stand-in. A ContainerPort is exposed on its own number."""
    if not selector:
        raise UserError("a Service needs a selector", source=f"{namespace}/{name}")
    entries = []
    used: set[str] = set()
    for p in ports:
        if isinstance(p, ContainerPort):
            p = ServicePort(p.port, p.port, p.protocol, p.name)
        # Names are mandatory once a Service has several ports, and unique across protocols (a TCP and
        # a UDP container port may share one: "dns"); targetPort is numeric, so renaming is harmless.
        port_name = p.name if p.name and p.name not in used else f"{p.protocol.lower()}-{p.port}"
        used.add(port_name)
        entries.append(
            {
                "name": port_name,
                "port": p.port,
                "targetPort": p.target_port,
                "protocol": p.protocol,
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(namespace, name, {}, run_id),
        "spec": {"type": "ClusterIP", "selector": dict(selector), "ports": entries},
    }


def _go_duration(seconds: float) -> str:
    # agnhost parses --timeout with Go's time.ParseDuration: "2s", "1.5s".
    if seconds <= 0:
        raise ValueError("a probe timeout must be positive")
    return f"{seconds:g}s"


def connect_command(host: str, port: int, protocol: str = "TCP", timeout_s: float = 2.0) -> list[str]:
    """``agnhost connect`` as the upstream netpol e2e probe runs it (kubemanager.go probeConnectivity)."""
    proto = protocol.lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise ValueError(f"agnhost connect has no protocol {protocol!r}")
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # net.JoinHostPort
    return ["/agnhost", "connect", target, f"--timeout={_go_duration(timeout_s)}", f"--protocol={proto}"]


# connect.go's fixed prefixes, in the order it may print them.
_PREFIXES: tuple[tuple[str, Outcome], ...] = (
    ("TIMEOUT", Outcome.BLOCKED),
    ("REFUSED", Outcome.REFUSED),
    ("DNS", Outcome.ERROR),
    ("OTHER", Outcome.ERROR),
    ("UNKNOWN", Outcome.ERROR),
)


def classify(exit_code: int | None, stdout: str, stderr: str) -> tuple[Outcome, str]:
    """The outcome of one ``agnhost connect``, and the text worth showing with it.

    Only agnhost's own TIMEOUT counts as blocked: any other failure (no such binary, the exec was
    killed, DNS, "no route to host") is an error, never a block.
    """
    text = (stderr or "").strip()
    if exit_code == 0:
        return Outcome.CONNECTED, text
    if exit_code == 1:
        for line in text.splitlines():
            line = line.strip()
            for prefix, outcome in _PREFIXES:
                if line == prefix or line.startswith(prefix + ":"):
                    if outcome is Outcome.ERROR:
                        return outcome, f"agnhost connect: {line}"
                    return outcome, line
    out = (stdout or "").strip()
    shown = "; ".join(s for s in (text, out) if s) or "no output"
    return Outcome.ERROR, f"agnhost connect exited {exit_code}: {shown}"
