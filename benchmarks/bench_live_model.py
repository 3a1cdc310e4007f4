"""Simulated live time of a full run and of a release-gate run, before and after the probe fleet (issue 9).

"Before" is ``--fleet test``: every test creates its namespaces, stand-ins and clients, waits for them and
deletes them, as the suite did before the fleet. "After" is the default ``--fleet session``: one fleet
per session, reused. Both run here on the model backend with its realistic latencies (namespaces
Terminating 10-20 s, pods Ready in 2-5 s, policies programmed in 1-2 s, probe execs, dropped probes
waiting out their timeout), and the figure is the model's virtual clock, i.e. what a live cluster
would spend. The release gate is the enforce profile of tests/fixtures/chart (values + rendered chart).

    .venv/bin/python benchmarks/bench_live_model.py
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

# benchmarks/ is on sys.path when run as a script
from bench_simulated_time import run_model_suite, simulated_seconds

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "tests" / "fixtures" / "chart"
RUNS = {
    "full run": [],
    "release gate (enforce profile)": [
        "--values",
        str(CHART / "values-enforce.yaml"),
        "--manifests",
        str(CHART / "rendered-enforce.yaml"),
    ],
}


def simulated(fleet: str, args: list[str]) -> tuple[float, str, dict[str, float]]:
    """The simulated live time, the test counts, and where the checks spent their time."""
    with tempfile.TemporaryDirectory() as report_dir:
        summary, stdout, wall = run_model_suite(
            ["-p", "no:xdist", "--fleet", fleet, "--report-dir", report_dir, *args]
        )
        seconds = simulated_seconds(summary)
        counts = re.search(r"\d+ passed[^=]*", stdout)
        checks = [
            c
            for c in json.loads((Path(report_dir) / "gim-netpol-checks.json").read_text())
            if c["kind"] == "gim-netpol-check"
        ]
    canaries = re.search(r"CNI features: .*?([\d.]+)s", stdout)
    parts = {
        "checks": len(checks),
        "apply_s": sum(c["apply_s"] for c in checks),
        "converge_s": sum(c["converge_s"] for c in checks),
        "probes": sum(c["probes"] for c in checks),
        "retries": sum(c["retries"] for c in checks),
        "cni_canaries_s": float(canaries.group(1)) if canaries else 0.0,
        "wall_s": wall,
    }
    return seconds, counts.group(0).strip() if counts else "", parts


def main() -> None:
    print(f"{'run':<32} {'before (--fleet test)':>22} {'after (--fleet session)':>24}   tests")
    breakdown = []
    for label, args in RUNS.items():
        before, _, _ = simulated("test", args)
        after, tests, parts = simulated("session", args)
        print(f"{label:<32} {before:>20.0f} s {after:>22.0f} s   {tests}")
        breakdown.append((label, after, parts))
    print("\nwhere the time goes after (simulated seconds):")
    for label, total, p in breakdown:
        rest = total - p["converge_s"] - p["apply_s"] - p["cni_canaries_s"]
        print(
            f"  {label}: {p['checks']} checks converge in {p['converge_s']:.0f} s ({p['probes']} probes,"
            f" {p['retries']} retries), apply {p['apply_s']:.1f} s, CNI canaries {p['cni_canaries_s']:.0f} s,"
            f" fleet set-up + controls + teardown {rest:.0f} s; {p['wall_s']:.1f} s of wall time here"
        )


if __name__ == "__main__":
    main()
