"""``gim-netpol verify --snapshot`` and ``cleanup`` as a user runs them: output, files, exit status."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml

from conformance.cli import main
from conformance.commands.cleanup import leftovers
from conformance.probes.agnhost import RUN_LABEL
from tests import verify_snapshots as snap


def verify(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["verify", "--gim-namespace", snap.GIM, *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_output_is_one_object_and_exit_1_when_enforce_would_block(tmp_path, capsys):
    path = snap.write(tmp_path / "snap.yaml", snap.cluster("dryrun", ["ingress-nginx"]))
    status, out, _ = verify(capsys, "--snapshot", str(path), "-o", "json")
    doc = json.loads(out)
    assert status == 1
    assert doc["mode"] == "dryrun"
    assert doc["allowedNamespaces"] == ["ingress-nginx"]
    assert doc["wouldBlock"] == ["monitoring"]
    assert doc["suggestedAllowedNamespaces"] == ["ingress-nginx", "monitoring"]
    assert {n["namespace"] for n in doc["needsAccess"]} == {"ingress-nginx", "monitoring"}
    assert doc["flows"] and all("reason" in f for f in doc["flows"])


def test_conforming_cluster_exits_0(tmp_path, capsys):
    path = snap.write(tmp_path / "snap.yaml", snap.cluster("enforce", ["ingress-nginx", "monitoring"]))
    status, out, _ = verify(capsys, "--snapshot", str(path))
    assert status == 0
    assert "CONFORMS" in out and "mode:              enforce" in out


def test_json_snapshot_split_over_two_files_and_stdin(tmp_path, capsys, monkeypatch):
    objects = snap.cluster("enforce", ["ingress-nginx", "monitoring"])
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    rest = [o for o in objects if o["kind"] != "NetworkPolicy"]
    first = tmp_path / "state.json"
    first.write_text(json.dumps(snap.as_list(rest)))
    monkeypatch.setattr(sys, "stdin", io.StringIO(yaml.safe_dump_all(policies)))
    status, out, _ = verify(capsys, "--snapshot", str(first), "--snapshot", "-", "-o", "json")
    assert status == 0
    assert json.loads(out)["mode"] == "enforce"


def test_report_dir_gets_json_junit_and_html(tmp_path, capsys):
    path = snap.write(tmp_path / "snap.yaml", snap.cluster("dryrun", ["ingress-nginx"]))
    reports = tmp_path / "evidence" / "run-1"
    status, out, err = verify(capsys, "--snapshot", str(path), "--report-dir", str(reports))
    assert status == 1
    assert sorted(p.name for p in reports.iterdir()) == [
        "verify-junit.xml",
        "verify-report.html",
        "verify-report.json",
    ]
    assert json.loads((reports / "verify-report.json").read_text())["wouldBlock"] == ["monitoring"]
    assert ET.parse(reports / "verify-junit.xml").getroot().get("failures") == "1"
    assert "<table" in (reports / "verify-report.html").read_text()
    assert "wrote" in err and "Values to paste" in out


def test_disabled_install(tmp_path, capsys):
    path = snap.write(tmp_path / "snap.yaml", snap.cluster(None))
    status, out, _ = verify(capsys, "--snapshot", str(path), "-o", "json")
    doc = json.loads(out)
    assert doc["mode"] == "disabled" and doc["allowedNamespaces"] == []
    assert doc["wouldBlock"] == ["ingress-nginx", "monitoring"]
    assert status == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gim-namespace", "nope", "--snapshot", "{snap}"], "namespace 'nope' is not in the input"),
        (["--gim-namespace", "Not_A_Name", "--snapshot", "{snap}"], "is not a namespace name"),
        (["--gim-namespace", snap.GIM, "--snapshot", "{missing}"], "cannot read the snapshot"),
        (["--gim-namespace", snap.GIM, "--snapshot", "{bad}"], "invalid YAML"),
        (
            ["--gim-namespace", snap.GIM, "--snapshot", "{snap}", "--context", "prod"],
            "--context applies to a live",
        ),
        (
            ["--gim-namespace", snap.GIM, "--snapshot", "{snap}", "--probe-allowed-namespaces"],
            "probes need a live cluster",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    good = snap.write(tmp_path / "snap.yaml", snap.cluster("dryrun", ["ingress-nginx"]))
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: List\nitems: [\n")
    paths = {"snap": str(good), "missing": str(tmp_path / "missing.yaml"), "bad": str(bad)}
    status = main(["verify", *(a.format(**paths) for a in args)])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_report_dir_that_cannot_be_created_is_a_usage_error(tmp_path, capsys):
    path = snap.write(tmp_path / "snap.yaml", snap.cluster("dryrun", ["ingress-nginx"]))
    blocker = tmp_path / "file"
    blocker.write_text("")
    status, _, err = verify(capsys, "--snapshot", str(path), "--report-dir", str(blocker / "sub"))
    assert status == 2 and "--report-dir" in err


def test_console_script_runs_end_to_end(tmp_path):
    path = snap.write(tmp_path / "snap.yaml", snap.cluster("enforce", ["ingress-nginx", "monitoring"]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "verify",
            "--gim-namespace",
            snap.GIM,
            "--snapshot",
            str(path),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["conforms"] is True


def _ns(name, run=None):
    labels = {RUN_LABEL: run} if run else {}
    return {"metadata": {"name": name, "labels": labels}}


def _pod(ns, name, run=None):
    labels = {RUN_LABEL: run} if run else {}
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}}


def test_cleanup_deletes_labelled_namespaces_and_stray_labelled_pods_only():
    namespaces = [_ns("verify-abc", "abc"), _ns("verify-def", "def"), _ns("gitguardian"), _ns("monitoring")]
    pods = [
        _pod("verify-abc", "client", "abc"),
        _pod("monitoring", "verify-client-abc", "abc"),
        _pod("monitoring", "prom"),
    ]
    found = [str(x) for x in leftovers(namespaces, pods)]
    assert found == [
        "Namespace verify-abc (run abc)",
        "Namespace verify-def (run def)",
        "Pod monitoring/verify-client-abc (run abc)",
    ]
    only_def = [str(x) for x in leftovers(namespaces, pods, run_id="def")]
    assert only_def == ["Namespace verify-def (run def)"]
