"""`gim-netpol plan`: the objects a conformance run creates as a YAML stream, or its expected truth tables."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conformance.commands.cli import main
from conformance.gim.render import DRYRUN_ALLOW_ALL
from conformance.netpol.k8s_schema import validate_network_policy
from conformance.probes.agnhost import RUN_LABEL

ENFORCE = """\
networkPolicy:
  enabled: true
  mode: enforce
  allowedNamespaces: [ingress-nginx, monitoring]
"""
DRYRUN = ENFORCE.replace("enforce", "dryrun")
DISABLED = "networkPolicy:\n  enabled: false\n"


def plan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["plan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def values_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "values.yaml"
    path.write_text(text)
    return str(path)


def objects(capsys, *argv: str) -> list[dict]:
    code, out, err = plan(capsys, *argv)
    assert code == 0, err
    return [d for d in yaml.safe_load_all(out) if d]


def kinds(docs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for d in docs:
        out.setdefault(d["kind"], []).append(d)
    return out


# -- the YAML stream -----------------------------------------------------------------------------------
def test_plan_prints_namespaces_pods_services_and_policies(capsys):
    by_kind = kinds(objects(capsys))
    assert set(by_kind) == {"Namespace", "Pod", "Service", "NetworkPolicy"}
    namespaces = {n["metadata"]["name"] for n in by_kind["Namespace"]}
    # the documentation's example: GIM plus its two allowed namespaces, and one namespace not listed
    assert {"gitguardian", "ingress-nginx", "monitoring"} < namespaces
    for obj in by_kind["Pod"] + by_kind["Service"] + by_kind["NetworkPolicy"]:
        assert obj["metadata"]["namespace"] in namespaces, obj["metadata"]
    assert {p["metadata"]["namespace"] for p in by_kind["NetworkPolicy"]} == {"gitguardian"}


def test_namespaces_come_first_so_the_stream_applies_in_one_go(capsys):
    docs = objects(capsys)
    first_other = next(i for i, d in enumerate(docs) if d["kind"] != "Namespace")
    assert all(d["kind"] != "Namespace" for d in docs[first_other:])


def test_every_client_namespace_has_a_client_and_gim_has_servers_behind_services(capsys):
    by_kind = kinds(objects(capsys))
    pods_by_ns: dict[str, list[dict]] = {}
    for p in by_kind["Pod"]:
        pods_by_ns.setdefault(p["metadata"]["namespace"], []).append(p)
    assert set(pods_by_ns) == {n["metadata"]["name"] for n in by_kind["Namespace"]}
    servers = [p for p in pods_by_ns["gitguardian"] if any(c.get("ports") for c in p["spec"]["containers"])]
    assert servers
    for svc in by_kind["Service"]:
        selector = svc["spec"]["selector"]
        assert any(selector.items() <= p["metadata"]["labels"].items() for p in servers), svc["metadata"]


def test_namespaces_pods_and_services_carry_the_run_label(capsys):
    for obj in objects(capsys):
        if obj["kind"] != "NetworkPolicy":
            assert obj["metadata"]["labels"][RUN_LABEL] == "plan", obj["metadata"]


def test_policies_carry_the_run_label_too(capsys):
    for obj in kinds(objects(capsys))["NetworkPolicy"]:
        assert obj["metadata"]["labels"].get(RUN_LABEL) == "plan", obj["metadata"]


def test_policies_are_valid_network_policies(capsys):
    for policy in kinds(objects(capsys))["NetworkPolicy"]:
        validate_network_policy(policy, "plan", policy["metadata"]["name"])


# Pod Security Standards, "restricted" profile (Kubernetes v1.31 docs,
# https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted), plus the baseline
# fields it includes.
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def _restricted_violations(pod: dict) -> list[str]:
    spec = pod["spec"]
    pod_sc = spec.get("securityContext") or {}
    problems = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(field)
    for volume in spec.get("volumes") or []:
        if not set(volume) - {"name"} <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume}")
    containers = spec["containers"] + spec.get("initContainers", []) + spec.get("ephemeralContainers", [])
    for c in containers:
        sc = c.get("securityContext") or {}
        where = c["name"]
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation must be false")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            problems.append(f"{where}: runAsNonRoot must be true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{where}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile {seccomp}")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{where}: capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: adds {caps['add']}")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{where}: hostPort")
    return problems


def test_probe_pods_meet_pod_security_restricted(capsys):
    pods = kinds(objects(capsys))["Pod"]
    assert pods
    assert {p["metadata"]["name"]: _restricted_violations(p) for p in pods} == {
        p["metadata"]["name"]: [] for p in pods
    }


def test_the_restricted_check_catches_a_root_pod(capsys):
    """The check above is able to fail."""
    pod = kinds(objects(capsys))["Pod"][0]
    pod["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = False
    pod["spec"]["hostNetwork"] = True
    assert len(_restricted_violations(pod)) == 2


def test_gim_namespace_and_probe_image_options(capsys):
    docs = objects(capsys, "--gim-namespace", "gg", "--probe-image", "mirror.example/agnhost:2.52")
    assert "gg" in {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    assert {p["metadata"]["namespace"] for p in kinds(docs)["NetworkPolicy"]} == {"gg"}
    images = {c["image"] for p in kinds(docs)["Pod"] for c in p["spec"]["containers"]}
    assert images == {"mirror.example/agnhost:2.52"}


def test_values_decide_the_policies(capsys, tmp_path):
    dryrun = {
        p["metadata"]["name"]
        for p in kinds(objects(capsys, "--values", values_file(tmp_path, DRYRUN)))["NetworkPolicy"]
    }
    enforce = {
        p["metadata"]["name"]
        for p in kinds(objects(capsys, "--values", values_file(tmp_path, ENFORCE)))["NetworkPolicy"]
    }
    assert DRYRUN_ALLOW_ALL in dryrun and DRYRUN_ALLOW_ALL not in enforce
    assert "NetworkPolicy" not in kinds(objects(capsys, "--values", values_file(tmp_path, DISABLED)))


def test_values_name_the_client_namespaces(capsys, tmp_path):
    text = ENFORCE.replace("[ingress-nginx, monitoring]", "[istio-system]")
    docs = objects(capsys, "--values", values_file(tmp_path, text))
    namespaces = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    assert "istio-system" in namespaces and "ingress-nginx" not in namespaces


def test_set_overrides_values(capsys, tmp_path):
    docs = objects(capsys, "--values", values_file(tmp_path, ENFORCE), "--set", "networkPolicy.mode=dryrun")
    assert DRYRUN_ALLOW_ALL in {p["metadata"]["name"] for p in kinds(docs)["NetworkPolicy"]}


# -- --matrix --------------------------------------------------------------------------------------------
def _table_rows(text: str, title: str) -> dict[str, list[str]]:
    """Row label -> cells of the table under ``title``."""
    lines = text.splitlines()
    start = lines.index(title)
    rows: dict[str, list[str]] = {}
    for line in lines[start + 2 :]:
        parts = line.split()
        if not parts or parts[0] == "columns:":
            break
        rows[parts[0]] = parts[1:]
    return rows


def test_matrix_for_enforce_blocks_the_namespace_not_listed(capsys):
    code, out, err = plan(capsys, "--matrix")
    assert code == 0, err
    for via in ("pod", "service"):
        rows = _table_rows(out, f"expected under enforce: via {via} IP")
        assert set(rows) == {
            "gitguardian/worker",
            "ingress-nginx/client",
            "monitoring/client",
            "not-allowed/client",
        }
        assert rows.pop("not-allowed/client") == ["X"] * len(rows["gitguardian/worker"])
        assert all(set(cells) == {"."} for cells in rows.values()), rows


def test_matrix_columns_are_every_gim_port(capsys):
    _, out, _ = plan(capsys, "--matrix")
    docs = objects(capsys)
    ports = {
        f"gitguardian/{p['metadata']['name']}:{port['containerPort']}"
        for p in kinds(docs)["Pod"]
        if p["metadata"]["namespace"] == "gitguardian"
        for c in p["spec"]["containers"]
        for port in c.get("ports") or []
    }
    pod_table = out.split("via service IP")[0]
    assert ports and all(port in pod_table for port in ports)


def test_matrix_for_dryrun_blocks_nothing(capsys, tmp_path):
    code, out, err = plan(capsys, "--values", values_file(tmp_path, DRYRUN), "--matrix")
    assert code == 0, err
    assert "expected under dryrun: via pod IP" in out
    rows = _table_rows(out, "expected under dryrun: via pod IP")
    assert rows and all(set(cells) == {"."} for cells in rows.values())
    assert "X" not in out.replace("X blocked", "")


def test_matrix_for_disabled_blocks_nothing(capsys, tmp_path):
    code, out, _ = plan(capsys, "--values", values_file(tmp_path, DISABLED), "--matrix")
    assert code == 0
    rows = _table_rows(out, "expected under disabled: via pod IP")
    assert rows and all(set(cells) == {"."} for cells in rows.values())


# -- errors --------------------------------------------------------------------------------------------
def _one_line_error(capsys, *argv: str) -> str:
    code, out, err = plan(capsys, *argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gim-netpol: error:"), err
    return lines[0]


def test_manifests_without_values_is_an_error(capsys, tmp_path):
    manifests = tmp_path / "chart.yaml"
    manifests.write_text("")
    assert "--values" in _one_line_error(capsys, "--manifests", str(manifests))


def test_missing_values_file_is_an_error(capsys, tmp_path):
    missing = str(tmp_path / "nope.yaml")
    assert missing in _one_line_error(capsys, "--values", missing)


def test_bad_values_are_an_error_naming_the_key(capsys, tmp_path):
    path = values_file(tmp_path, ENFORCE.replace("mode: enforce", "mode: strict"))
    assert "networkPolicy.mode" in _one_line_error(capsys, "--values", path)
