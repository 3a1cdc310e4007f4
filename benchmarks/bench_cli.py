"""End-to-end benchmark of ``gim-netpol simulate``: parsing, simulation and JSON output.

Requirement (issue 2, section 5): a 5,000-pod, 300-namespace, 1,000-policy JSON snapshot,
``gim-netpol simulate snap.json --to <a namespace of 30 pods> --port 8080 --port 8443 --port 9090 -o json``
(about 450,000 verdicts) in <= 3 s wall on a 2-core machine. The snapshot is built by synth.py in a
temporary directory; the command runs as a user runs it (a fresh process, output to a file).

    .venv/bin/python benchmarks/bench_cli.py [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from benchmarks.synth import GIM_NAMESPACE, synthetic_objects
except ModuleNotFoundError:  # run as a script (python benchmarks/x.py): synth.py is next to it
    from synth import GIM_NAMESPACE, synthetic_objects  # type: ignore[no-redef]

PODS, NAMESPACES, POLICIES = 5000, 300, 1000
BUDGET_S = 3.0


def cli() -> list[str]:
    """The installed console script next to this interpreter (``python -m conformance`` otherwise)."""
    script = Path(sys.executable).with_name("gim-netpol")
    return [str(script)] if script.exists() else [sys.executable, "-m", "conformance"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="write the snapshot and output in this directory and keep them")
    args = parser.parse_args()
    workdir = Path(args.keep or tempfile.mkdtemp(prefix="gim-netpol-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        snapshot = workdir / "snap.json"
        objects = synthetic_objects(PODS, NAMESPACES, POLICIES)
        snapshot.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
        size_mb = snapshot.stat().st_size / 1e6
        print(f"snapshot: {PODS} pods, {NAMESPACES} namespaces, {POLICIES} policies, {size_mb:.1f} MB JSON")
        command = [
            *cli(),
            "simulate",
            str(snapshot),
            "--to",
            GIM_NAMESPACE,
            *("--port", "8080", "--port", "8443", "--port", "9090"),
            "-o",
            "json",
        ]
        output = workdir / "out.json"
        times = []
        for _ in range(args.repeat):
            with open(output, "w") as out:
                start = time.perf_counter()
                done = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, text=True, env=os.environ)
                times.append(time.perf_counter() - start)
            if done.returncode != 0:
                sys.exit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
        probes = json.loads(output.read_text())["probes"]
        best = min(times)
        verdict = "OK" if best <= BUDGET_S else "TOO SLOW"
        print(f"command: gim-netpol {' '.join(command[len(cli()) :])}")
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(
            f"{len(probes):,} verdicts; wall best {best:.2f} s (runs {runs} s); "
            f"{len(probes) / best:,.0f} verdicts/s; budget {BUDGET_S:.0f} s: {verdict}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
