"""The conformance suite as a user runs it: ``pytest conformance [options]`` in a subprocess.

Options come from the command line or GIM_NETPOL_* variables (the command line wins); bad input stops the
run with one line and exit status 2 before any test; the default kind backend fails fast on a machine
without docker/kind; a run ends with a "gim-netpol conformance" summary and can write a JSON report.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUITE = "conformance"
SUMMARY = "gim-netpol conformance"

ENFORCE_VALUES = """\
networkPolicy:
  enabled: true
  mode: enforce
  allowedNamespaces: [ingress-nginx, monitoring]
"""
DRYRUN_VALUES = ENFORCE_VALUES.replace("enforce", "dryrun")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


# The suite run by these tests must never meet this machine's docker engine or its images/build.py
# cache: a kind run would create a real cluster (and reach for the network) where the test expects it to
# stop. A socket nobody serves, and an empty cache, unless a test says otherwise.
NO_DOCKER = "unix:///nonexistent/gim-netpol-tests/docker.sock"
EMPTY_CACHE = tempfile.mkdtemp(prefix="gim-netpol-tests-cache-")


def _clean_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GIM_NETPOL_", "PYTEST_", "COV_")) and k not in ("KUBECONFIG", "DOCKER_HOST")
    }
    env.update({"DOCKER_HOST": NO_DOCKER, "GIM_NETPOL_CACHE_DIR": EMPTY_CACHE})
    env.update(extra or {})
    return env


def run_suite(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Run:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", SUITE, "-p", "no:cacheprovider", *args],
        cwd=REPO,
        env=_clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


# A pytest plugin, loaded with -p into the model run, that records each test's markers (so that one run
# tells which tests are marked enforce, dryrun, disabled).
MARKER_DUMP = """
import json, os

def pytest_collection_finish(session):
    with open(os.environ["GIM_TEST_MARKERS_OUT"], "w") as f:
        json.dump({i.nodeid: sorted({m.name for m in i.iter_markers()}) for i in session.items}, f)
"""


@functools.cache
def collected(*args: str) -> set[str]:
    run = run_suite("--backend", "model", "--collect-only", "-q", *args)
    assert run.returncode in (0, 5), run.output  # 5: nothing selected
    return {line for line in run.stdout.splitlines() if "::" in line}


@dataclass
class Case:
    nodeid: str
    outcome: str  # passed | skipped | failed | error
    message: str


def junit_cases(path: Path) -> dict[str, Case]:
    cases = {}
    for tc in ET.parse(path).iter("testcase"):
        module = tc.get("classname", "").replace(".", "/") + ".py"
        nodeid = f"{module}::{tc.get('name')}"
        outcome, message = "passed", ""
        for child in tc:
            if child.tag in ("skipped", "failure", "error"):
                outcome = {"skipped": "skipped", "failure": "failed", "error": "error"}[child.tag]
                message = child.get("message", "")
        cases[nodeid] = Case(nodeid, outcome, message)
    return cases


def assert_stopped_with_one_line(run: Run, *words: str) -> str:
    """Exit status 2 before any test ran, one error line (on stderr) naming ``words``, no traceback."""
    assert run.returncode == 2, run.output
    assert "Traceback" not in run.output
    assert " passed" not in run.output and " failed" not in run.output
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert "gim-netpol" in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# -- a run on the model backend ---------------------------------------------------------------------
@dataclass
class ModelRun:
    run: Run
    cases: dict[str, Case]
    report: Path
    markers: dict[str, list[str]]

    def marked(self, *names: str) -> set[str]:
        return {n for n, marks in self.markers.items() if set(names) & set(marks)}

    def passed_mode_tests(self) -> set[str]:
        """The tests of a networkPolicy mode that passed: each of them ran checks."""
        modes = self.marked("enforce", "dryrun", "disabled")
        return {n for n, c in self.cases.items() if c.outcome == "passed" and n in modes}


@pytest.fixture(scope="module")
def model_run(tmp_path_factory: pytest.TempPathFactory) -> ModelRun:
    out = tmp_path_factory.mktemp("model-run")
    (out / "gim_test_marker_dump.py").write_text(MARKER_DUMP)
    env = {"PYTHONPATH": str(out), "GIM_TEST_MARKERS_OUT": str(out / "markers.json")}
    run = run_suite(
        "--backend",
        "model",
        "-p",
        "gim_test_marker_dump",
        f"--junitxml={out / 'junit.xml'}",
        "--report-dir",
        str(out / "report"),
        env=env,
    )
    markers = json.loads((out / "markers.json").read_text())
    return ModelRun(run, junit_cases(out / "junit.xml"), out / "report" / "gim-netpol-checks.json", markers)


def test_model_run_passes(model_run):
    run, cases = model_run.run, model_run.cases
    assert run.returncode == 0, run.output
    assert any(c.outcome == "passed" for c in cases.values())
    assert not [c for c in cases.values() if c.outcome in ("failed", "error")]
    for c in cases.values():
        if c.outcome == "skipped":
            assert len(c.message) > 20, f"{c.nodeid} skipped without saying why: {c.message!r}"


def test_model_run_ends_with_the_conformance_summary(model_run):
    run = model_run.run
    assert f"{SUMMARY} (model backend)" in run.stdout
    summary = run.stdout.split(SUMMARY, 1)[1]
    passed = model_run.passed_mode_tests()
    assert passed and all(nodeid in summary for nodeid in passed), (
        "every passing mode test reports its checks"
    )
    assert " 0 mismatches, 0 contract breaks" in summary


def test_report_dir_writes_every_check_as_json(model_run):
    run, cases, report = model_run.run, model_run.cases, model_run.report
    assert report.is_file(), run.output
    assert f"report: {report}" in run.stdout
    entries = json.loads(report.read_text())
    checks = [e for e in entries if e["kind"] == "gim-netpol-check"]
    assert checks and all(e["probes"] > 0 and e["mismatches"] == 0 for e in checks)
    with_checks = {e["test"] for e in checks}
    assert model_run.passed_mode_tests() <= with_checks
    assert with_checks <= {c.nodeid for c in cases.values() if c.outcome == "passed"}
    assert {
        "test",
        "kind",
        "label",
        "backend",
        "probes",
        "mismatches",
        "contract_breaks",
        "converge_s",
    } <= set(checks[0])


def test_the_default_model_run_crosses_nodes_in_every_check(model_run):
    """The model is a kind cluster of three nodes: every check's pod-IP flows run between pods of one
    worker and between the two workers, and the summary names the nodes once."""
    checks = [e for e in json.loads(model_run.report.read_text()) if e["kind"] == "gim-netpol-check"]
    assert checks
    for c in checks:
        assert c["same_node"] > 0 and c["cross_node"] > 0, c
        assert c["schedulable_nodes"] == ["kind-worker", "kind-worker2"] and not c["cross_node_problem"], c
    summary = model_run.run.stdout.split(SUMMARY, 1)[1]
    notes = [line for line in summary.splitlines() if line.startswith("nodes: ")]
    assert len(notes) == 1 and notes[0].startswith("nodes: 2 nodes can run the probe pods (kind-worker, ")


def test_parallel_run_with_two_workers(model_run, tmp_path):
    serial_cases = model_run.cases
    run = run_suite("--backend", "model", "-n", "2", f"--junitxml={tmp_path / 'junit.xml'}")
    assert run.returncode == 0, run.output
    assert "2 workers" in run.stdout
    cases = junit_cases(tmp_path / "junit.xml")
    assert {n: c.outcome for n, c in cases.items()} == {n: c.outcome for n, c in serial_cases.items()}
    assert f"{SUMMARY} (model backend)" in run.stdout
    assert all(n in run.stdout.split(SUMMARY, 1)[1] for n, c in cases.items() if c.outcome == "passed")


def test_fixed_namespace_names_keep_the_tests_on_one_worker(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(ENFORCE_VALUES)
    run = run_suite("--backend", "model", "-n", "2", "-v", "--values", str(values))
    assert run.returncode == 0, run.output
    ran_on = {line.split()[0] for line in run.stdout.splitlines() if " PASSED conformance/" in line}
    assert len(ran_on) == 1, f"tests that deploy the fixed namespaces ran on {sorted(ran_on)}"


# -- selection by mode ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["enforce", "dryrun"])
def test_k_mode_selects_every_test_of_that_mode(mode, model_run):
    marked = model_run.marked(mode)
    assert marked
    assert marked <= collected("-k", mode)


def test_k_dryrun_selects_only_dryrun_tests(model_run):
    assert collected("-k", "dryrun") == model_run.marked("dryrun")


def test_k_enforce_selects_only_enforce_tests(model_run):
    assert collected("-k", "enforce") == model_run.marked("enforce")


# -- options from the environment -----------------------------------------------------------------------
ONE_TEST = ("-k", "gim_pods_reach_each_other")


def test_backend_from_environment():
    run = run_suite(*ONE_TEST, env={"GIM_NETPOL_BACKEND": "model"})
    assert run.returncode == 0, run.output
    assert "1 passed" in run.stdout and f"{SUMMARY} (model backend)" in run.stdout


def test_command_line_wins_over_environment():
    run = run_suite("--backend", "model", *ONE_TEST, env={"GIM_NETPOL_BACKEND": "kind"})
    assert run.returncode == 0, run.output
    assert "1 passed" in run.stdout


@pytest.mark.skipif(
    shutil.which("kind") is not None, reason="kind is installed: the kind backend could start"
)
def test_command_line_wins_over_environment_the_other_way():
    run = run_suite("--backend", "kind", *ONE_TEST, env={"GIM_NETPOL_BACKEND": "model"})
    assert_stopped_with_one_line(run, "kind")


def test_bad_number_in_environment_stops_the_run():
    run = run_suite("--backend", "model", env={"GIM_NETPOL_PROBE_TIMEOUT": "-1"})
    assert_stopped_with_one_line(run, "GIM_NETPOL_PROBE_TIMEOUT", "positive")


def test_bad_number_on_the_command_line_stops_the_run():
    run = run_suite("--backend", "model", "--converge-timeout", "soon")
    assert_stopped_with_one_line(run, "--converge-timeout", "soon")


def test_unknown_backend_on_the_command_line_stops_the_run_like_any_bad_option():
    assert_stopped_with_one_line(run_suite("--backend", "minikube"), "--backend", "minikube")


def test_unknown_backend_in_environment_stops_the_run():
    assert_stopped_with_one_line(
        run_suite(env={"GIM_NETPOL_BACKEND": "minikube"}), "GIM_NETPOL_BACKEND", "minikube"
    )


def test_user_error_is_printed_once():
    run = run_suite("--backend", "model", env={"GIM_NETPOL_PROBE_TIMEOUT": "-1"})
    assert run.output.count("GIM_NETPOL_PROBE_TIMEOUT") == 1, run.output
    assert "_pytest" not in run.output


# -- input files ---------------------------------------------------------------------------------------
def _values(tmp_path: Path, text: str) -> str:
    path = tmp_path / "values.yaml"
    path.write_text(text)
    return str(path)


NOT_APPLICABLE = "not applicable"
OWN_VALUES = "this test sets values of its own shape"


def _assert_other_mode_skipped(case: Case, mode: str) -> None:
    """Skipped, saying why: the mode does not apply, or the test needs values of its own."""
    assert case.outcome == "skipped", case
    assert case.message.startswith((NOT_APPLICABLE, OWN_VALUES)), case.message
    if case.message.startswith(NOT_APPLICABLE):
        assert f"set mode {mode}" in case.message, case.message


def test_values_in_enforce_skip_the_other_modes_with_a_reason(tmp_path, model_run):
    junit = tmp_path / "junit.xml"
    run = run_suite(
        "--backend", "model", "--values", _values(tmp_path, ENFORCE_VALUES), f"--junitxml={junit}"
    )
    assert run.returncode == 0, run.output
    cases = junit_cases(junit)
    other_modes = model_run.marked("dryrun", "disabled")
    assert other_modes
    for nodeid in other_modes:
        _assert_other_mode_skipped(cases[nodeid], "enforce")
    assert any(cases[n].message.startswith(NOT_APPLICABLE) for n in other_modes)
    enforce_results = [cases[n].outcome for n in model_run.marked("enforce")]
    assert "passed" in enforce_results and "failed" not in enforce_results


def test_values_in_dryrun_skip_the_enforce_tests(tmp_path, model_run):
    junit = tmp_path / "junit.xml"
    run = run_suite("--backend", "model", "--values", _values(tmp_path, DRYRUN_VALUES), f"--junitxml={junit}")
    assert run.returncode == 0, run.output
    cases = junit_cases(junit)
    enforce = model_run.marked("enforce")
    assert enforce
    for nodeid in enforce:
        _assert_other_mode_skipped(cases[nodeid], "dryrun")
    assert any(cases[n].message.startswith(NOT_APPLICABLE) for n in enforce)
    assert "passed" in [cases[n].outcome for n in model_run.marked("dryrun")]


def test_values_file_that_does_not_exist_stops_the_run(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    assert_stopped_with_one_line(run_suite("--backend", "model", "--values", missing), missing)


def test_invalid_values_stop_the_run_naming_the_key(tmp_path):
    path = _values(tmp_path, ENFORCE_VALUES.replace("mode: enforce", "mode: block"))
    assert_stopped_with_one_line(
        run_suite("--backend", "model", "--values", path), "networkPolicy.mode", path
    )


def test_manifests_without_values_stop_the_run(tmp_path):
    manifests = tmp_path / "chart.yaml"
    manifests.write_text("")
    assert_stopped_with_one_line(
        run_suite("--backend", "model", "--manifests", str(manifests)), "--manifests", "--values"
    )


CHART_FIXTURES = REPO / "tests" / "fixtures" / "chart"


def test_chart_manifests_that_keep_the_contract_pass():
    run = run_suite(
        "--backend",
        "model",
        "--values",
        str(CHART_FIXTURES / "values-enforce.yaml"),
        "--manifests",
        str(CHART_FIXTURES / "rendered-enforce.yaml"),
    )
    assert run.returncode == 0, run.output
    assert " passed" in run.stdout and "0 contract breaks" in run.stdout


def test_chart_manifests_that_break_the_contract_fail_naming_the_promise(tmp_path):
    """A chart that forgets one listed namespace: the run fails and says which promise is broken."""
    documents = (CHART_FIXTURES / "rendered-enforce.yaml").read_text().split("\n---")
    kept = [d for d in documents if "name: gim-gitguardian-allow-ns-monitoring" not in d]
    assert len(kept) == len(documents) - 1, "the fixture renders one policy per allowed namespace"
    broken = tmp_path / "rendered.yaml"
    broken.write_text("\n---".join(kept))
    run = run_suite(
        "--backend",
        "model",
        "--values",
        str(CHART_FIXTURES / "values-enforce.yaml"),
        "--manifests",
        str(broken),
    )
    assert run.returncode == 1, run.output
    assert "promise 'namespace monitoring is allowed' broken: monitoring/client -> " in run.stdout
    assert "failed" in run.stdout


# -- the default backend on this machine ------------------------------------------------------------
def _docker_daemon_up() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return True  # a daemon that hangs: not this test's business


@pytest.mark.skipif(
    shutil.which("kind") is not None and _docker_daemon_up(),
    reason="docker and kind are here: kind could start",
)
def test_default_kind_backend_fails_fast_without_docker_or_kind():
    # No daemon behind the client, whatever this machine runs: run_suite's DOCKER_HOST names no server.
    run = run_suite(timeout=30)
    line = assert_stopped_with_one_line(run, "kind")
    assert "docker" in line and "--backend model" in line
    assert run.seconds < 15
