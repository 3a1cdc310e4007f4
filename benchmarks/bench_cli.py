"""End-to-end benchmark of ``gim-netpol simulate``: parsing, simulation and JSON output.

Requirement (issue 2, section 5): a 5,000-pod, 300-namespace, 1,000-policy JSON snapshot,
``gim-netpol simulate snap.json --to <a namespace of 30 pods> --port 8080 --port 8443 --port 9090 -o json``
(about 450,000 verdicts) in <= 3 s wall on a 2-core machine. The snapshot is built by synth.py in a
temporary directory; the command runs as a user runs it (a fresh process, output to a file).

    .venv/bin/python benchmarks/bench_cli.py [--repeat 3] [--keep DIR] [--all-pairs 1000,5000]

Then the all-pairs case (issue 9): ``gim-netpol simulate snap.json -o json|jsonl|table`` with neither
``--to`` nor ``--port`` (every ordered pair of pods, on each destination's declared ports) at 1,000 and
5,000 pods, with the peak RSS of the command's process (GNU time's %M; ``os.wait4``'s ru_maxrss without
it). Memory must be flat in the number of probes. The output goes through a pipe whose lines this script
counts (``-o jsonl``: one probe a line), or to /dev/null.
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
# pods -> (namespaces, policies) of the all-pairs snapshots: bench_engine's and this benchmark's shapes
ALL_PAIRS_SHAPES = {1000: (60, 200), 5000: (300, 1000)}
ALL_PAIRS_FORMATS = ("jsonl", "json", "table")
TABLE_UP_TO = 1000  # a table of 5,000 columns is 75 million cells drawn one by one: minutes, and unreadable


def cli() -> list[str]:
    """The installed console script next to this interpreter (``python -m conformance`` otherwise)."""
    script = Path(sys.executable).with_name("gim-netpol")
    return [str(script)] if script.exists() else [sys.executable, "-m", "conformance"]


TIME = shutil.which("time", path="/usr/bin:/bin")  # GNU time: reports its child's own peak RSS


def run_measured(command: list[str], count_lines: bool) -> tuple[float, int, int | None, str]:
    """Runs ``command``: (wall seconds, peak RSS in KiB of that process alone, output lines or None, stderr).

    A child forked from this script starts its peak RSS count with this script's pages (Linux keeps the
    larger of the two across exec), so the command runs under /usr/bin/time, which is small, and its
    figure is read from there."""
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        wrapped = [TIME, "-f", "%M", "-o", str(rss_file), *command] if TIME else command
        start = time.perf_counter()
        with open(Path(tmp) / "stderr", "w+b") as err:
            out = subprocess.PIPE if count_lines else subprocess.DEVNULL
            proc = subprocess.Popen(wrapped, stdout=out, stderr=err, env=os.environ)
            lines = None
            if count_lines:
                assert proc.stdout is not None
                lines = 0
                while chunk := proc.stdout.read(1 << 20):
                    lines += chunk.count(b"\n")
                proc.stdout.close()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - start
            err.seek(0)
            stderr = err.read().decode(errors="replace").strip()
        peak_kib = int(rss_file.read_text().split()[-1]) if TIME else usage.ru_maxrss
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({proc.returncode}): {stderr}")
    return wall, peak_kib, lines, stderr


def all_pairs(workdir: Path, sizes: list[int], formats: list[str], explicit: bool) -> None:
    for pods in sizes:
        namespaces, policies = ALL_PAIRS_SHAPES.get(pods, (max(4, pods // 17), pods // 5))
        snapshot = workdir / f"snap-{pods}.json"
        objects = synthetic_objects(pods, namespaces, policies)
        snapshot.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
        print(f"\nall pairs: {pods} pods, {namespaces} namespaces, {policies} policies")
        for output in formats:
            if output == "table" and pods > TABLE_UP_TO and not explicit:
                print(f"  -o table: skipped above {TABLE_UP_TO:,} pods (--formats table to measure it)")
                continue
            command = [*cli(), "simulate", str(snapshot), "-o", output]
            wall, peak_kib, lines, _ = run_measured(command, count_lines=output == "jsonl")
            probes = f"{lines:,} probes, " if lines is not None else ""
            print(
                f"  gim-netpol simulate snap-{pods}.json -o {output}: {probes}"
                f"wall {wall:.1f} s, peak RSS {peak_kib / 1024:.0f} MiB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="write the snapshot and output in this directory and keep them")
    parser.add_argument(
        "--all-pairs",
        default="1000,5000",
        metavar="PODS,...",
        help="pod counts of the all-pairs case ('' to skip it)",
    )
    parser.add_argument(
        "--formats", help=f"outputs of the all-pairs case (default: {','.join(ALL_PAIRS_FORMATS)})"
    )
    parser.add_argument("--skip-budget", action="store_true", help="only the all-pairs case")
    args = parser.parse_args()
    workdir = Path(args.keep or tempfile.mkdtemp(prefix="gim-netpol-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if not args.skip_budget:
            budget_case(workdir, args.repeat)
        sizes = [int(n) for n in args.all_pairs.split(",") if n]
        formats = (args.formats or ",".join(ALL_PAIRS_FORMATS)).split(",")
        all_pairs(workdir, sizes, [f for f in formats if f], explicit=bool(args.formats))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def budget_case(workdir: Path, repeat: int) -> None:
    """The issue 2 requirement: 449,910 verdicts into the GIM namespace in <= 3 s."""
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
    for _ in range(repeat):
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


if __name__ == "__main__":
    main()
