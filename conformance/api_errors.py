"""Errors of the Kubernetes API that pass by themselves (shared by the backends and the probers).

A stopped API server refuses connections; an overloaded one answers 429; a restarting one or an etcd
leader change answers 5xx (client-go treats these as retryable: ``k8s.io/apimachinery/pkg/api/errors``
``IsTooManyRequests``, ``IsServerTimeout``, ``IsInternalError``, ``IsServiceUnavailable``).
"""

from __future__ import annotations

import json

TRANSIENT_STATUSES = {429, 500, 502, 503, 504}


class TransientApiError(Exception):
    """An API call failed in a way that passes by itself (refused, reset, 429, 5xx)."""


class ApiUnreachable(Exception):
    """The API stayed unreachable for the whole retry budget: an infrastructure error, not a verdict."""


def status_message(exc: BaseException) -> str | None:
    """The ``message`` of the Status object that the API server sent with an error, if it sent one."""
    try:
        body = json.loads(exc.body) if getattr(exc, "body", None) else {}
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return message or None


def transient_reason(exc: BaseException) -> str | None:
    """Why ``exc`` is transient ("connection refused", "HTTP 503 ..."), or None if it is not."""
    if isinstance(exc, TransientApiError):
        return str(exc)
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status in TRANSIENT_STATUSES and hasattr(exc, "reason"):
        return f"HTTP {status} {getattr(exc, 'reason', '') or ''}".strip()
    try:
        from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError
    except ImportError:  # pragma: no cover - urllib3 comes with the kubernetes client
        MaxRetryError = NewConnectionError = ProtocolError = ()  # type: ignore[assignment,misc]
    if isinstance(exc, MaxRetryError):
        return transient_reason(exc.reason) if exc.reason is not None else "connection failed"
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, NewConnectionError) and "refused" in str(exc).lower()
    ):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ProtocolError | NewConnectionError | ConnectionError | TimeoutError):
        return " ".join(str(exc).split())[:200] or type(exc).__name__
    return None
