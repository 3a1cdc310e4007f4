"""One set of CNI feature canaries per session, also under xdist (suite/cni_share.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conformance.suite.cni_features import (
    ENFORCED,
    NOT_ENFORCED,
    CanaryResult,
    CniFeatureReport,
    needed_features,
)
from conformance.suite.cni_share import SharedCanaries

REPO = Path(__file__).resolve().parents[1]

# Records, per process (the xdist controller and each worker), the namespaces the model is asked to create.
NAMESPACE_RECORDER = """
import json, os
from conformance.backends.model import ModelBackend

_apply = ModelBackend.apply
created = []

def recording_apply(self, objects):
    created.extend(o["metadata"]["name"] for o in objects if o.get("kind") == "Namespace")
    return _apply(self, objects)

ModelBackend.apply = recording_apply

def pytest_unconfigure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "controller")
    with open(os.path.join(os.environ["GIM_TEST_NAMESPACES_DIR"], worker + ".json"), "w") as f:
        json.dump(created, f)
"""


def test_under_xdist_one_worker_runs_the_canaries_and_the_summary_shows_them_once(tmp_path: Path):
    (tmp_path / "nsrecord.py").write_text(textwrap.dedent(NAMESPACE_RECORDER))
    out = tmp_path / "namespaces"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIM_NETPOL_", "PYTEST_"))}
    env.update(PYTHONPATH=str(tmp_path), GIM_TEST_NAMESPACES_DIR=str(out))
    args = ["conformance", "--backend", "model", "-n", "2", "-p", "no:cacheprovider", "-p", "nsrecord"]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "--cni-features", "needed", "-k", "enforce"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    per_worker = {p.stem: json.loads(p.read_text()) for p in out.glob("gw*.json")}
    assert len(per_worker) == 2, f"both workers ran tests: {sorted(per_worker)}"
    with_canaries = [w for w, names in per_worker.items() if any(n.startswith("cf-") for n in names)]
    assert len(with_canaries) == 1, f"the canaries' namespaces were created by {with_canaries}"
    assert all(any(n.startswith("gim-") for n in names) for names in per_worker.values()), "a fleet each"
    assert proc.stdout.count("CNI features:") == 1, proc.stdout[-3000:]


def test_only_the_first_worker_claims_and_the_others_read_its_verdicts_and_failures(tmp_path: Path):
    first, second = SharedCanaries(tmp_path / "run"), SharedCanaries(tmp_path / "run")
    assert first.claim() and not second.claim() and not first.claim()
    assert second.read(wait_s=0.1) == (None, []), "nothing published yet: no report"

    named_port_policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-http", "namespace": "gim"},
        "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]},
    }
    report = CniFeatureReport(
        {"named-port": CanaryResult("named-port", NOT_ENFORCED, "2 of 4 probes disagree", ["a -> b"], 4)},
        needed_features([named_port_policy]),
        probes=4,
        seconds=3.0,
    )
    report.results["udp"] = CanaryResult("udp", ENFORCED, probes=2)
    assert report.failures(), "a needed feature not enforced"
    first.publish(report)
    got, failures = SharedCanaries(tmp_path / "run").read(wait_s=1.0)
    assert got is not None and got.status("named-port") == NOT_ENFORCED and got.status("udp") == ENFORCED
    assert got.results["named-port"].mismatches == ["a -> b"]
    assert failures == report.failures()


def test_a_worker_whose_controls_failed_before_the_canaries_publishes_no_report(tmp_path: Path):
    shared = SharedCanaries(tmp_path)
    assert shared.claim()
    shared.publish(None)
    assert SharedCanaries(tmp_path).read(wait_s=1.0) == (None, [])
