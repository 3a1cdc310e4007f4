"""--model-pace: the model's real duration in proportion to its simulated one, so xdist splits the work as
it would on a live cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conformance.backends.clock import VirtualClock
from conformance.backends.factory import model_backend, model_pace

REPO = Path(__file__).resolve().parents[1]


def test_auto_paces_the_model_only_under_xdist(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert model_pace({"model_pace": "auto"}) == 0.0
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert model_pace({"model_pace": "auto"}) == 0.01
    assert model_pace({"model_pace": "0"}) == 0.0
    assert model_backend({"model_pace": "0.5"}).clock.pace == 0.5


def test_a_paced_clock_still_reads_virtual_seconds():
    clock = VirtualClock(pace=1e-6)
    clock.sleep(30.0)
    clock.advance_to(45.0)
    assert clock.now() == 45.0


@pytest.mark.parametrize("bad", ["-1", "soon", "nan"])
def test_a_bad_pace_stops_the_run_with_one_line(bad):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", "--backend", "model", f"--model-pace={bad}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"gim-netpol: error: --model-pace: expected auto or a number of seconds >= 0, got {bad!r}"
    ]
