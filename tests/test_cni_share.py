"""One set of CNI feature canaries per session, also under xdist (suite/cni_share.py)."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.suite.cni_features import (
    ENFORCED,
    NOT_ENFORCED,
    CanaryResult,
    CniFeatureReport,
    needed_features,
)
from conformance.suite.cni_share import SharedCanaries
from tests.test_fleet import _run

REPO = Path(__file__).resolve().parents[1]


def test_under_xdist_one_worker_runs_the_canaries_and_the_summary_shows_them_once(tmp_path: Path):
    proc, _ = _run(tmp_path, "--backend", "model", "-n", "2", "--cni-features", "needed", "-k", "enforce")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    per_worker = {p.suffix[1:]: json.loads(p.read_text()) for p in tmp_path.glob("namespaces.json.gw*")}
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
