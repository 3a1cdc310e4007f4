"""Simulated live time of a full conformance run on the model backend (issue 8, item 9).

The model's virtual clock adds up what a live run would spend (namespaces terminating, pods getting
Ready, policies being programmed, probe execs, dropped probes waiting out their timeout, retries):
this prints it for each latency setting, serial and under ``-n 2``, with the wall time it took here.

    .venv/bin/python benchmarks/bench_simulated_time.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def model_suite_process(
    args: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``pytest conformance --backend model ARGS`` in a fresh process run in ``cwd`` (the tree whose suite
    runs; ``env`` may put another tree first on PYTHONPATH), whatever its outcome."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", "--backend", "model", "-p", "no:cacheprovider"]
        + args,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def run_model_suite(
    args: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None
) -> tuple[str, str, float]:
    """``pytest conformance --backend model ARGS`` in a fresh process: its summary line ``simulated live
    time: ...``, its stdout and its wall time. Exits when the run fails."""
    start = time.monotonic()
    proc = model_suite_process(args, cwd, env)
    wall = time.monotonic() - start
    found = re.search(r"simulated live time: .*", proc.stdout)
    if proc.returncode != 0 or not found:
        sys.exit(f"run failed ({' '.join(args)}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return found.group(0), proc.stdout, wall


def simulated_seconds(summary: str) -> float:
    """The seconds of a ``simulated live time: N s ...`` line (under xdist: the slowest worker's)."""
    return float(re.search(r"simulated live time: ([\d.]+) s", summary).group(1))


def run(latencies: str, workers: list[str]) -> tuple[str, float]:
    simulated, _, wall = run_model_suite(["--model-latencies", latencies, *workers])
    return simulated, wall


def main() -> None:
    print(f"{'latencies':<10} {'workers':<8} {'wall':>7}  simulated")
    for latencies in ("instant", "realistic"):
        for label, workers in (("1", ["-p", "no:xdist"]), ("2", ["-n", "2"])):
            simulated, wall = run(latencies, workers)
            print(f"{latencies:<10} {label:<8} {wall:6.1f}s  {simulated}")


if __name__ == "__main__":
    main()
