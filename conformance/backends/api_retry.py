"""Transient API errors are retried for a bounded time; past it, one line and an infrastructure error.

A stopped API server refuses connections for as long as it is down, and the kubernetes client does
not retry beyond urllib3's three quick tries (its ``Configuration.retries``; urllib3 ``Retry`` docs).
Kubernetes' own clients treat these as retryable (client-go ``rest`` and ``util/retry``:
``IsTooManyRequests``, ``IsServerTimeout``, ``IsInternalError``, ``IsServiceUnavailable``, connection
refused/reset): so does the suite, with tenacity, on the backend's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

from conformance.api_errors import ApiUnreachable, TransientApiError, transient_reason
from conformance.backends.base import Backend, Clock

__all__ = [
    "ApiUnreachable",
    "RetryingBackend",
    "TransientApiError",
    "call_with_retry",
    "quiet_urllib3_retries",
    "transient_reason",
]

T = TypeVar("T")


def call_with_retry(fn: Callable[[], T], *, clock: Clock, timeout_s: float, url: str) -> T:
    """``fn()``, retried on transient errors with backoff until ``timeout_s`` have passed on ``clock``;
    then ApiUnreachable with one line. Other errors go through at once."""
    start = clock.now()
    last: list[str] = []

    def stop(state: RetryCallState) -> bool:
        return clock.now() - start >= timeout_s

    def transient(exc: BaseException) -> bool:
        reason = transient_reason(exc)
        if reason is not None:
            last[:] = [reason]
        return reason is not None

    retrying = Retrying(
        stop=stop,
        wait=wait_exponential(multiplier=0.5, max=5.0),
        retry=retry_if_exception(transient),
        sleep=clock.sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except Exception as exc:
        if last and transient_reason(exc) is not None:
            raise ApiUnreachable(f"API server unreachable at {url} for {timeout_s:g} s: {last[0]}") from None
        raise


def retrying_method(name: str) -> Callable[..., Any]:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self._retry(lambda: getattr(self.inner, name)(*args, **kwargs))

    call.__name__ = name
    return call


class RetryingBackend(Backend):
    """A backend whose every API call is retried on transient errors (see ``call_with_retry``)."""

    def __init__(self, inner: Backend, timeout_s: float) -> None:
        self.inner = inner
        self.timeout_s = timeout_s
        self.name = inner.name
        self.clock = inner.clock

    @property
    def url(self) -> str:
        return str(getattr(self.inner, "api_url", "the API server"))

    @property
    def started(self) -> str:  # type: ignore[override]  # Backend's default would hide the inner one's
        return self.inner.started

    def _retry(self, fn: Callable[[], T]) -> T:
        return call_with_retry(fn, clock=self.clock, timeout_s=self.timeout_s, url=self.url)

    def __getattr__(self, name: str) -> Any:
        # Backend-specific calls (delete_run, detect_cni, resolv_conf...) are retried the same way.
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: self._retry(lambda: attr(*args, **kwargs))

    apply = retrying_method("apply")
    delete = retrying_method("delete")
    wait_gone = retrying_method("wait_gone")
    wait_ready = retrying_method("wait_ready")
    unready_pods = retrying_method("unready_pods")
    state = retrying_method("state")
    probe = retrying_method("probe")
    probe_samples = retrying_method("probe_samples")
    namespace_phases = retrying_method("namespace_phases")
    diagnose = retrying_method("diagnose")
    resolv_conf = retrying_method("resolv_conf")
    services_all = retrying_method("services_all")
    nodes = retrying_method("nodes")

    def repro(self, probe, timeout_s):  # type: ignore[no-untyped-def]
        return self.inner.repro(probe, timeout_s)

    def hold_connection(self, probe, timeout_s):  # type: ignore[no-untyped-def]
        return self.inner.hold_connection(probe, timeout_s)

    def close(self) -> None:
        self.inner.close()


class _NoRetryWarnings(logging.Filter):
    """Drops urllib3's "Retrying (Retry(total=2, ...)) after connection broken by ..." warnings
    (urllib3 2.x connectionpool.urlopen logs one per quick retry). API calls go through api_retry, which
    retries transient errors with tenacity and says in one line when the API stays unreachable: during
    an outage these warnings would only flood the captured log of the test. urllib3 keeps its retries
    (a pooled connection the server closed is retried at once, silently)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Retrying (")


_RETRY_FILTER = _NoRetryWarnings()


def quiet_urllib3_retries() -> None:
    """Install the filter on urllib3's connection pool logger (once; idempotent)."""
    logger = logging.getLogger("urllib3.connectionpool")
    if _RETRY_FILTER not in logger.filters:
        logger.addFilter(_RETRY_FILTER)
