"""NetworkPolicy validation: the strict Kubernetes schema plus the API server's own checks, with key paths."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from conformance.errors import UserError
from conformance.netpol.k8s_schema import SCHEMA_VERSION, port_name_problem, validate_network_policy

KEY = "networkPolicy.extraPolicies[0]"


def make(**spec: Any) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p"},
        "spec": {"podSelector": {}, **spec},
    }


def rejected(obj: Any) -> UserError:
    with pytest.raises(UserError) as caught:
        validate_network_policy(obj, "values.yaml", KEY)
    assert caught.value.source == "values.yaml"
    return caught.value


VALID = [
    make(
        policyTypes=["Egress"],
        egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"port": 587}]}],
    ),
    make(),
    make(policyTypes=["Ingress"], ingress=[]),
    make(ingress=[{}]),
    make(
        podSelector={"matchLabels": {"app.kubernetes.io/name": "gim"}},
        policyTypes=["Ingress", "Egress"],
        ingress=[
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["a", "b"]}
                            ]
                        },
                        "podSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
                    },
                    {"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.1.0/24"]}},
                    {"ipBlock": {"cidr": "2001:db8::/32", "except": ["2001:db8::/64"]}},
                ],
                "ports": [
                    {"port": "http", "protocol": "TCP"},
                    {"port": 8000, "endPort": 9000, "protocol": "UDP"},
                    {"protocol": "SCTP"},
                ],
            }
        ],
        egress=[{"to": [{"podSelector": {"matchLabels": {"k": ""}}}]}],
    ),
]


@pytest.mark.parametrize("policy", VALID)
def test_valid_policies_pass_and_are_not_modified(policy: dict) -> None:
    before = copy.deepcopy(policy)
    validate_network_policy(policy, "values.yaml", KEY)
    assert policy == before


def test_a_namespace_in_metadata_is_allowed_when_valid() -> None:
    policy = make()
    policy["metadata"]["namespace"] = "gim"
    validate_network_policy(policy, "values.yaml", KEY)


@pytest.mark.parametrize(
    ("change", "key", "fragment"),
    [
        ({"apiVersion": "networking.k8s.io/v1beta1"}, f"{KEY}.apiVersion", "must be networking.k8s.io/v1"),
        ({"apiVersion": None}, f"{KEY}.apiVersion", "missing"),
        ({"kind": "Networkpolicy"}, f"{KEY}.kind", "must be NetworkPolicy"),
        ({"metadata": None}, f"{KEY}.metadata", "is required"),
        ({"metadata": {}}, f"{KEY}.metadata.name", "is required"),
        ({"metadata": {"name": "Allow_SMTP"}}, f"{KEY}.metadata.name", "DNS-1123 subdomain"),
        ({"metadata": {"name": "a" * 254}}, f"{KEY}.metadata.name", "DNS-1123 subdomain"),
        (
            {"metadata": {"name": "p", "namespace": "Other"}},
            f"{KEY}.metadata.namespace",
            "not a valid namespace",
        ),
        ({"spec": None}, f"{KEY}.spec", "is required"),
        (
            {"apiVersion": None, "apiversion": "networking.k8s.io/v1"},
            f"{KEY}.apiVersion",
            "a typo of 'apiVersion'",
        ),
        ({"metadata": {"nmae": "p"}}, f"{KEY}.metadata.name", "found 'nmae'"),
        ({"spec": None, "sepc": {}}, f"{KEY}.spec", "found 'sepc'"),
        ({"specs": {}}, f"{KEY}.specs", "did you mean 'spec'"),
        ({"metadata": {"name": "p", "lables": {}}}, f"{KEY}.metadata.lables", "did you mean 'labels'"),
        ({"metadata": {"name": "p", "labels": {"a": 1}}}, f"{KEY}.metadata.labels.a", "schema"),
    ],
)
def test_object_level_errors(change: dict, key: str, fragment: str) -> None:
    policy = make()
    policy.update(change)
    error = rejected(policy)
    assert error.key == key
    assert fragment in error.message


def test_not_a_mapping() -> None:
    error = rejected(["a"])
    assert error.key == KEY and "must be a NetworkPolicy object" in error.message


SPEC = f"{KEY}.spec"


@pytest.mark.parametrize(
    ("spec", "key", "fragment"),
    [
        # the strict schema
        ({"podSelector": None, "policyTypes": ["Ingress"]}, SPEC, "podSelector"),
        ({"podSelectr": {}}, f"{SPEC}.podSelectr", "did you mean 'podSelector'"),
        ({"policyTypes": "Ingress"}, f"{SPEC}.policyTypes", "schema"),
        (
            {"ingress": [{"ports": [{"port": 1.5}]}]},
            f"{SPEC}.ingress[0].ports[0].port",
            "not of type 'string' or 'integer'",
        ),
        ({"ingress": [{"ports": [{"port": 80.0}]}]}, f"{SPEC}.ingress[0].ports[0].port", "not a port number"),
        ({"ingress": [{"ports": [{"port": True}]}]}, f"{SPEC}.ingress[0].ports[0].port", "schema"),
        ({"ingress": [{"ports": [{"prot": "TCP"}]}]}, f"{SPEC}.ingress[0].ports[0].prot", "did you mean"),
        ({"egress": [{"from": []}]}, f"{SPEC}.egress[0].from", "unknown field"),
        (
            {"podSelector": {"matchLabels": {"app": 5}}},
            f"{SPEC}.podSelector.matchLabels.app",
            "schema",
        ),
        # the API server's checks
        (
            {"ingress": [{"ports": [{"protocol": "tcp"}]}]},
            f"{SPEC}.ingress[0].ports[0].protocol",
            "TCP, UDP, SCTP",
        ),
        ({"ingress": [{"ports": [{"port": 0}]}]}, f"{SPEC}.ingress[0].ports[0].port", "1-65535"),
        ({"egress": [{"ports": [{"port": 65536}]}]}, f"{SPEC}.egress[0].ports[0].port", "1-65535"),
        ({"ingress": [{"ports": [{"port": "HTTP"}]}]}, f"{SPEC}.ingress[0].ports[0].port", "port name"),
        (
            {"ingress": [{"ports": [{"port": 9000, "endPort": 8000}]}]},
            f"{SPEC}.ingress[0].ports[0].endPort",
            "greater than or equal",
        ),
        (
            {"ingress": [{"ports": [{"port": 9000, "endPort": 70000}]}]},
            f"{SPEC}.ingress[0].ports[0].endPort",
            "1-65535",
        ),
        (
            {"ingress": [{"ports": [{"port": "http", "endPort": 90}]}]},
            f"{SPEC}.ingress[0].ports[0].endPort",
            "non-numeric",
        ),
        ({"ingress": [{"ports": [{"endPort": 90}]}]}, f"{SPEC}.ingress[0].ports[0].endPort", "not specified"),
        ({"ingress": [{"from": [{}]}]}, f"{SPEC}.ingress[0].from[0]", "must specify a peer"),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
            f"{SPEC}.ingress[0].from[0]",
            "both ipBlock and another peer",
        ),
        (
            {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0"}}]}]},
            f"{SPEC}.egress[0].to[0].ipBlock.cidr",
            "CIDR",
        ),
        (
            {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]},
            f"{SPEC}.egress[0].to[0].ipBlock.cidr",
            "CIDR",
        ),
        (
            {"egress": [{"to": [{"ipBlock": {"cidr": ""}}]}]},
            f"{SPEC}.egress[0].to[0].ipBlock.cidr",
            "required",
        ),
        (
            {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.0.1.0/28"]}}]}]},
            f"{SPEC}.egress[0].to[0].ipBlock.except[0]",
            "strict subset",
        ),
        (
            {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.0.0.0/24"]}}]}]},
            f"{SPEC}.egress[0].to[0].ipBlock.except[0]",
            "strict subset",
        ),
        (
            {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["2001:db8::/64"]}}]}]},
            f"{SPEC}.egress[0].to[0].ipBlock.except[0]",
            "strict subset",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]}},
            f"{SPEC}.podSelector.matchExpressions[0].operator",
            "In, NotIn, Exists, DoesNotExist",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]}},
            f"{SPEC}.podSelector.matchExpressions[0].values",
            "must be specified",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}},
            f"{SPEC}.podSelector.matchExpressions[0].values",
            "may not be specified",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "a/b/c", "operator": "Exists"}]}},
            f"{SPEC}.podSelector.matchExpressions[0].key",
            "label key",
        ),
        (
            {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"-bad": "x"}}}]}]},
            f"{SPEC}.ingress[0].from[0].namespaceSelector.matchLabels.-bad",
            "label key",
        ),
        (
            {"ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "no spaces"}}}]}]},
            f"{SPEC}.ingress[0].from[0].podSelector.matchLabels.app",
            "label value",
        ),
        ({"policyTypes": ["ingress"]}, f"{SPEC}.policyTypes[0]", "Ingress, Egress"),
        ({"policyTypes": ["Ingress", "Egress", "Ingress"]}, f"{SPEC}.policyTypes", "more than two"),
    ],
)
def test_spec_errors_name_the_offending_field(spec: dict, key: str, fragment: str) -> None:
    policy = make()
    policy["spec"] = {"podSelector": {}, **spec}
    if "podSelector" in spec and spec["podSelector"] is None:
        del policy["spec"]["podSelector"]
    error = rejected(policy)
    assert error.key == key
    assert fragment in error.message


@pytest.mark.parametrize(
    ("name", "ok"),
    [("http", True), ("metrics-8080", True), ("a" * 15, True), ("a" * 16, False), ("HTTP", False),
     ("8080", False), ("a--b", False), ("-a", False), ("a-", False), ("", False)],
)  # fmt: skip
def test_port_names_follow_iana_svc_name(name: str, ok: bool) -> None:
    assert (port_name_problem(name) is None) is ok


def test_schema_version_is_pinned_and_shipped() -> None:
    from importlib import resources

    folder = (
        resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{SCHEMA_VERSION}-local-strict"
    )
    assert (folder / "networkpolicy-networking-v1.json").is_file()


def test_validation_is_cheap_after_the_first_call() -> None:
    # Relative timings, so that a loaded machine slows both alike: the first call loads and compiles the
    # 2 MB schema, later ones reuse it.
    from conformance.netpol import k8s_schema

    k8s_schema._validator.cache_clear()
    policy = VALID[0]
    start = time.perf_counter()
    validate_network_policy(policy, "values.yaml", KEY)
    cold = time.perf_counter() - start
    warm = []
    for _ in range(21):
        start = time.perf_counter()
        validate_network_policy(policy, "values.yaml", KEY)
        warm.append(time.perf_counter() - start)
    assert sorted(warm)[10] * 5 < cold
