"""What the CNI feature canaries cost: probes, and time on the model's virtual clock (what a live run
would spend with the model's realistic latencies), for all canaries and for those the reference
rendering needs, on each CNI quirk profile.

    .venv/bin/python benchmarks/bench_cni_features.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conformance.backends.cni_profiles import PROFILES, parse_profile  # noqa: E402
from conformance.backends.model import ModelBackend  # noqa: E402
from conformance.suite import cni_features as cf  # noqa: E402

TIMING = {"probe_timeout_s": 2.0, "deadline_s": 30.0, "ready_timeout_s": 180.0, "retry_interval_s": 1.0}


def main() -> None:
    reference = cf.needed_features(cf.policies_under_test(None, None, "gitguardian"))
    print(f"{'profile':<22} {'canaries':<8} {'probes':>6} {'simulated s':>11} {'wall s':>7}  not enforced")
    for profile in PROFILES:
        for choice in ("all", "needed"):
            backend = ModelBackend(cni=parse_profile(profile))
            canaries = cf.chosen(choice, reference)
            start = time.perf_counter()
            report = cf.run_canaries(backend, canaries, cf.Layout("bench123"), image="agnhost", **TIMING)
            wall = time.perf_counter() - start
            bad = [f for f, r in report.results.items() if r.status == cf.NOT_ENFORCED]
            which = f"{choice} ({len(canaries)})"
            print(
                f"{profile:<22} {which:<8} {report.probes:>6} {report.seconds:>11.1f} {wall:>7.2f}"
                f"  {', '.join(bad) or '-'}"
            )


if __name__ == "__main__":
    main()
