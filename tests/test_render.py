"""The reference rendering: the policies GIM's values must produce, and what they let through."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.errors import UserError
from conformance.gim.examples import smtp_egress_policy
from conformance.gim.render import (
    ALLOWED_NAMESPACES,
    DEFAULT_DENY,
    DRYRUN_ALLOW_ALL,
    LABELS,
    SAME_NAMESPACE,
    render,
)
from conformance.gim.values import NetpolValues
from conformance.netpol.k8s_schema import validate_network_policy
from conformance.netpol.model import Cluster, ContainerPort, Namespace, Pod
from conformance.netpol.simulator import Simulator

GIM = "gitguardian"
SMTP_POLICY = smtp_egress_policy()  # the documentation's extraPolicies example
# The documentation's three examples.
DOC_DRYRUN = NetpolValues(enabled=True, mode="dryrun", allowed_namespaces=("ingress-nginx", "monitoring"))
DOC_ENFORCE = replace(DOC_DRYRUN, mode="enforce")
DOC_SMTP = NetpolValues(
    enabled=True, mode="enforce", allowed_namespaces=("ingress-nginx",), extra_policies=(SMTP_POLICY,)
)
OUTSIDE = "203.0.113.9"
SMTP_RELAY = "10.0.0.25"


def names(policies: list[dict]) -> list[str]:
    return [p["metadata"]["name"] for p in policies]


def by_name(policies: list[dict], name: str) -> dict:
    (found,) = [p for p in policies if p["metadata"]["name"] == name]
    return found


# -- what is rendered ---------------------------------------------------------------------------------------


def test_disabled_renders_nothing_whatever_else_is_set() -> None:
    assert render(replace(DOC_SMTP, enabled=False), GIM) == []
    assert render(NetpolValues(), GIM) == []


def test_enforce_renders_default_deny_same_namespace_and_allowed_namespaces_in_that_order() -> None:
    assert names(render(DOC_ENFORCE, GIM)) == [DEFAULT_DENY, SAME_NAMESPACE, ALLOWED_NAMESPACES]


def test_dryrun_adds_the_allow_all_safety_net_for_ingress_and_egress() -> None:
    policies = render(DOC_DRYRUN, GIM)
    assert names(policies) == [DEFAULT_DENY, SAME_NAMESPACE, ALLOWED_NAMESPACES, DRYRUN_ALLOW_ALL]
    assert by_name(policies, DRYRUN_ALLOW_ALL)["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{}],
        "egress": [{}],
    }


def test_default_deny_isolates_ingress_of_every_pod_and_allows_nothing() -> None:
    spec = by_name(render(DOC_ENFORCE, GIM), DEFAULT_DENY)["spec"]
    assert spec == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_same_namespace_allows_from_pods_of_the_policy_namespace() -> None:
    spec = by_name(render(DOC_ENFORCE, GIM), SAME_NAMESPACE)["spec"]
    assert spec["podSelector"] == {}
    assert spec["ingress"] == [{"from": [{"podSelector": {}}]}]


def test_allowed_namespaces_match_on_the_metadata_name_label_in_the_given_order() -> None:
    spec = by_name(render(DOC_ENFORCE, GIM), ALLOWED_NAMESPACES)["spec"]
    assert spec["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/metadata.name",
                                "operator": "In",
                                "values": ["ingress-nginx", "monitoring"],
                            }
                        ]
                    }
                }
            ]
        }
    ]


def test_no_allowed_namespaces_policy_when_the_list_is_empty() -> None:
    assert ALLOWED_NAMESPACES not in names(render(replace(DOC_ENFORCE, allowed_namespaces=()), GIM))


@pytest.mark.parametrize("values", [DOC_DRYRUN, DOC_ENFORCE, DOC_SMTP, replace(DOC_SMTP, mode="dryrun")])
def test_every_rendered_object_is_a_valid_labelled_policy_in_the_gim_namespace(values: NetpolValues) -> None:
    for index, policy in enumerate(render(values, GIM)):
        validate_network_policy(policy, "rendered", f"[{index}]")
        assert policy["metadata"]["namespace"] == GIM
        assert LABELS.items() <= policy["metadata"]["labels"].items()
        assert policy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert policy["metadata"]["labels"]["app.kubernetes.io/part-of"] == "gitguardian"


def test_extra_policies_come_last_as_given_in_the_gim_namespace() -> None:
    second = copy.deepcopy(SMTP_POLICY)
    second["metadata"] = {"name": "b-policy", "namespace": GIM, "labels": {"team": "sec"}}
    values = replace(DOC_SMTP, extra_policies=(SMTP_POLICY, second))
    policies = render(values, GIM)
    assert names(policies) == [
        DEFAULT_DENY,
        SAME_NAMESPACE,
        ALLOWED_NAMESPACES,
        "allow-external-smtp",
        "b-policy",
    ]
    assert policies[3]["spec"] == SMTP_POLICY["spec"]
    assert policies[4]["metadata"]["labels"] == {"team": "sec", **LABELS}
    assert "namespace" not in SMTP_POLICY["metadata"]  # the values are not modified


def test_extra_policy_naming_another_namespace_is_an_error_naming_its_key() -> None:
    other = copy.deepcopy(SMTP_POLICY)
    other["metadata"]["namespace"] = "kube-system"
    values = replace(DOC_SMTP, extra_policies=(SMTP_POLICY, other), extra_policies_source="smtp.yaml")
    with pytest.raises(UserError) as caught:
        render(values, GIM)
    assert (caught.value.source, caught.value.key) == (
        "smtp.yaml",
        "networkPolicy.extraPolicies[1].metadata.namespace",
    )


def test_rendering_is_deterministic_and_outputs_are_independent() -> None:
    first = render(DOC_SMTP, GIM)
    first[0]["metadata"]["labels"]["x"] = "y"
    first[-1]["spec"]["podSelector"]["matchLabels"] = {"a": "b"}
    assert render(DOC_SMTP, GIM) == render(DOC_SMTP, GIM) != first


@pytest.mark.parametrize("namespace", ["", "Bad", "a_b", "x" * 64])
def test_invalid_target_namespace_is_a_user_error(namespace: str) -> None:
    with pytest.raises(UserError):
        render(DOC_ENFORCE, namespace)


# -- what the rendered policies let through (decided by the simulator) -------------------------------------


def cluster(policies: list[dict]) -> tuple[Simulator, dict[str, Pod]]:
    state = Cluster(policies=policies)
    pods: dict[str, Pod] = {}
    for i, ns in enumerate([GIM, "ingress-nginx", "monitoring", "other"]):
        state.add_namespace(Namespace(ns))
        pod = Pod(ns, f"{ns}-pod", {"app": ns}, ip=f"10.1.{i}.10", ports=(ContainerPort(8080, name="http"),))
        state.pods.append(pod)
        pods[ns] = pod
    return Simulator(state), pods


def allowed(sim: Simulator, src: Pod | str, dst: Pod | str, port: int = 8080) -> bool:
    return sim.verdict(src, dst, port).allowed


def test_enforce_blocks_ingress_from_namespaces_not_listed_and_from_outside() -> None:
    sim, pods = cluster(render(DOC_ENFORCE, GIM))
    gim = pods[GIM]
    assert allowed(sim, pods["ingress-nginx"], gim)
    assert allowed(sim, pods["monitoring"], gim)
    assert allowed(sim, Pod(GIM, "peer", ip="10.1.0.11"), gim)
    assert not allowed(sim, pods["other"], gim)
    assert not allowed(sim, OUTSIDE, gim)
    assert allowed(sim, gim, pods["other"])  # egress is not restricted by the built-in policies
    assert allowed(sim, pods["other"], pods["monitoring"])  # other namespaces are untouched


@pytest.mark.parametrize("values", [DOC_DRYRUN, replace(DOC_SMTP, mode="dryrun")])
def test_dryrun_blocks_nothing_even_with_egress_extra_policies(values: NetpolValues) -> None:
    sim, pods = cluster(render(values, GIM))
    gim = pods[GIM]
    for src in [*pods.values(), OUTSIDE]:
        if src is not gim:
            assert allowed(sim, src, gim)
    assert allowed(sim, gim, pods["other"])
    assert allowed(sim, gim, OUTSIDE, 443)


def test_documented_smtp_extra_policy_restricts_gim_egress_in_enforce() -> None:
    sim, pods = cluster(render(DOC_SMTP, GIM))
    gim = pods[GIM]
    assert allowed(sim, gim, SMTP_RELAY, 587)
    assert not allowed(sim, gim, SMTP_RELAY, 25)
    assert not allowed(sim, gim, OUTSIDE, 587)
    assert not allowed(sim, gim, pods["other"])
    assert allowed(sim, pods["ingress-nginx"], gim)
    assert not allowed(sim, pods["monitoring"], gim)  # only ingress-nginx is listed in this example


def test_disabled_blocks_nothing() -> None:
    sim, pods = cluster(render(replace(DOC_SMTP, enabled=False), GIM))
    assert allowed(sim, pods["other"], pods[GIM])
    assert allowed(sim, pods[GIM], OUTSIDE, 443)


def test_documentation_yaml_examples_render_as_their_values(tmp_path) -> None:
    from conformance.gim.values import load_values
    from tests.test_values import DOC_DRYRUN as DRYRUN_YAML
    from tests.test_values import DOC_ENFORCE as ENFORCE_YAML
    from tests.test_values import DOC_SMTP as SMTP_YAML

    for text, expected in [(DRYRUN_YAML, DOC_DRYRUN), (ENFORCE_YAML, DOC_ENFORCE), (SMTP_YAML, DOC_SMTP)]:
        path = tmp_path / "values.yaml"
        path.write_text(text)
        assert render(load_values([path]), GIM) == render(expected, GIM)


_LABEL = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    enabled=st.booleans(),
    mode=st.sampled_from(["dryrun", "enforce"]),
    allowed=st.lists(_LABEL, unique=True, max_size=5),
    namespace=_LABEL,
)
def test_any_valid_values_render_valid_uniquely_named_policies(
    enabled: bool, mode: str, allowed: list[str], namespace: str
) -> None:
    values = NetpolValues(
        enabled=enabled, mode=mode, allowed_namespaces=tuple(allowed), extra_policies=(SMTP_POLICY,)
    )
    policies = render(values, namespace)
    expected = 0 if not enabled else 3 + bool(allowed) + (mode == "dryrun")
    assert len(policies) == expected
    assert len(set(names(policies))) == len(policies)
    for index, policy in enumerate(policies):
        validate_network_policy(policy, "rendered", f"[{index}]")
        assert policy["metadata"]["namespace"] == namespace
