"""`gim-netpol render`: GIM's networkPolicy values in, a YAML stream of NetworkPolicies out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.commands.cli import main
from conformance.netpol.k8s_schema import validate_network_policy
from conformance.netpol.model import NAME_LABEL

DRYRUN = """\
networkPolicy:
  enabled: true
  mode: dryrun
  allowedNamespaces:
    - ingress-nginx
    - monitoring
"""
ENFORCE = "networkPolicy:\n  mode: enforce\n"
SMTP_EXTRA = """\
networkPolicy:
  enabled: true
  mode: enforce
  allowedNamespaces:
    - ingress-nginx
  extraPolicies:
    - apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: allow-external-smtp
      spec:
        podSelector: {}
        policyTypes:
          - Egress
        egress:
          - to:
              - ipBlock:
                  cidr: 10.0.0.0/24
            ports:
              - protocol: TCP
                port: 587
"""


def values_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def render_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["render", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def documents(out: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(out) if d is not None]


def allowed_namespaces(policies: list[dict[str, Any]]) -> set[str]:
    """The namespaces the policies let in by their name label (what `allowedNamespaces` promises)."""
    names: set[str] = set()
    for policy in policies:
        for rule in policy["spec"].get("ingress") or ():
            for peer in rule.get("from") or ():
                selector = peer.get("namespaceSelector") or {}
                if NAME_LABEL in (selector.get("matchLabels") or {}):
                    names.add(selector["matchLabels"][NAME_LABEL])
                for expr in selector.get("matchExpressions") or ():
                    if expr["key"] == NAME_LABEL and expr["operator"] == "In":
                        names.update(expr["values"])
    return names


def test_dryrun_values_print_valid_policies_in_the_namespace(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, out, err = render_cli(
        capsys, "--values", values_file(tmp_path, "v.yaml", DRYRUN), "--namespace", "gim"
    )
    assert (code, err) == (0, "")
    policies = documents(out)
    assert len(policies) >= 3
    # documents are separated by `---`, one per policy
    assert out.count("\n---\n") == len(policies) - 1
    for i, policy in enumerate(policies):
        validate_network_policy(policy, "stdout", f"[{i}]")  # what the API server would accept
        assert policy["kind"] == "NetworkPolicy"
        assert policy["metadata"]["namespace"] == "gim"
        assert policy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert policy["metadata"]["labels"]["app.kubernetes.io/part-of"] == "gitguardian"
    assert allowed_namespaces(policies) == {"ingress-nginx", "monitoring"}
    # dryrun's safety net opens ingress and egress to everything
    assert any(
        set(p["spec"].get("policyTypes", ())) == {"Ingress", "Egress"}
        and p["spec"].get("ingress") == [{}]
        and p["spec"].get("egress") == [{}]
        for p in policies
    )


def test_later_values_files_and_set_override_earlier_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    base = values_file(tmp_path, "base.yaml", DRYRUN)
    enforce = values_file(tmp_path, "enforce.yaml", ENFORCE)
    _, dryrun_out, _ = render_cli(capsys, "--values", base, "--namespace", "gim")
    code, out, _ = render_cli(capsys, "--values", base, "--values", enforce, "--namespace", "gim")
    assert code == 0
    # enforce removes the safety net and keeps the rest
    dryrun_names = {p["metadata"]["name"] for p in documents(dryrun_out)}
    enforce_names = {p["metadata"]["name"] for p in documents(out)}
    assert enforce_names < dryrun_names
    assert all(p["spec"].get("ingress") != [{}] for p in documents(out))

    code, out, _ = render_cli(
        capsys,
        "-f",
        base,
        "--set",
        "networkPolicy.mode=enforce",
        "--set",
        "networkPolicy.allowedNamespaces={istio-system}",
        "-n",
        "gitguardian",
    )
    assert code == 0
    policies = documents(out)
    assert {p["metadata"]["name"] for p in policies} == enforce_names
    assert allowed_namespaces(policies) == {"istio-system"}
    assert {p["metadata"]["namespace"] for p in policies} == {"gitguardian"}


def test_extra_policies_are_rendered_as_given_in_the_namespace(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, out, _ = render_cli(
        capsys, "--values", values_file(tmp_path, "v.yaml", SMTP_EXTRA), "--namespace", "gim"
    )
    assert code == 0
    smtp = [p for p in documents(out) if p["metadata"]["name"] == "allow-external-smtp"]
    assert len(smtp) == 1
    assert smtp[0]["metadata"]["namespace"] == "gim"
    assert smtp[0]["spec"] == yaml.safe_load(SMTP_EXTRA)["networkPolicy"]["extraPolicies"][0]["spec"]


def test_disabled_prints_only_a_comment(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    disabled = values_file(tmp_path, "v.yaml", "networkPolicy:\n  enabled: false\n  mode: enforce\n")
    for argv in (["--values", disabled], []):  # also with the chart's defaults alone
        code, out, _ = render_cli(capsys, *argv, "--namespace", "gim")
        assert code == 0
        assert out.strip().startswith("#") and len(out.strip().splitlines()) == 1
        assert documents(out) == []


def one_line_error(code: int, err: str) -> str:
    assert code == 2
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("gim-netpol: error: ")
    assert "Traceback" not in err
    return err


def test_a_typo_is_an_error_naming_the_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = values_file(tmp_path, "v.yaml", "networkPolicy:\n  enabled: true\n  mdoe: enforce\n")
    code, out, err = render_cli(capsys, "--values", path, "--namespace", "gim")
    err = one_line_error(code, err)
    assert path in err and "networkPolicy.mdoe" in err
    assert out == ""


def test_bad_namespace_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = values_file(tmp_path, "v.yaml", DRYRUN)
    err = one_line_error(*render_cli(capsys, "--values", path, "--namespace", "GIM_prod")[::2])
    assert "GIM_prod" in err
    missing = str(tmp_path / "missing.yaml")
    err = one_line_error(*render_cli(capsys, "--values", missing, "--namespace", "gim")[::2])
    assert missing in err


def test_namespace_is_required(capsys: pytest.CaptureFixture) -> None:
    code, _, err = render_cli(capsys)
    assert code == 2
    assert "--namespace" in err and "usage:" in err


def run_module(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *argv], capture_output=True, text=True, timeout=60, check=False
    )


def test_python_m_conformance_render(tmp_path: Path) -> None:
    path = values_file(tmp_path, "v.yaml", DRYRUN)
    done = run_module("render", "--values", path, "--set", "networkPolicy.mode=enforce", "--namespace", "gim")
    assert done.returncode == 0, done.stderr
    assert allowed_namespaces(documents(done.stdout)) == {"ingress-nginx", "monitoring"}

    done = run_module("render", "--values", path, "--set", "networkPolicy.mode=enfoce", "--namespace", "gim")
    assert done.returncode == 2
    assert done.stdout == ""
    one_line_error(done.returncode, done.stderr)
    assert "networkPolicy.mode" in done.stderr


def test_help_lists_the_commands(capsys: pytest.CaptureFixture) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "render" in out and "simulate" in out
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().err
    assert main(["rendr"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'rendr'" in err and "'simulate'" in err
