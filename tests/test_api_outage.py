"""Issue 8, defect 4: an API server outage is retried for --api-retry-timeout (on the backend's clock),
then ends the test as an infrastructure ERROR in one line, marked in the JSON report; a session that
cannot clean up ends with what it left and the exact command that removes it.
"""

from __future__ import annotations

import json
import re

import pytest
from urllib3.exceptions import MaxRetryError, NewConnectionError

from conformance.api_errors import ApiUnreachable, TransientApiError, transient_reason
from conformance.backends.api_retry import call_with_retry
from conformance.backends.clock import VirtualClock
from tests.test_suite_plugin import run_suite


class Flaky:
    def __init__(self, clock: VirtualClock, down_until: float, error: Exception) -> None:
        self.clock, self.down_until, self.error, self.calls = clock, down_until, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.clock.now() < self.down_until:
            raise self.error
        return "ok"


class HttpError(Exception):
    """Shaped like kubernetes.client.ApiException: a status and a reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def test_transient_errors_are_retried_until_the_api_answers():
    clock = VirtualClock()
    fn = Flaky(clock, 30.0, TransientApiError("connection refused"))
    assert call_with_retry(fn, clock=clock, timeout_s=60, url="https://api:6443") == "ok"
    assert fn.calls > 2 and 30.0 <= clock.now() < 40.0


def test_past_the_timeout_one_line_names_the_url_the_time_and_the_reason():
    clock = VirtualClock()
    fn = Flaky(clock, 1e9, TransientApiError("connection refused"))
    with pytest.raises(ApiUnreachable) as unreachable:
        call_with_retry(fn, clock=clock, timeout_s=60, url="https://api:6443")
    assert str(unreachable.value) == "API server unreachable at https://api:6443 for 60 s: connection refused"
    assert 60.0 <= clock.now() < 70.0


def test_other_errors_are_not_retried():
    clock = VirtualClock()
    fn = Flaky(clock, 1e9, HttpError(403, "Forbidden"))
    with pytest.raises(HttpError):
        call_with_retry(fn, clock=clock, timeout_s=60, url="u")
    assert fn.calls == 1 and clock.now() == 0.0


def test_what_counts_as_transient():
    refused = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    assert transient_reason(MaxRetryError(None, "/api", refused)) == "connection refused"
    assert transient_reason(ConnectionResetError()) == "connection reset"
    assert transient_reason(HttpError(503, "Service Unavailable")) == "HTTP 503 Service Unavailable"
    assert transient_reason(HttpError(429, "Too Many Requests")) == "HTTP 429 Too Many Requests"
    assert transient_reason(HttpError(500, "etcdserver: leader changed")) is not None
    assert transient_reason(HttpError(404, "Not Found")) is None
    assert transient_reason(ValueError("x")) is None


def test_a_short_outage_is_retried_and_the_run_passes():
    run = run_suite("--backend", "model", "-k", "test_modes", "--model-faults", "api-down@20+30", timeout=120)
    assert run.returncode == 0, run.output
    # The outage really fell inside the run: the run waited it out.
    assert int(re.search(r"simulated live time: (\d+) s", run.output).group(1)) >= 50, run.output


def test_a_long_outage_is_an_infrastructure_error_in_one_line_and_the_last_line_says_how_to_clean_up(
    tmp_path,
):
    run = run_suite(
        "--backend",
        "model",
        "-k",
        "test_modes",
        "--model-faults",
        "api-down@20+100000",
        "--api-retry-timeout",
        "30",
        "--report-dir",
        str(tmp_path),
        timeout=120,
    )
    assert run.returncode == 1, run.output
    assert "Traceback" not in run.output and "urllib3" not in run.output
    assert " failed" not in run.output.splitlines()[-2], "an outage is not a chart verdict"
    assert re.search(r"\d+ errors? in", run.output)
    url = "https://model-apiserver:6443"
    message = f"INFRASTRUCTURE ERROR: API server unreachable at {url} for 30 s: connection refused"
    assert message in run.output
    entries = json.loads((tmp_path / "gim-netpol-checks.json").read_text())
    infra = [e for e in entries if e.get("infrastructure_error")]
    assert infra and all(
        e["kind"] == "gim-netpol-infrastructure-error" and e["error"] == message for e in infra
    )
    run_id = re.search(r"gim-netpol: backend model, run (\w+)", run.output).group(1)
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("gim-netpol: cleanup failed (API server unreachable")
    assert "left in the cluster: " in last
    assert last.endswith(f"remove them with: gim-netpol cleanup --run-id {run_id}")


def test_under_xdist_the_controller_prints_the_workers_leftovers():
    run = run_suite(
        "--backend",
        "model",
        "-n",
        "2",
        "-k",
        "test_modes",
        "--model-faults",
        "api-down@15+100000",
        timeout=120,
    )
    assert run.returncode == 1, run.output
    run_id = re.search(r"gim-netpol: backend model, run (\w+)", run.output).group(1)
    assert run.stdout.strip().splitlines()[-1].endswith(f"gim-netpol cleanup --run-id {run_id}")
