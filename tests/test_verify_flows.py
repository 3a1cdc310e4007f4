"""Observed traffic (``verify --flows``): Hubble, Calico and CSV flow logs as evidence (issue 11, section 2).

The sample logs in tests/fixtures/flows follow each project's documented schema (see the README
there); the snapshot below gives its pods the IPs those logs use.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.commands.cli import main
from conformance.errors import UserError
from conformance.verify.analysis import analyse
from conformance.verify.discovery import view_from_objects
from conformance.verify.flowlogs import CALICO, CSV, HUBBLE, parse_flow_log, read_flow_logs
from tests import verify_snapshots as snap

FLOWS = Path(__file__).parent / "fixtures" / "flows"
HUBBLE_LOG = str(FLOWS / "hubble-observe.jsonpb")
CALICO_LOG = str(FLOWS / "calico-flowlogs.jsonl")
CSV_LOG = str(FLOWS / "flows.csv")
GIM = snap.GIM
INTERNAL_API = "gitguardian/internal-api-5f7b-k9m2p"
IPS = {
    "gitguardian/internal-api-5f7b-k9m2p": "10.244.1.17",
    "gitguardian/nginx-6c8d9-x2x4z": "10.244.1.12",
    "gitguardian/worker-default-8b9-abcde": "10.244.1.40",
    "team-a/shop-6d5f-aaaa1": "10.244.2.8",
    "ingress-nginx/ingress-nginx-controller-7d9f-abcde": "10.244.3.5",
    "kube-system/coredns-5d78-bbbb2": "10.244.0.4",
}


def flow_cluster(mode="dryrun", allowed=("ingress-nginx",)):
    objects = snap.gim_workloads() + snap.ingress_nginx() + snap.unrelated()
    objects += [
        snap.pod("team-a", "billing-0", {"app": "billing"}, [(8080, "http")], ip="10.244.2.31"),
        snap.namespace("analytics"),
        snap.pod("analytics", "etl-7f8d9-qq1aa", {"app": "etl"}, ip="10.244.4.9"),
    ]
    for obj in objects:
        key = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
        if obj["kind"] == "Pod" and key in IPS:
            obj["status"]["podIP"] = IPS[key]
    return objects + snap.policies(mode, allowed)


def analysis(*paths, mode="dryrun", allowed=("ingress-nginx",)):
    objects = flow_cluster(mode, allowed)
    view = view_from_objects([("snap.yaml", o) for o in objects], source="snap.yaml")
    return analyse(view, GIM, read_flow_logs(paths))


def observed(result) -> dict[str, list[str]]:
    return {n.namespace: n.observed for n in result.shadow.observed_only}


# -- Hubble ------------------------------------------------------------------------------------------


def test_hubble_flows_from_a_namespace_not_allowed_are_evidence_with_counts_and_times():
    result = analysis(HUBBLE_LOG)
    found = observed(result)
    assert list(found) == ["team-a"]
    assert (
        f"observed 2 flows from team-a/billing-0 to {INTERNAL_API}:8000/TCP"
        " between 2026-11-30T09:12:00Z and 2026-11-30T09:40:13Z" in found["team-a"][0]
    )
    assert "hubble: " in found["team-a"][0] and "forwarded" in found["team-a"][0]
    # an IP-only source is resolved through the snapshot
    assert any(
        f"from team-a/shop-6d5f-aaaa1 (10.244.2.8) to {INTERNAL_API}:8000/TCP" in e for e in found["team-a"]
    )
    assert "team-a" in result.observed_blocked and "team-a" not in result.would_block
    assert any("team-a was observed reaching GIM" in w and "no API evidence" in w for w in result.warnings)


def test_hubble_replies_events_icmp_and_a_truncated_line_are_counted_not_fatal():
    (log,) = read_flow_logs([HUBBLE_LOG])
    assert log.format == HUBBLE
    assert (len(log.flows), log.skipped, log.malformed) == (7, 3, 1)
    assert log.first_error.startswith("line 11:")
    result = analysis(HUBBLE_LOG)
    summary = next(n for n in result.notes if n.startswith("flow log "))
    assert (
        "7 flow record(s), 3 skipped" in summary and "1 malformed line(s) ignored (first: line 11" in summary
    )


def test_flows_between_other_namespaces_inside_gim_and_already_allowed_are_not_evidence():
    result = analysis(HUBBLE_LOG)
    assert "ingress-nginx" not in observed(result) and "kube-system" not in observed(result)
    note = next(n for n in result.notes if n.startswith("flows not taken as evidence"))
    assert "1 from GIM itself" in note
    assert "1 between other namespaces" in note
    assert "1 from namespaces already in allowedNamespaces" in note


def test_a_flow_from_a_node_ip_is_reported_as_host_network():
    result = analysis(HUBBLE_LOG)
    (warning,) = [w for w in result.warnings if "172.18.0.3" in w]
    assert "from a node's IP (host network: kube-system/kube-proxy-ccc3)" in warning


def test_observed_flows_join_the_api_evidence_of_the_same_namespace():
    result = analysis(HUBBLE_LOG, allowed=())
    need = result.shadow.need("ingress-nginx")
    assert need.evidence and any("observed 1 flow from ingress-nginx/" in e for e in need.observed)
    assert "ingress-nginx" not in observed(result)


# -- Calico ------------------------------------------------------------------------------------------


def test_calico_flow_logs_with_aggregated_names_and_both_reporters():
    result = analysis(CALICO_LOG)
    (log,) = read_flow_logs([CALICO_LOG])
    assert log.format == CALICO and log.malformed == 1
    found = observed(result)["analytics"]
    aggregated = next(e for e in found if "analytics/etl-*" in e)
    # the same 4 flows reported by both ends are counted once
    assert "observed 4 flows from analytics/etl-* to gitguardian/public-api-7c4d-*:8001/TCP" in aggregated
    assert "between 2026-11-30T09:00:00Z and 2026-11-30T09:05:00Z" in aggregated
    denied = next(e for e in found if "etl-7f8d9-qq1aa" in e)
    assert f"observed 2 flows from analytics/etl-7f8d9-qq1aa to {INTERNAL_API}:8000/TCP" in denied
    assert "deny" in denied and "gitguardian/default.default-deny" in denied
    targets = {(t.pod, t.port) for t in result.shadow.observed_only[0].targets}
    assert targets == {("gitguardian/public-api-7c4d-q8w3e", 8001), (INTERNAL_API, 8000)}


# -- CSV ---------------------------------------------------------------------------------------------


def test_csv_with_a_header_and_an_ip_for_a_pod():
    result = analysis(CSV_LOG)
    (log,) = read_flow_logs([CSV_LOG])
    assert log.format == CSV and (len(log.flows), log.malformed) == (4, 1)
    found = observed(result)["team-a"]
    assert any(
        "from team-a/shop-6d5f-aaaa1 to gitguardian/public-api-7c4d-q8w3e:8001/TCP" in e for e in found
    )
    assert any(f"from team-a/billing-0 (10.244.2.31) to {INTERNAL_API}:8000/TCP" in e for e in found)
    assert any("(no time in the log)" in e for e in found)


def test_csv_without_a_header_and_with_a_time_column():
    log = parse_flow_log(
        "team-a,billing-0,gitguardian,internal-api-5f7b-k9m2p,8000,TCP,2026-11-30T08:00:00Z\n", "f.csv"
    )
    (flow,) = log.flows
    assert (flow.source.pod, flow.port, flow.start.hour) == ("billing-0", 8000, 8)


# -- bad input ---------------------------------------------------------------------------------------


def test_a_log_where_nothing_parses_is_refused_naming_the_file(tmp_path):
    bad = tmp_path / "flows.json"
    bad.write_text('{"flow": {"IP": {}}}\n{"flow": \n')
    with pytest.raises(UserError, match=r"no line is a hubble flow \(2 malformed; first at line 1"):
        read_flow_logs([str(bad)])


def test_an_empty_log_is_no_flows_not_an_error(tmp_path):
    empty = tmp_path / "empty.jsonpb"
    empty.write_text("\n")
    (log,) = read_flow_logs([str(empty)])
    assert log.flows == [] and log.malformed == 0


def verify(capsys, *args):
    status = main(["verify", "--gim-namespace", GIM, *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def snapshot(tmp_path):
    return str(snap.write(tmp_path / "snap.yaml", flow_cluster()))


def test_cli_reads_every_flows_file_and_lists_observed_namespaces_apart(capsys, snapshot):
    status, out, err = verify(capsys, "--snapshot", snapshot, "--flows", HUBBLE_LOG, "--flows", CALICO_LOG)
    assert status == 0, err
    assert "Observed in flow logs, no API evidence (judge whether they need GIM):" in out
    assert "team-a: WOULD BE BLOCKED under enforce (observed, no API evidence)" in out
    assert "analytics: WOULD BE BLOCKED under enforce (observed, no API evidence)" in out
    assert "    # - team-a" in out  # offered, commented, in the values to paste
    status, out, _ = verify(capsys, "--snapshot", snapshot, "--flows", CSV_LOG, "-o", "json")
    doc = json.loads(out)
    assert [n["namespace"] for n in doc["observedOnly"]] == ["team-a"]
    assert doc["observedOnly"][0]["blockedUnderEnforce"] is True


@pytest.mark.parametrize(
    "content, extra, message",
    [
        ("not a flow at all\n", (), "cannot tell the flow log format from line 1"),
        ('{"unrelated": true}\n', (), "cannot tell the flow log format"),
        (None, ("--flows-format", "csv"), "no line is a csv flow"),
    ],
    ids=["text", "json-of-something-else", "format-named-wrong"],
)
def test_cli_bad_flow_logs_exit_2_with_one_line_naming_the_file(
    capsys, snapshot, tmp_path, content, extra, message
):
    path = HUBBLE_LOG
    if content is not None:
        path = str(tmp_path / "flows.log")
        Path(path).write_text(content)
    status, out, err = verify(capsys, "--snapshot", snapshot, "--flows", path, *extra)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert path in err and message in err


def test_cli_flow_options_misused(capsys, snapshot, tmp_path):
    status, _, err = verify(capsys, "--snapshot", snapshot, "--flows-format", "hubble")
    assert status == 2 and "--flows-format" in err and "no --flows" in err
    status, _, err = verify(capsys, "--snapshot", snapshot, "--flows", str(tmp_path / "missing.jsonpb"))
    assert status == 2 and "missing.jsonpb: cannot read the flow log" in err
