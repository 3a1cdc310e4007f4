"""A release gate in 30 seconds (issue 16): simulated live time before and after, in one run.

AFTER is this checkout's code as it is. BEFORE is the suite as of commit b0f5165 (the code the live
cluster measured at 177 s for a full serial run) driving THE CURRENT MODEL: a temporary ``git worktree``
of b0f5165 with this checkout's model layers copied over it (``OVERLAY``: backends, probes, netpol and
the error modules); its suite, gim, verify and commands packages and its tests stay as they were. Both
run on the model backend with its realistic latencies; a figure is the model's virtual clock, i.e. what
a live cluster would spend. If b0f5165's suite cannot run on the current model, BEFORE falls back to
b0f5165 unmodified (its own model) and the output says so.

For each side: the full run serial and under ``-n 2`` (with each worker's clock), each release-gate
profile of tests/fixtures/chart (serial), and the CNI feature canaries of ``--cni-features needed``:
(a) their own report line, (b) what they add to a one-test run (needed minus none). Then the live goals
of the issue, met or not, and the model's calibration (BEFORE serial vs the live 177 s, within 15%).

    .venv/bin/python benchmarks/bench_release_gate.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

# benchmarks/ is on sys.path when run as a script
from bench_simulated_time import model_suite_process, run_model_suite, simulated_seconds

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "tests" / "fixtures" / "chart"
BEFORE_COMMIT = "b0f5165"
LIVE_BEFORE_S = 177.0  # the real cluster, full serial run of b0f5165's code (issue 16)
CALIBRATION_TOLERANCE = 0.15
OVERLAY = (
    "conformance/backends",
    "conformance/probes",
    "conformance/netpol",
    "conformance/api_errors.py",
    "conformance/errors.py",
)
SERIAL = ["-p", "no:xdist"]
GATES = {  # profile -> (values, rendered chart)
    "dryrun-smtp": ("values-dryrun.yaml", "rendered-dryrun.yaml"),
    "enforce": ("values-enforce.yaml", "rendered-enforce.yaml"),
    "enforce-smtp": ("values-enforce-smtp.yaml", "rendered-enforce-smtp.yaml"),
}
LIVE = {  # measured on the real cluster with b0f5165's code (issue 16), seconds
    "serial": "171-177",
    "-n 2": "122-123",
    "dryrun-smtp": "46",
    "enforce": "61-101",
    "enforce-smtp": "111",
    "canaries": "14.2",
}
ONE_TEST = ["-k", "test_dryrun_blocks_nothing"]  # the canaries' cost (b): one test with and without them
N2_RUNS = 3  # -n 2 splits the tests between workers as they finish: its figure varies from run to run


@dataclass(frozen=True)
class Tree:
    """Where a side's suite runs: its directory and the environment that imports its ``conformance``."""

    label: str
    cwd: Path
    env: dict[str, str] | None = None
    note: str = ""


@dataclass
class Figures:
    serial: float = 0.0
    n2: list[str] = field(default_factory=list)  # each -n 2 run's summary line
    gates: dict[str, float] = field(default_factory=dict)
    canaries_line: str = ""  # (a) the canaries' own report line
    canaries_report_s: float = 0.0
    canaries_added_s: float = 0.0  # (b)

    @property
    def n2_worst(self) -> float:
        return max(simulated_seconds(line) for line in self.n2)


# -- BEFORE: b0f5165 on the current model --------------------------------------------------------------


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout


def overlay(repo: Path, tree: Path) -> list[str]:
    """Copy this checkout's model layers over ``tree``; what each one changes against BEFORE_COMMIT."""
    changed = []
    for part in OVERLAY:
        source, target = repo / part, tree / part
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
        files = git("diff", "--name-only", BEFORE_COMMIT, "--", part, cwd=repo).split()
        changed.append(f"{part} ({len(files)} files differ from {BEFORE_COMMIT})")
    return changed


def imported_from(tree: Tree, module: str) -> Path:
    """The file ``module`` is imported from in ``tree``'s environment (the editable install must not win)."""
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}; print({module}.__file__)"],
        cwd=tree.cwd,
        env=tree.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(proc.stdout.strip())


def old_tree(path: Path) -> Tree:
    """``path`` first on PYTHONPATH: its ``conformance`` wins over the editable install's (a meta path finder
    consulted after the path)."""
    paths = [str(path), *filter(None, [os.environ.get("PYTHONPATH")])]
    return Tree("before", path, os.environ | {"PYTHONPATH": os.pathsep.join(paths)})


def runs_on_current_model(tree: Tree) -> bool:
    """One test of the old suite, with the canaries, on the overlaid model: does it import and pass?"""
    return model_suite_process([*SERIAL, *ONE_TEST], tree.cwd, tree.env).returncode == 0


def prepare(repo: Path, path: Path) -> Tree:
    """Overlay the current model on the worktree at ``path``; if the old suite fails on it, undo that."""
    changed = overlay(repo, path)
    tree = old_tree(path)
    for module in ("conformance", "conformance.backends.model"):
        if not imported_from(tree, module).is_relative_to(path):
            sys.exit(f"before: {module} is not imported from {path}")
    if runs_on_current_model(tree):
        overlaid = "; ".join(changed)
        note = (
            f"before = {BEFORE_COMMIT}'s suite on the current model; overlaid from this checkout: {overlaid}"
        )
    else:
        git("reset", "--hard", "-q", cwd=path)
        git("clean", "-fdq", cwd=path)
        note = f"before = {BEFORE_COMMIT} with its own model (its suite fails on the current model)"
    return replace(tree, note=note)


@contextmanager
def before_tree() -> Iterator[Tree]:
    """A temporary worktree of BEFORE_COMMIT with the current model overlaid (or, failing that, as is)."""
    repo = Path(git("rev-parse", "--show-toplevel").strip())
    with tempfile.TemporaryDirectory(prefix="bench-before-") as tmp:
        path = Path(tmp) / "tree"
        git("worktree", "add", "--detach", str(path), BEFORE_COMMIT, cwd=repo)
        try:
            yield prepare(repo, path)
        finally:
            git("worktree", "remove", "--force", str(path), cwd=repo)


# -- the runs -------------------------------------------------------------------------------------------


def run(tree: Tree, args: list[str]) -> tuple[str, str]:
    summary, stdout, _ = run_model_suite(args, tree.cwd, tree.env)
    return summary, stdout


def gate_args(profile: str) -> list[str]:
    values, rendered = GATES[profile]
    return [*SERIAL, "--values", str(CHART / values), "--manifests", str(CHART / rendered)]


def canaries(tree: Tree, figures: Figures) -> None:
    with_them, stdout = run(tree, [*SERIAL, *ONE_TEST, "--cni-features", "needed"])
    without, _ = run(tree, [*SERIAL, *ONE_TEST, "--cni-features", "none"])
    line = re.search(r"CNI features: .*?([\d.]+) ?s\b.*", stdout)
    figures.canaries_line = line.group(0) if line else "(no CNI features line)"
    figures.canaries_report_s = float(line.group(1)) if line else 0.0
    figures.canaries_added_s = simulated_seconds(with_them) - simulated_seconds(without)


def measure(tree: Tree) -> Figures:
    figures = Figures(serial=simulated_seconds(run(tree, SERIAL)[0]))
    figures.n2 = [run(tree, ["-n", "2"])[0] for _ in range(N2_RUNS)]
    figures.gates = {profile: simulated_seconds(run(tree, gate_args(profile))[0]) for profile in GATES}
    canaries(tree, figures)
    return figures


# -- the report -----------------------------------------------------------------------------------------


def verdict(seconds: float, goal: float) -> str:
    return "met" if seconds <= goal else "NOT met"


def rows(before: Figures, after: Figures) -> list[tuple[str, str, float, float, int]]:
    """(run, measured live before (issue 16), before s, after s, live goal s)."""
    return [
        ("full run, serial", LIVE["serial"], before.serial, after.serial, 60),
        (f"full run, -n 2 (slowest of {N2_RUNS} runs)", LIVE["-n 2"], before.n2_worst, after.n2_worst, 40),
        *((f"release gate {p} (serial)", LIVE[p], before.gates[p], after.gates[p], 30) for p in GATES),
        (
            "--cni-features needed: (a) canaries' report",
            LIVE["canaries"],
            before.canaries_report_s,
            after.canaries_report_s,
            8,
        ),
        (
            "--cni-features needed: (b) added to a run",
            "-",
            before.canaries_added_s,
            after.canaries_added_s,
            8,
        ),
    ]


def print_table(before: Figures, after: Figures) -> None:
    print(f"{'run':<46} {'live':>8} {'before':>7} {'after':>7} {'goal':>7}  {'before':<8} after")
    for label, live, b, a, goal in rows(before, after):
        figures = f"{live:>8} {b:>5g} s {a:>5g} s {'<= ' + str(goal):>5} s"
        print(f"{label:<46} {figures}  {verdict(b, goal):<8} {verdict(a, goal)}")


def print_details(before: Figures, after: Figures) -> None:
    for label, figures in (("before", before), ("after", after)):
        print(f"\n{label}:")
        seconds = [simulated_seconds(line) for line in figures.n2]
        print(
            f"  -n 2, {len(seconds)} runs: {min(seconds):g}-{max(seconds):g} s (the table shows the slowest)"
        )
        for line in figures.n2:
            print(f"    {line}")
        print(f"  (a) {figures.canaries_line}")
    print(
        "\n(a) is the canaries' own report. Before, they ran alone after the controls: (a) is their cost."
        " After, they start before the probe fleet comes up and are judged after the controls, so (a)"
        " includes the fleet's set-up; their cost to a run is (b): a one-test run"
        f" ({' '.join(ONE_TEST)}) with --cni-features needed minus the same with none."
    )


def calibration(before: Figures) -> str:
    off = (before.serial - LIVE_BEFORE_S) / LIVE_BEFORE_S
    within = "within" if abs(off) <= CALIBRATION_TOLERANCE else "NOT within"
    return (
        f"calibration: before (code of {BEFORE_COMMIT}) on this model: {before.serial:.0f} s serial vs live"
        f" {LIVE_BEFORE_S:.0f} s: {off:+.1%} off (must be within {CALIBRATION_TOLERANCE:.0%}): {within}"
    )


def main() -> None:
    start = time.monotonic()
    after = Tree("after", ROOT)
    with before_tree() as before:
        print(before.note)
        print(f"after = this checkout ({git('rev-parse', '--short', 'HEAD').strip()}, as is)\n")
        before_figures = measure(before)
    after_figures = measure(after)
    print_table(before_figures, after_figures)
    print_details(before_figures, after_figures)
    print(f"\n{calibration(before_figures)}")
    print(f"({time.monotonic() - start:.0f} s of wall time here)")


if __name__ == "__main__":
    main()
