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

from conformance.api_errors import transient_reason
from conformance.netpol.probing import Observation, Outcome, Probe, sample_twice
from conformance.probes.agnhost import classify, connect_command
from conformance.probes.batch import BatchItem, batch_command, parse_batch_output, shell_missing

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


class ExecFailed(Exception):
    """The exec itself failed (no probe ran): the message says why."""


def run_exec(
    api: Any, namespace: str, pod: str, command: list[str], timeout_s: float
) -> tuple[int, str, str]:
    """Run ``command`` in the pod's first container; (exit code, stdout, stderr). Raises ExecFailed,
    or the client's own error when the API server cannot be reached (retried by the caller)."""
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
    except Exception as exc:  # ApiException, websocket errors, TLS errors: all mean "nothing ran"
        if transient_reason(exc):
            raise  # the API server is down: retried, then an infrastructure error, not a probe error
        raise ExecFailed(f"exec in {namespace}/{pod} failed: {exc}".strip()) from None
    try:
        resp.run_forever(timeout=timeout_s)
        if resp.is_open():
            raise ExecFailed(f"exec in {namespace}/{pod} did not finish within {timeout_s:g}s")
        stdout = resp.read_stdout(timeout=0) or ""
        stderr = resp.read_stderr(timeout=0) or ""
        status = resp.read_channel(ERROR_CHANNEL, timeout=0)
    except ExecFailed:
        raise
    except Exception as exc:
        raise ExecFailed(f"exec in {namespace}/{pod} broke off: {exc}") from None
    finally:
        with contextlib.suppress(Exception):  # closing a dead socket is not worth reporting
            resp.close()
    code, why = exit_code_from_status(status)
    if code is None:
        raise ExecFailed(f"exec in {namespace}/{pod} failed: {why}")
    return code, stdout, stderr


def exec_probe(api: Any, probe: Probe, timeout_s: float) -> Observation:
    """Run one probe with ``api`` (a CoreV1Api) and classify what agnhost said."""
    namespace, pod = probe.client.split("/", 1)
    command = connect_command(probe.host, probe.port, probe.protocol, timeout_s)
    start = time.monotonic()
    try:
        code, stdout, stderr = run_exec(api, namespace, pod, command, timeout_s + EXEC_GRACE_S)
    except ExecFailed as exc:
        return Observation(probe, Outcome.ERROR, str(exc), time.monotonic() - start)
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


def run_batches(
    api_factory: Callable[[], Any],
    probes: Sequence[Probe],
    timeout_s: float,
    confirm: Sequence[bool],
    workers: int = 8,
    *,
    batch: bool = True,
    no_shell: set[str] | None = None,
) -> list[list[Observation]]:
    """The samples of every probe, in the probes' order: one exec per client pod running all of that
    client's connects at once (``batch``; see conformance.probes.batch), at most ``workers`` execs at a
    time. A probe with ``confirm`` that did not connect is sampled once more at once (as
    ``netpol.probing.to_confirm`` says, in the batch script and one exec per probe alike). A pod whose image
    has no /bin/sh is added to ``no_shell`` and probed one exec per probe from then on, as is every pod
    when ``batch`` is False."""
    no_shell = no_shell if no_shell is not None else set()
    samples: list[list[Observation]] = [[] for _ in probes]
    by_client: dict[str, list[int]] = {}
    for i, p in enumerate(probes):
        by_client.setdefault(p.client, []).append(i)
    single: list[int] = []  # probed one exec per probe, after the batches
    lock = threading.Lock()
    local = threading.local()

    def run(client: str) -> None:
        indices = by_client[client]
        items = [BatchItem(probes[i], bool(confirm[i])) for i in indices]
        namespace, pod = client.split("/", 1)
        start = time.monotonic()
        try:
            if getattr(local, "api", None) is None:
                local.api = api_factory()
            command = batch_command(items, timeout_s)
            # Two timeouts when a connect is confirmed, plus the exec's own round trip.
            _code, stdout, _stderr = run_exec(
                local.api, namespace, pod, command, 2 * timeout_s + EXEC_GRACE_S
            )
        except ExecFailed as exc:
            if shell_missing(str(exc)):
                with lock:
                    no_shell.add(client)
                    single.extend(indices)
                return
            for i in indices:
                samples[i] = [Observation(probes[i], Outcome.ERROR, str(exc), time.monotonic() - start)]
            return
        except Exception as exc:
            if transient_reason(exc):
                raise
            for i in indices:
                samples[i] = [Observation(probes[i], Outcome.ERROR, f"cannot exec in {client}: {exc}")]
            return
        for i, got in zip(indices, parse_batch_output(items, stdout, time.monotonic() - start), strict=True):
            samples[i] = got

    batched = [c for c in by_client if batch and c not in no_shell]
    single.extend(i for c in by_client if c not in batched for i in by_client[c])
    if batched:
        with ThreadPoolExecutor(max(1, min(workers, len(batched))), thread_name_prefix="probe") as pool:
            list(pool.map(run, batched))
    if single:
        single.sort()
        got = sample_twice(
            [probes[i] for i in single],
            [confirm[i] for i in single],
            lambda some: run_probes(api_factory, some, timeout_s, workers),
        )
        for i, observations in zip(single, got, strict=True):
            samples[i] = observations
    return samples


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
