"""The suite's own proof: run ``pytest conformance --backend model --values V --manifests M`` on the correct
rendered chart (it must pass) and on every seeded defect (it must fail, naming the broken promise).

The kill rate is defects caught / defects seeded; the README reports it and it must stay at 100%.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.chart_fixtures import DEFECTS, PROFILES

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 120
BROKEN_PROMISE = re.compile(r"promise '[^']+' broken.*")


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str


def suite_args(values: Path, manifests: Path) -> list[str]:
    return [
        "conformance", "--backend", "model", "-p", "no:cacheprovider",
        "--values", str(values), "--manifests", str(manifests), "-rfEs", "--tb=short",
    ]  # fmt: skip


def _isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the root, without this run's xdist identity, GIM_NETPOL_* options or PYTEST_ADDOPTS."""
    for name in list(os.environ):
        if name.startswith(("GIM_NETPOL_", "PYTEST_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(ROOT)


def run_in_process(values: Path, manifests: Path) -> Run:
    """``pytest conformance ...`` in this process (as pytester's in-process runs do): 0.3 s instead of 3 s."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        returncode = pytest.main(suite_args(values, manifests))
    return Run(int(returncode), out.getvalue())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    """The suite on the correct chart of each profile and on each defect."""
    folder = tmp_path_factory.mktemp("defects")
    jobs = {f"correct-{name}": (p.values, p.rendered) for name, p in PROFILES.items()}
    jobs |= {name: (d.values, d.write(folder)) for name, d in DEFECTS.items()}
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(monkeypatch)
        return {name: run_in_process(*args) for name, args in jobs.items()}


def caught(run: Run, promise: str) -> bool:
    return run.returncode == pytest.ExitCode.TESTS_FAILED and f"promise '{promise}' broken" in run.output


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_correct_chart_passes(runs, profile):
    run = runs[f"correct-{profile}"]
    assert not BROKEN_PROMISE.search(run.output), BROKEN_PROMISE.search(run.output).group()
    assert run.returncode == pytest.ExitCode.OK, run.output[-6000:]
    other = "enforce" if profile == "dryrun" else "dryrun"
    # the tests of the other mode are skipped, saying why
    assert f"not applicable: the values under test set mode {profile}, not {other}" in run.output
    assert " passed" in run.output.splitlines()[-1]


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_each_seeded_defect_fails_naming_its_promise(runs, name):
    run = runs[name]
    assert caught(run, DEFECTS[name].promise), run.output[-6000:]


def test_kill_rate_is_100_percent(runs):
    killed = [name for name, defect in DEFECTS.items() if caught(runs[name], defect.promise)]
    rate = len(killed) / len(DEFECTS)
    survivors = sorted(set(DEFECTS) - set(killed))
    assert rate == 1.0, (
        f"kill rate {len(killed)}/{len(DEFECTS)} = {rate:.0%}; survivors: {', '.join(survivors)}"
    )


def test_the_release_gate_command_fails_on_a_defective_chart(tmp_path, monkeypatch):
    """The command a release pipeline runs, as a separate process: exit status 1 and the promise named."""
    defect = DEFECTS["allowed-ns-wrong-label"]
    _isolate(monkeypatch)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *suite_args(defect.values, defect.write(tmp_path))],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-6000:] + proc.stderr
    assert f"promise '{defect.promise}' broken" in proc.stdout
