"""Alias bombs are refused by every YAML reader, as Helm's go-yaml refuses them; a few aliases still load.

The bomb is the one of the issue: nested aliases, eight levels of nine, about 500 bytes standing for
43 million strings. Before the guard, ``render --values`` with it ran past a minute and 650 MiB.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conformance.backends.base import BackendUnavailable
from conformance.backends.kind import read_kind_config
from conformance.backends.preflight import check_existing
from conformance.commands.cli import main
from conformance.errors import UserError
from conformance.netpol import yaml_guard

LEVELS = "abcdefgh"


def bomb_lines(fanout: int = 9, levels: str = LEVELS, item: str = "team-ns") -> list[str]:
    lines = [f"{levels[0]}: &{levels[0]} [" + ", ".join([item] * fanout) + "]"]
    for previous, level in zip(levels, levels[1:], strict=False):
        lines.append(f"{level}: &{level} [" + ", ".join([f"*{previous}"] * fanout) + "]")
    return lines


def values_bomb() -> str:
    last = LEVELS[-1]
    return "\n".join(
        [
            *bomb_lines(),
            "networkPolicy:",
            "  enabled: true",
            "  mode: enforce",
            f"  allowedNamespaces: *{last}",
            "",
        ]
    )


def list_bomb(kind: str) -> str:
    """A Kubernetes List whose items are the bomb (anchors under an ignored key, where a trick puts them)."""
    lines = ["apiVersion: v1", f"kind: {kind}", "metadata:", "  anchors:"]
    lines += ["    " + line for line in bomb_lines(item="{kind: Pod}")]
    lines += [f"items: *{LEVELS[-1]}", ""]
    return "\n".join(lines)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def one_error_line(capsys: pytest.CaptureFixture, path: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert path in err and "excessive aliasing" in err
    assert "Traceback" not in err
    return err


def test_the_bomb_is_about_500_bytes() -> None:
    assert 400 <= len(values_bomb()) <= 600


# --- each reader ---------------------------------------------------------------------------------


def test_values_with_an_alias_bomb_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, "values.yaml", values_bomb())
    assert main(["render", "--values", path, "--namespace", "gim"]) == 2
    one_error_line(capsys, path)


def test_manifests_with_an_alias_bomb_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, "rendered.yaml", list_bomb("List"))
    values = write(tmp_path, "values.yaml", "networkPolicy: {enabled: true, mode: enforce}\n")
    assert main(["plan", "--values", values, "--manifests", path]) == 2
    one_error_line(capsys, path)


def test_a_snapshot_with_an_alias_bomb_is_refused_by_simulate(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = write(tmp_path, "snap.yaml", list_bomb("List"))
    assert main(["simulate", path]) == 2
    one_error_line(capsys, path)


def test_a_snapshot_with_an_alias_bomb_is_refused_by_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = write(tmp_path, "snap.yaml", list_bomb("List"))
    assert main(["verify", "--gim-namespace", "gitguardian", "--snapshot", path]) == 2
    one_error_line(capsys, path)


def test_a_bomb_in_json_like_flow_style_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # {"k":*a}: every alias right after a colon, as JSON writes it
    levels = ['"a":&a {' + ",".join(f'"k{i}":"ns"' for i in range(9)) + "}"]
    for previous, level in zip(LEVELS, LEVELS[1:], strict=False):
        levels.append(f'"{level}":&{level} {{' + ",".join(f'"k{i}":*{previous}' for i in range(9)) + "}")
    text = '{"x":{' + ",".join(levels) + '},"networkPolicy":{"extraPolicies":*h}}\n'
    path = write(tmp_path, "values.yaml", text)
    assert main(["render", "--values", path, "--namespace", "gim"]) == 2
    one_error_line(capsys, path)


def test_a_bomb_in_a_later_document_of_a_stream_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"
    path = write(tmp_path, "snap.yaml", ns + "---\n" + list_bomb("PodList"))
    assert main(["simulate", path]) == 2
    one_error_line(capsys, path)


# --- what still loads --------------------------------------------------------------------------------


def test_values_with_a_few_aliases_load_as_the_same_values_written_out(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    aliased = write(
        tmp_path,
        "aliased.yaml",
        "shared: &allowed [ingress-nginx, monitoring]\n"
        "networkPolicy:\n  enabled: true\n  mode: enforce\n  allowedNamespaces: *allowed\n",
    )
    plain = write(
        tmp_path,
        "plain.yaml",
        "networkPolicy:\n  enabled: true\n  mode: enforce\n"
        "  allowedNamespaces: [ingress-nginx, monitoring]\n",
    )
    assert main(["render", "--values", aliased, "--namespace", "gim"]) == 0
    from_aliases = capsys.readouterr().out
    assert main(["render", "--values", plain, "--namespace", "gim"]) == 0
    assert from_aliases == capsys.readouterr().out
    assert "monitoring" in from_aliases


POD = "{{kind: Pod, metadata: {meta}, spec: {spec}, status: {{podIP: {ip}}}}}"


def test_a_snapshot_with_merge_keys_and_shared_objects_loads_as_written_out(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    spec = "{containers: [{name: c, ports: [{containerPort: 80}]}]}"
    header = "kind: List\napiVersion: v1\nitems:\n- {kind: Namespace, metadata: {name: x}}\n"
    aliased = write(
        tmp_path,
        "aliased.yaml",
        header
        + "- "
        + POD.format(
            meta="&meta {namespace: x, name: a, labels: {app: web}}", spec=f"&spec {spec}", ip="10.0.0.1"
        )
        + "\n- "
        + POD.format(meta="{<<: *meta, name: b}", spec="*spec", ip="10.0.0.2")
        + "\n",
    )
    plain = write(
        tmp_path,
        "plain.yaml",
        header
        + "- "
        + POD.format(meta="{namespace: x, name: a, labels: {app: web}}", spec=spec, ip="10.0.0.1")
        + "\n- "
        + POD.format(meta="{namespace: x, name: b, labels: {app: web}}", spec=spec, ip="10.0.0.2")
        + "\n",
    )
    assert main(["simulate", aliased, "-o", "json"]) == 0
    from_aliases = capsys.readouterr().out
    assert main(["simulate", plain, "-o", "json"]) == 0
    assert from_aliases == capsys.readouterr().out
    assert '"x/a"' in from_aliases and '"x/b"' in from_aliases


# --- the rule itself, against go-yaml's own limit cases ----------------------------------------------


def check(text: str) -> None:
    for node in yaml.compose_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        yaml_guard.check_aliasing(node, "doc.yaml")


def test_three_levels_of_ten_pass_and_four_are_refused() -> None:
    # go-yaml v3.0.4 decodes the first and refuses the second.
    check("\n".join(bomb_lines(fanout=10, levels="abc")))
    with pytest.raises(UserError, match="excessive aliasing"):
        check("\n".join(bomb_lines(fanout=10, levels="abcd")))


def test_a_large_document_without_aliases_passes() -> None:
    check("a: [" + ", ".join(["{a: 1}"] * 20_000) + "]\n")


def test_a_large_list_aliased_a_hundred_times_is_refused() -> None:
    # go-yaml's limit_test "1000kb of maps with 100 aliases", at a twentieth of the size.
    text = "{a: &a [" + ", ".join(["{a}"] * 12_800) + "], b: &b [" + ", ".join(["*a"] * 100) + "]}"
    with pytest.raises(UserError, match="excessive aliasing"):
        check(text)


def test_an_anchor_that_contains_itself_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, "values.yaml", "networkPolicy: &np {allowedNamespaces: [*np]}\n")
    assert main(["render", "--values", path, "--namespace", "gim"]) == 2
    err = capsys.readouterr().err.strip()
    assert path in err and "contains an alias to itself" in err and len(err.splitlines()) == 1


def test_a_kind_config_with_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kind.yaml",
        "\n".join(["kind: Cluster", "apiVersion: kind.x-k8s.io/v1alpha4", "x:"])
        + "\n"
        + "\n".join("  " + line for line in bomb_lines(item="{role: worker}"))
        + f"\nnodes: *{LEVELS[-1]}\n",
    )
    with pytest.raises(UserError, match="excessive aliasing") as info:
        read_kind_config(path)
    assert path in str(info.value)


def test_a_kubeconfig_with_an_alias_bomb_is_an_unusable_backend_in_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "config",
        "x:\n"
        + "\n".join("  " + line for line in bomb_lines(item="{name: ctx}"))
        + f"\ncontexts: *{LEVELS[-1]}\ncurrent-context: ctx\n",
    )
    with pytest.raises(BackendUnavailable) as info:
        check_existing(path, None)
    message = str(info.value)
    assert "\n" not in message and path in message and "excessive aliasing" in message
