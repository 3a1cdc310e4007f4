"""Runs probes in real client pods: ``agnhost connect`` exec'd through the Kubernetes API, in parallel.

Follows the kubernetes python client (v37) as documented in its examples/pod_exec.py and
kubernetes/stream/ws_client.py: ``stream(api.connect_get_namespaced_pod_exec, name, namespace,
command=..., stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)`` returns a
WSClient; ``run_forever(timeout)`` waits for the command to end; stdout and stderr are then read from
their channels, and the exit status from the error channel (``WSClient.returncode`` does the same:
``status: Success`` is 0, otherwise ``details.causes[0].message`` holds the exit code).

``stream()`` works by swapping ``api_client.call_api`` for the duration of the call
(kubernetes/stream/stream.py), so two threads sharing one ApiClient would trample each other: every
worker thread gets its own API object from ``api_factory`` (threading.local).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml
from kubernetes.stream import stream
from kubernetes.stream.ws_client import ERROR_CHANNEL

from conformance.netpol.probing import Observation, Outcome, Probe
from conformance.probes.agnhost import classify, connect_command

# Time allowed, beyond agnhost's own timeout, for the exec round trip (API server -> kubelet -> runtime).
EXEC_GRACE_S = 10.0


def exit_code_from_status(text: str | None) -> tuple[int | None, str]:
    """The exit code carried by an exec's error channel, or None and why there is none."""
    if not text:
        return None, "the exec ended without an exit status (connection closed early?)"
    try:
        status = yaml.safe_load(text)
    except yaml.YAMLError:
        return None, f"unreadable exec status: {text[:200]}"
    if not isinstance(status, dict):
        return None, f"unreadable exec status: {text[:200]}"
    if status.get("status") == "Success":
        return 0, ""
    for cause in (status.get("details") or {}).get("causes") or ():
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message")), ""
            except (TypeError, ValueError):
                break
    return None, str(status.get("message") or text[:200])


def exec_probe(api: Any, probe: Probe, timeout_s: float) -> Observation:
    """Run one probe with ``api`` (a CoreV1Api) and classify what agnhost said."""
    namespace, pod = probe.client.split("/", 1)
    command = connect_command(probe.host, probe.port, probe.protocol, timeout_s)
    start = time.monotonic()

    def failed(detail: str) -> Observation:
        return Observation(probe, Outcome.ERROR, detail, time.monotonic() - start)

    try:
        resp = stream(
            api.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=command,
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
        )
    except Exception as exc:  # ApiException, websocket errors, TLS errors: all mean "no probe happened"
        return failed(f"exec in {probe.client} failed: {exc}".strip())
    try:
        resp.run_forever(timeout=timeout_s + EXEC_GRACE_S)
        if resp.is_open():
            return failed(f"exec in {probe.client} did not finish within {timeout_s + EXEC_GRACE_S:g}s")
        stdout = resp.read_stdout(timeout=0) or ""
        stderr = resp.read_stderr(timeout=0) or ""
        status = resp.read_channel(ERROR_CHANNEL, timeout=0)
    except Exception as exc:
        return failed(f"exec in {probe.client} broke off: {exc}")
    finally:
        with contextlib.suppress(Exception):  # closing a dead socket is not worth reporting
            resp.close()
    code, why = exit_code_from_status(status)
    if code is None:
        return failed(f"exec in {probe.client} failed: {why}")
    outcome, detail = classify(code, stdout, stderr)
    return Observation(probe, outcome, detail, time.monotonic() - start)


def run_probes(
    api_factory: Callable[[], Any],
    probes: Sequence[Probe],
    timeout_s: float,
    workers: int = 8,
) -> list[Observation]:
    """One observation per probe, in the probes' order, with at most ``workers`` execs at a time."""
    if not probes:
        return []
    local = threading.local()

    def run(probe: Probe) -> Observation:
        api = getattr(local, "api", None)
        if api is None:
            try:
                api = local.api = api_factory()
            except Exception as exc:
                return Observation(probe, Outcome.ERROR, f"cannot create a Kubernetes API client: {exc}")
        return exec_probe(api, probe, timeout_s)

    with ThreadPoolExecutor(
        max_workers=max(1, min(workers, len(probes))), thread_name_prefix="probe"
    ) as pool:
        return list(pool.map(run, probes))


def pod_events(core_api: Any, namespace: str, pod: str) -> str:
    """The pod's events, oldest first, one per line ("Warning Failed: ErrImagePull ... (x3)")."""
    try:
        events = core_api.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod}").items
    except Exception as exc:
        return f"(events of {namespace}/{pod} unavailable: {exc})"

    def when(ev: Any) -> float:
        t = ev.last_timestamp or ev.event_time or ev.first_timestamp
        return t.timestamp() if t is not None else 0.0

    lines = []
    for ev in sorted(events, key=when):
        count = f" (x{ev.count})" if ev.count and ev.count > 1 else ""
        lines.append(f"{ev.type or 'Normal'} {ev.reason or '?'}: {(ev.message or '').strip()}{count}")
    return "\n".join(lines) if lines else f"(no events for {namespace}/{pod})"
