"""GIM's networkPolicy values: read, merged and validated as Helm takes them; errors name file and key."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformance.errors import UserError
from conformance.gim.helm_yaml import read_yaml_document
from conformance.gim.values import NetpolValues, load_values, merge_values, parse_values

# The three examples of the product documentation (shared/seed/gim-network-policies.md).
DOC_DRYRUN = """\
networkPolicy:
  enabled: true
  mode: dryrun
  allowedNamespaces:
    - ingress-nginx
    - monitoring
"""
DOC_ENFORCE = DOC_DRYRUN.replace("mode: dryrun", "mode: enforce")
DOC_SMTP = """\
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


@pytest.fixture
def write(tmp_path: Path):
    def _write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    return _write


def error_of(files, sets=()) -> UserError:
    with pytest.raises(UserError) as caught:
        load_values(files, sets)
    return caught.value


# -- defaults and the documentation's examples -------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", "image: {tag: 1.2.3}\n", "networkPolicy:\n", "networkPolicy: {}\n", "---\n"]
)
def test_missing_or_empty_network_policy_block_gives_the_documented_defaults(write, text: str) -> None:
    values = load_values([write("v.yaml", text)])
    assert values == NetpolValues(enabled=False, mode="dryrun", allowed_namespaces=(), extra_policies=())
    assert not values.enforcing


def test_no_values_at_all_gives_defaults() -> None:
    assert load_values([]) == NetpolValues()


def test_documentation_dryrun_and_enforce_examples(write) -> None:
    dryrun = load_values([write("dryrun.yaml", DOC_DRYRUN)])
    enforce = load_values([write("enforce.yaml", DOC_ENFORCE)])
    assert (dryrun.enabled, dryrun.mode, dryrun.enforcing) == (True, "dryrun", False)
    assert (enforce.enabled, enforce.mode, enforce.enforcing) == (True, "enforce", True)
    assert dryrun.allowed_namespaces == enforce.allowed_namespaces == ("ingress-nginx", "monitoring")


def test_documentation_extra_policies_example(write) -> None:
    values = load_values([write("smtp.yaml", DOC_SMTP)])
    assert values.enforcing and values.allowed_namespaces == ("ingress-nginx",)
    (policy,) = values.extra_policies
    assert policy["metadata"]["name"] == "allow-external-smtp"
    assert policy["spec"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 587}]


def test_other_top_level_keys_of_a_full_gim_values_file_are_ignored(write) -> None:
    text = "postgres: {host: db}\nreplicas: 3\n" + DOC_ENFORCE
    assert load_values([write("full.yaml", text)]) == load_values([write("np.yaml", DOC_ENFORCE)])


# -- merging as helm -f a -f b, then --set ---------------------------------------------------------------


def test_later_files_override_earlier_ones_maps_merge_lists_are_replaced(write) -> None:
    base = write("a.yaml", DOC_ENFORCE)
    override = write("b.yaml", "networkPolicy:\n  mode: dryrun\n  allowedNamespaces: [monitoring-2]\n")
    values = load_values([base, override])
    assert (values.enabled, values.mode, values.allowed_namespaces) == (True, "dryrun", ("monitoring-2",))
    reverse = load_values([override, base])
    assert (reverse.mode, reverse.allowed_namespaces) == ("enforce", ("ingress-nginx", "monitoring"))


def test_null_in_a_later_file_restores_the_default(write) -> None:
    base = write("a.yaml", DOC_ENFORCE)
    values = load_values([base, write("b.yaml", "networkPolicy:\n  mode: null\n  allowedNamespaces: ~\n")])
    assert (values.enabled, values.mode, values.allowed_namespaces) == (True, "dryrun", ())
    assert load_values([base, write("c.yaml", "networkPolicy: null\n")]) == NetpolValues()


def test_set_applies_after_all_files(write) -> None:
    files = [write("a.yaml", DOC_DRYRUN), write("b.yaml", "networkPolicy: {mode: dryrun}\n")]
    values = load_values(files, ["networkPolicy.mode=enforce", "networkPolicy.allowedNamespaces={a,b}"])
    assert (values.mode, values.allowed_namespaces) == ("enforce", ("a", "b"))


def test_set_alone_and_set_null(write) -> None:
    values = load_values([], ["networkPolicy.enabled=true,networkPolicy.mode=enforce"])
    assert values.enforcing
    back = load_values([write("a.yaml", DOC_ENFORCE)], ["networkPolicy.mode=null"])
    assert back.mode == "dryrun" and back.enabled


def test_set_can_edit_one_field_of_an_extra_policy_from_a_file(write) -> None:
    values = load_values(
        [write("smtp.yaml", DOC_SMTP)], ["networkPolicy.extraPolicies[0].metadata.name=smtp"]
    )
    assert values.extra_policies[0]["metadata"]["name"] == "smtp"
    assert values.extra_policies[0]["spec"]["policyTypes"] == ["Egress"]


def test_values_from_stdin(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(DOC_ENFORCE))
    assert load_values(["-"]).enforcing


def test_merge_values_deep_merges_replaces_lists_deletes_nulls_and_copies() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1, "keep": {"x": 1}}
    override = {"a": {"c": [3], "e": 2}, "d": None, "keep": {"x": None}}
    merged = merge_values(base, override)
    assert merged == {"a": {"b": 1, "c": [3], "e": 2}, "keep": {}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1, "keep": {"x": 1}}
    merged["a"]["c"].append(4)
    assert override["a"]["c"] == [3]


# -- Helm's YAML dialect ---------------------------------------------------------------------------------


def test_yaml_is_read_as_helm_reads_it() -> None:
    text = textwrap.dedent(
        """\
        date: 2024-01-01
        short_yes: y
        short_no: N
        yes_: yes
        off_: off
        hex: 0x1F
        octal: 010
        octal_o: 0o17
        exp: 1e3
        eight: 08
        sexagesimal: 1:20
        equals: =
        underscore: 1_000
        on: 1
        """
    )
    doc = read_yaml_document(text, "v.yaml")
    assert doc == {
        "date": "2024-01-01",
        "short_yes": True,
        "short_no": False,
        "yes_": True,
        "off_": False,
        "hex": 31,
        "octal": 8,
        "octal_o": 15,
        "exp": 1000.0,
        "eight": 8.0,
        "sexagesimal": "1:20",
        "equals": "=",
        "underscore": 1000,
        "true": 1,
    }


def test_only_the_first_yaml_document_counts_as_in_helm() -> None:
    assert read_yaml_document("a: 1\n---\na: 2\n", "v.yaml") == {"a": 1}


@pytest.mark.parametrize(("literal", "expected"), [("yes", True), ("y", True), ("On", True), ("no", False)])
def test_yaml_1_1_booleans_are_accepted_for_enabled(write, literal: str, expected: bool) -> None:
    assert load_values([write("v.yaml", f"networkPolicy:\n  enabled: {literal}\n")]).enabled is expected


def test_date_like_namespace_stays_a_name(write) -> None:
    values = load_values([write("v.yaml", "networkPolicy:\n  allowedNamespaces: [2024-01-01]\n")])
    assert values.allowed_namespaces == ("2024-01-01",)


# -- validation errors: file and key path ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "key", "fragment"),
    [
        ("enabled: 'true'", "networkPolicy.enabled", "must be a boolean"),
        ("enabled: 1", "networkPolicy.enabled", "must be a boolean"),
        ("mode: Enforce", "networkPolicy.mode", "did you mean 'enforce'"),
        ("mode: dry-run", "networkPolicy.mode", "did you mean 'dryrun'"),
        ("mode: on", "networkPolicy.mode", "not the boolean true"),
        ("mdoe: enforce", "networkPolicy.mdoe", "did you mean 'mode'"),
        ("allowednamespaces: [a]", "networkPolicy.allowednamespaces", "did you mean 'allowedNamespaces'"),
        (
            "colour: blue",
            "networkPolicy.colour",
            "known keys: enabled, mode, allowedNamespaces, extraPolicies",
        ),
        ("allowedNamespaces: ingress-nginx", "networkPolicy.allowedNamespaces", "must be a list"),
        (
            "allowedNamespaces: [ok, Bad_NS]",
            "networkPolicy.allowedNamespaces[1]",
            "not a valid namespace name",
        ),
        ("allowedNamespaces: [a, b, a]", "networkPolicy.allowedNamespaces[2]", "already listed at [0]"),
        ("allowedNamespaces: [5]", "networkPolicy.allowedNamespaces[0]", "not the number 5"),
        ("allowedNamespaces: ['']", "networkPolicy.allowedNamespaces[0]", "not a valid namespace name"),
        (
            f"allowedNamespaces: [{'a' * 64}]",
            "networkPolicy.allowedNamespaces[0]",
            "not a valid namespace name",
        ),
        ("allowedNamespaces: [-a]", "networkPolicy.allowedNamespaces[0]", "not a valid namespace name"),
        ("extraPolicies: {}", "networkPolicy.extraPolicies", "must be a list"),
        ("extraPolicies: [x]", "networkPolicy.extraPolicies[0]", "must be a NetworkPolicy object"),
    ],
)
def test_invalid_values_name_the_file_and_key(write, block: str, key: str, fragment: str) -> None:
    path = write("values.yaml", "networkPolicy:\n  " + block + "\n")
    error = error_of([path])
    assert (error.source, error.key) == (path, key)
    assert fragment in error.message


def test_network_policy_must_be_a_mapping(write) -> None:
    path = write("values.yaml", "networkPolicy: true\n")
    error = error_of([path])
    assert (error.source, error.key) == (path, "networkPolicy")


def policy(name: str, spec: str = "podSelector: {}") -> str:
    return (
        "    - apiVersion: networking.k8s.io/v1\n"
        "      kind: NetworkPolicy\n"
        f"      metadata: {{name: {name}}}\n"
        f"      spec: {{{spec}}}\n"
    )


@pytest.mark.parametrize(
    ("policies", "key", "fragment"),
    [
        (policy("a") + policy("a"), "networkPolicy.extraPolicies[1].metadata.name", "already used by [0]"),
        (
            policy("x") + policy("gim-netpol-default-deny"),
            "networkPolicy.extraPolicies[1].metadata.name",
            "built-in",
        ),
        (policy("Bad_Name"), "networkPolicy.extraPolicies[0].metadata.name", "DNS-1123 subdomain"),
        (
            policy("a", "podSelector: {}, ingress: [{ports: [{port: 1.5}]}]"),
            "networkPolicy.extraPolicies[0].spec.ingress[0].ports[0].port",
            "",
        ),
        (
            policy("a", "podselector: {}"),
            "networkPolicy.extraPolicies[0].spec.podselector",
            "did you mean 'podSelector'",
        ),
    ],
)
def test_invalid_extra_policies_name_the_file_and_key(write, policies: str, key: str, fragment: str) -> None:
    path = write("values.yaml", "networkPolicy:\n  extraPolicies:\n" + policies)
    error = error_of([path])
    assert (error.source, error.key) == (path, key)
    assert fragment in error.message


def test_extra_policy_without_name(write) -> None:
    path = write(
        "values.yaml",
        "networkPolicy:\n  extraPolicies:\n    - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy,"
        " metadata: {}, spec: {podSelector: {}}}\n",
    )
    error = error_of([path])
    assert (error.source, error.key, error.message) == (
        path,
        "networkPolicy.extraPolicies[0].metadata.name",
        "is required",
    )


def test_error_names_the_file_that_set_the_bad_key(write) -> None:
    bad = write("bad.yaml", "networkPolicy:\n  allowedNamespaces: [UPPER]\n")
    good = write("good.yaml", "networkPolicy:\n  mode: enforce\n")
    error = error_of([bad, good])
    assert (error.source, error.key) == (bad, "networkPolicy.allowedNamespaces[0]")


def test_error_in_a_set_value_names_set(write) -> None:
    error = error_of([write("a.yaml", DOC_DRYRUN)], ["networkPolicy.mode=enfroce"])
    assert (error.source, error.key) == ("--set", "networkPolicy.mode")
    assert "did you mean 'enforce'" in error.message


def test_set_list_without_braces_is_explained(write) -> None:
    error = error_of([], ["networkPolicy.allowedNamespaces=ingress-nginx"])
    assert (error.source, error.key) == ("--set", "networkPolicy.allowedNamespaces")
    assert "{a,b}" in error.message


def test_set_editing_a_file_list_blames_both(write) -> None:
    path = write("a.yaml", "networkPolicy:\n  allowedNamespaces: [a, b]\n")
    error = error_of([path], ["networkPolicy.allowedNamespaces[1]=A"])
    assert (error.source, error.key) == (f"{path}, --set", "networkPolicy.allowedNamespaces[1]")


def test_bad_set_syntax_names_the_expression() -> None:
    error = error_of([], ["networkPolicy.mode"])
    assert (error.source, error.key) == ("--set", "networkPolicy.mode")


def test_values_file_that_is_not_a_mapping(write) -> None:
    path = write("list.yaml", "- networkPolicy\n")
    error = error_of([path])
    assert error.source == path and "must be a YAML mapping" in error.message


def test_bad_yaml_names_file_and_line(write) -> None:
    path = write("broken.yaml", "networkPolicy:\n  enabled: true\n  mode: [enforce\n")
    error = error_of([path])
    assert error.source == path
    assert "line 4" in error.message


def test_unreadable_values_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    error = error_of([missing])
    assert error.source == missing and "cannot read" in error.message
    error = error_of([str(tmp_path)])
    assert error.source == str(tmp_path)


def test_not_utf8_values_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"networkPolicy:\n  mode: \xe9\n")
    assert error_of([str(path)]).source == str(path)


def test_parse_values_validates_a_merged_document() -> None:
    doc = {"networkPolicy": {"enabled": True, "mode": "enforce", "allowedNamespaces": ["x"]}}
    assert parse_values(doc, "merged").enforcing
    with pytest.raises(UserError) as caught:
        parse_values({"networkPolicy": {"mode": "x"}}, "merged")
    assert (caught.value.source, caught.value.key) == ("merged", "networkPolicy.mode")


def test_cli_prints_a_values_error_as_one_line_and_exits_2(write) -> None:
    path = write("values.yaml", "networkPolicy:\n  mdoe: enforce\n")
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "render", "--values", path, "--namespace", "gim"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and path in lines[0] and "networkPolicy.mdoe" in lines[0]
    assert "Traceback" not in result.stderr
