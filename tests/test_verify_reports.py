"""The evidence: JSON (the fields users rely on), JUnit XML, terminal tables, self-contained HTML."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from conformance.verify.analysis import analyse
from conformance.verify.discovery import view_from_objects
from conformance.verify.report_html import to_html
from conformance.verify.report_json import to_json, values_snippet
from conformance.verify.report_junit import to_junit
from conformance.verify.report_text import render_text
from tests import verify_snapshots as snap

CHROMIUM = "/usr/bin/chromium"


def analysis(objects):
    view = view_from_objects([("snap.yaml", o) for o in objects], source="snap.yaml")
    return analyse(view, snap.GIM)


@pytest.fixture(scope="module")
def dryrun_missing_monitoring():
    return analysis(snap.cluster("dryrun", ["ingress-nginx"]))


def test_json_has_the_fields_users_rely_on(dryrun_missing_monitoring):
    doc = json.loads(json.dumps(to_json(dryrun_missing_monitoring)))
    assert doc["mode"] == "dryrun"
    assert doc["allowedNamespaces"] == ["ingress-nginx"]
    assert [n["namespace"] for n in doc["needsAccess"]] == ["ingress-nginx", "monitoring"]
    assert all(n["evidence"] and all(isinstance(e, str) for e in n["evidence"]) for n in doc["needsAccess"])
    assert doc["wouldBlock"] == ["monitoring"]
    assert doc["suggestedAllowedNamespaces"] == ["ingress-nginx", "monitoring"]
    assert doc["conforms"] is False and doc["exitStatus"] == 1
    flow = next(f for f in doc["flows"] if f["source"] == "team-a/shop-6d5f-aaaa1" and f["port"] == 8000)
    assert flow["expected"] == "allowed" and flow["underEnforce"] == "blocked"
    assert flow["mode"] == "dryrun" and "dryrun-allow-all" in flow["reason"]
    assert doc["probes"] == [] and doc["live"] is False
    assert doc["helmReleases"] == ["gim"]
    assert {p["helmRelease"] for p in doc["policies"]} == {"gim"}


def test_json_of_a_conforming_enforce_cluster():
    doc = to_json(analysis(snap.cluster("enforce", ["ingress-nginx", "monitoring"])))
    assert doc["mode"] == "enforce"
    assert doc["wouldBlock"] == [] and doc["conforms"] is True and doc["exitStatus"] == 0
    assert {f["expected"] for f in doc["flows"] if f["sourceNamespace"] == "team-a"} == {"blocked"}
    assert {f["expected"] for f in doc["flows"] if f["sourceNamespace"] == "monitoring"} == {"allowed"}


def test_values_snippet_is_valid_values_with_a_reason_per_entry(dryrun_missing_monitoring):
    text = values_snippet(dryrun_missing_monitoring)
    values = yaml.safe_load(text)
    assert values == {
        "networkPolicy": {
            "enabled": True,
            "mode": "dryrun",
            "allowedNamespaces": ["ingress-nginx", "monitoring"],
        }
    }
    before_monitoring = text.split("- monitoring")[0].split("- ingress-nginx")[1]
    assert "# ServiceMonitor/monitoring/gitguardian-app-exporter" in before_monitoring


def test_values_snippet_for_a_disabled_install_recommends_dryrun_first():
    values = yaml.safe_load(values_snippet(analysis(snap.cluster(None))))
    assert values["networkPolicy"]["mode"] == "dryrun"
    assert values["networkPolicy"]["allowedNamespaces"] == ["ingress-nginx", "monitoring"]


def test_junit_has_one_testcase_per_flow_and_fails_what_enforce_blocks(dryrun_missing_monitoring):
    a = dryrun_missing_monitoring
    root = ET.fromstring(to_junit(a))
    flow_suite, needs_suite = root.findall("testsuite")
    cases = flow_suite.findall("testcase")
    assert len(cases) == len(a.flows) and int(flow_suite.get("tests")) == len(a.flows)
    props = {p.get("name"): p.get("value") for p in cases[0].find("properties")}
    assert set(props) >= {"source", "destination", "port", "mode"}
    assert props["mode"] == "dryrun"
    assert flow_suite.get("failures") == "0"
    need_cases = {c.get("name"): c for c in needs_suite.findall("testcase")}
    assert need_cases["monitoring reaches GIM [enforce]"].find("failure") is not None
    assert need_cases["ingress-nginx reaches GIM [enforce]"].find("failure") is None
    assert root.get("failures") == "1"


def test_junit_marks_contract_violations_as_failures():
    policies = [
        p
        for p in snap.policies("enforce", ["ingress-nginx", "monitoring"])
        if "same-namespace" not in p["metadata"]["name"]
    ]
    a = analysis([o for o in snap.cluster(None) if o["kind"] != "NetworkPolicy"] + policies)
    root = ET.fromstring(to_junit(a))
    failed = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert len(failed) == len(a.violations) > 0
    assert "GIM pods reach each other" in failed[0].find("failure").get("message")


def test_terminal_report_shows_configuration_matrix_shadow_and_values(dryrun_missing_monitoring):
    text = render_text(dryrun_missing_monitoring)
    assert "mode:              dryrun" in text
    assert "Helm release:      gim" in text
    assert "Expected verdicts now (dryrun)" in text
    assert "Expected verdicts after the switch to enforce" in text
    enforce_table = text.split("after the switch to enforce")[1].split("columns:")[0]
    assert re.search(r"^team-a\s+X X X X X$", enforce_table, re.M)
    assert re.search(r"^ingress-nginx\s+\. \. \. \. \.$", enforce_table, re.M)
    assert "monitoring: WOULD BE BLOCKED (not in allowedNamespaces)" in text
    assert "evidence: ServiceMonitor/monitoring/gitguardian-app-exporter" in text
    assert "    - monitoring" in text
    assert "DOES NOT CONFORM" in text


def test_mixed_namespace_shows_a_mixed_cell():
    objects = snap.cluster("enforce", ["ingress-nginx", "monitoring"])
    objects.append(snap.pod("team-a", "trusted-client", {"app": "trusted"}))
    objects.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-trusted", "namespace": snap.GIM},
            "spec": {
                "podSelector": {},
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {"matchLabels": {"team": "a"}},
                                "podSelector": {"matchLabels": {"app": "trusted"}},
                            }
                        ]
                    }
                ],
            },
        }
    )
    text = render_text(analysis(objects))
    assert re.search(r"^team-a\s+~ ~ ~ ~ ~$", text, re.M)
    assert "~ allowed for some pods of the namespace only" in text


def test_html_is_self_contained_and_shows_grid_shadow_and_configuration(dryrun_missing_monitoring):
    page = to_html(dryrun_missing_monitoring)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=|@import|url\(|<script|<link""", page, re.I)
    assert page.count('class="grid"') == 2  # now, and after the switch to enforce
    assert 'class="c blocked"' in page and 'class="c allowed"' in page
    assert "ServiceMonitor/monitoring/gitguardian-app-exporter" in page
    assert "would be blocked" in page
    assert "gitguardian/gim-netpol-dryrun-allow-all" in page
    assert "Does not conform" in page


def test_html_escapes_what_comes_from_the_cluster():
    objects = snap.cluster("dryrun", ["ingress-nginx"])
    for o in objects:
        if o["kind"] == "ServiceMonitor":
            o["metadata"]["name"] = "<script>alert(1)</script>"
    page = to_html(analysis(objects))
    assert "<script>" not in page and "&lt;script&gt;" in page


def screenshot(html: Path, png: Path, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={tmp / 'profile'}",
            "--window-size=1280,1700",
            f"--screenshot={png}",
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(
    not shutil.which(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"
)
def test_html_renders_in_headless_chromium(tmp_path, dryrun_missing_monitoring):
    html = tmp_path / "verify-report.html"
    html.write_text(to_html(dryrun_missing_monitoring), encoding="utf-8")
    png = tmp_path / "verify-report.png"
    result = screenshot(html, png, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 1700)
    # a rendered page of coloured cells compresses far worse than a blank one
    assert len(data) > 40_000
