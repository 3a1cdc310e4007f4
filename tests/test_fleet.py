"""The probe fleet is reused by every test of a session; reuse must never hide a defect.

A policy left over from one test shows up in the next test's check; a probe pod deleted or recreated in
the middle of a session is reported, not probed blindly; the fleet is created once per session and
each check reports what it cost (apply, ready, converge, probes, retries).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformance.backends.model import ModelBackend
from conformance.gim.values import NetpolValues
from conformance.probes.agnhost import RUN_LABEL
from conformance.suite.fleet import Fleet
from conformance.suite.scenario import Scenario, Timing
from conformance.suite.topology import Topology

REPO = Path(__file__).resolve().parents[1]
TIMING = Timing()  # the model runs on a virtual clock: realistic timeouts cost no wall time


def _fleet(backend: ModelBackend) -> Fleet:
    fleet = Fleet(backend, Topology("run1", "gim", ("ingress-nginx", "monitoring"), ("not-allowed",)))
    fleet.setup()
    return fleet


def _scenario(fleet: Fleet, mode: str, allowed: int = 2) -> Scenario:
    topology = fleet.view(allowed)
    values = NetpolValues(
        enabled=mode != "disabled",
        mode="enforce" if mode == "enforce" else "dryrun",
        allowed_namespaces=topology.allowed_namespaces,
    )
    sc = Scenario(fleet.backend, fleet, topology, values, TIMING)
    sc.deploy()
    return sc


def _deny_all(namespace: str, labels: dict[str, str]) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "left-behind", "namespace": namespace, "labels": labels},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def test_tests_on_one_fleet_see_only_their_own_policies():
    fleet = _fleet(ModelBackend())
    enforce = _scenario(fleet, "enforce")
    assert enforce.check("enforce").ok
    enforce.teardown()
    assert fleet.backend.state(["gim"]).policies == [], "the enforce test's policies outlived it"
    disabled = _scenario(fleet, "disabled")
    report = disabled.check("disabled")
    assert report.ok and all(r.flow.expected.allowed for r in report.results)


def test_a_policy_left_over_from_a_previous_test_breaks_the_next_check():
    fleet = _fleet(ModelBackend())
    first = _scenario(fleet, "enforce")
    first.teardown()
    # Something the reset cannot know about (not labelled with the run) is still in the GIM namespace.
    fleet.backend.apply([_deny_all("gim", {})])
    report = _scenario(fleet, "disabled").check("disabled")
    assert not report.ok
    assert report.contract_breaks, "a leftover deny-all must break the 'disabled blocks nothing' promise"
    assert "left-behind" in report.explain()


def test_the_reset_removes_every_policy_of_the_run_even_one_no_scenario_recorded():
    fleet = _fleet(ModelBackend())
    sc = _scenario(fleet, "enforce")
    fleet.backend.apply([_deny_all("not-allowed", {RUN_LABEL: "run1"}), _deny_all("monitoring", {"x": "y"})])
    sc.teardown()
    left = fleet.backend.state(fleet.topology.namespaces).policies
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in left] == [
        ("monitoring", "left-behind")
    ], "the run's own policies must go; a policy the run did not create must stay"


def test_a_probe_pod_deleted_in_the_middle_of_a_session_is_reported():
    fleet = _fleet(ModelBackend())
    pod = next(o for o in fleet.created if o["kind"] == "Pod" and o["metadata"]["namespace"] == "monitoring")
    fleet.backend.delete([pod])
    sc = _scenario(fleet, "enforce")
    with pytest.raises(pytest.fail.Exception, match="monitoring/client is gone"):
        sc.check("enforce")


def test_a_probe_pod_recreated_with_another_ip_is_reported():
    fleet = _fleet(ModelBackend())
    pod = next(o for o in fleet.created if o["kind"] == "Pod" and o["metadata"]["name"] == "nginx")
    fleet.backend.delete([pod])
    fleet.backend.apply([pod])
    with pytest.raises(pytest.fail.Exception, match=r"gim/nginx was recreated \(IP "):
        _scenario(fleet, "enforce").check("enforce")


def test_a_view_allows_the_first_namespaces_and_lists_the_others_as_not_allowed():
    fleet = Fleet(ModelBackend(), Topology("r", "gim", ("a", "b"), ("c",)))
    assert fleet.view(0).allowed_namespaces == ()
    assert fleet.view(0).other_namespaces == ("a", "b", "c")
    assert fleet.view(1).allowed_namespaces == ("a",)
    assert fleet.view(1).other_namespaces == ("b", "c")
    assert fleet.view(None) == fleet.topology
    with pytest.raises(ValueError, match="has 2 namespaces to allow"):
        fleet.view(3)


def test_a_scratch_namespace_is_deleted_with_its_test_and_the_fleet_stays():
    fleet = _fleet(ModelBackend())
    sc = _scenario(fleet, "enforce")
    late = sc.scratch_name("late")
    sc.add_client_namespace(late, allowed=False)
    assert sc.check("enforce with a late namespace").ok
    sc.teardown()
    # Deleted, not waited for: it terminates while the next test runs (its name is never used again).
    phases = fleet.backend.namespace_phases()
    assert phases.get(late) == "Terminating"
    assert all(phases.get(n) == "Active" for n in fleet.topology.namespaces)
    assert late != _scenario(fleet, "enforce").scratch_name("late"), "scratch names must not repeat"


# -- as a user runs it ------------------------------------------------------------------------------
# Counts the namespaces the model backend is asked to create (it calls the real apply).
NAMESPACE_COUNTER = """
import json, os
from conformance.backends.model import ModelBackend

_apply = ModelBackend.apply
created = []

def counting_apply(self, objects):
    created.extend(o["metadata"]["name"] for o in objects if o.get("kind") == "Namespace")
    return _apply(self, objects)

ModelBackend.apply = counting_apply

def pytest_unconfigure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # under xdist: one file per worker
    with open(os.environ["GIM_TEST_NAMESPACES_OUT"] + (f".{worker}" if worker else ""), "w") as f:
        json.dump(created, f)
"""


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    (tmp_path / "nscount.py").write_text(textwrap.dedent(NAMESPACE_COUNTER))
    out = tmp_path / "namespaces.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIM_NETPOL_", "PYTEST_"))}
    env.update(PYTHONPATH=str(tmp_path), GIM_TEST_NAMESPACES_OUT=str(out))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", "-p", "no:cacheprovider", "-p", "nscount", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return proc, json.loads(out.read_text())


def test_the_fleet_is_created_once_per_session_and_each_check_reports_its_costs(tmp_path: Path):
    proc, namespaces = _run(tmp_path, "--backend", "model", "--report-dir", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    gim = [n for n in namespaces if n.startswith("gim-")]
    assert len(gim) == 1, f"one GIM namespace for the whole session, not {gim}"
    report = json.loads((tmp_path / "r" / "gim-netpol-checks.json").read_text())
    checks = [c for c in report if c["kind"] == "gim-netpol-check"]
    assert len(checks) >= 12
    for c in checks:
        assert {"apply_s", "ready_s", "converge_s", "probes", "retries"} <= set(c), c
        assert c["probes"] > 0 and c["retries"] >= 0


def test_fleet_test_gives_every_test_namespaces_of_its_own(tmp_path: Path):
    proc, namespaces = _run(tmp_path, "--backend", "model", "--fleet", "test", "-k", "enforce")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    gim = [n for n in namespaces if n.startswith("gim-")]
    assert len(gim) == len(set(gim)) >= 7, gim


def test_the_controls_run_on_the_fleet_and_leave_no_policy_on_it():
    from conformance.suite.controls import run_controls

    fleet = _fleet(ModelBackend())
    before = set(fleet.backend.namespace_phases())
    results = run_controls(fleet.backend, "run1", TIMING, image="agnhost", fleet=lambda: fleet)
    assert results.baseline.ok and results.canary.ok
    probed = {r.flow.probe.client for r in results.canary.results}
    assert probed == set(fleet.topology.client_keys), "every client of the fleet is a control client"
    assert not any(r.flow.expected.allowed for r in results.canary.results)
    assert set(fleet.backend.namespace_phases()) == before, "no scratch namespace for the controls"
    assert fleet.backend.state(fleet.topology.namespaces).policies == []


def test_the_controls_do_not_probe_from_a_borrowed_namespace():
    from conformance.suite.controls import run_controls

    backend = ModelBackend()
    backend.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}}])
    fleet = _fleet(backend)
    assert fleet.borrowed == ("monitoring",)
    results = run_controls(backend, "run1", TIMING, image="agnhost", fleet=lambda: fleet)
    assert "monitoring/client" not in {r.flow.probe.client for r in results.baseline.results}


# -- issue 17: probe pods that can never run stop the session at once, in one line ---------------------
MISSING_IMAGE = "mirror.local/e2e-test-images/agnhost:2.52"


def test_a_probe_image_the_mirror_lacks_stops_the_fleet_within_seconds_naming_it():
    from conformance.backends.model_faults import parse_faults
    from conformance.suite.fleet import FleetBroken

    backend = ModelBackend(faults=parse_faults(f"no-image={MISSING_IMAGE}"))
    topology = Topology("run1", "gim", ("ingress-nginx",), ("not-allowed",), image=MISSING_IMAGE)
    with pytest.raises(FleetBroken) as info:
        Fleet(backend, topology, ready_timeout_s=180).setup()
    assert backend.clock.now() < 10, "not after the readiness timeout"
    message = str(info.value)
    assert message.startswith("probe pods cannot run: gim/")
    assert f"cannot pull image '{MISSING_IMAGE}' (" in message and f"{MISSING_IMAGE}: not found" in message


def test_the_suite_says_it_in_one_line():
    from tests.test_suite_plugin import run_suite

    run = run_suite(
        "--backend",
        "model",
        "--model-faults",
        f"no-image={MISSING_IMAGE}",
        "--probe-image",
        MISSING_IMAGE,
        "-k",
        "not_listed",
        "-p",
        "no:randomly",
    )
    assert run.returncode == 1, run.output
    assert "probe pods cannot run: " in run.output and "Traceback" not in run.output
    assert "not ready after 180s" not in run.output
