"""verify infers the values (mode, allowedNamespaces, extra policies) from the policies, by structure."""

from __future__ import annotations

import copy

import pytest

from conformance.netpol.model import NAME_LABEL
from conformance.verify.discovery import view_from_objects
from conformance.verify.inference import (
    ALLOWED_NAMESPACES,
    DEFAULT_DENY,
    SAFETY_NET,
    SAME_NAMESPACE,
    infer,
)
from tests import verify_snapshots as snap


def inferred(objects):
    view = view_from_objects([("snap.yaml", o) for o in objects], source="snap.yaml")
    return infer(view.cluster, snap.GIM)


def renamed(policies, prefix="acme-"):
    """The same policies as another chart might ship them: other names, no chart labels."""
    out = []
    for p in copy.deepcopy(policies):
        p["metadata"]["name"] = prefix + str(len(out))
        p["metadata"].pop("labels", None)
        out.append(p)
    return out


@pytest.mark.parametrize("mode", ["dryrun", "enforce"])
def test_reference_policies_give_back_their_values(mode):
    result = inferred(snap.cluster(mode, ["ingress-nginx", "monitoring"]))
    assert result.mode == mode
    assert result.allowed_namespaces == ["ingress-nginx", "monitoring"]
    assert result.extra_policies == []
    assert all(p.managed_by_chart for p in result.policies)
    roles = {r for p in result.policies for r in p.roles}
    expected = {DEFAULT_DENY, SAME_NAMESPACE, ALLOWED_NAMESPACES} | (
        {SAFETY_NET} if mode == "dryrun" else set()
    )
    assert roles == expected
    assert bool(result.safety_nets) == (mode == "dryrun")


def test_dryrun_safety_net_covering_egress_is_recognised():
    result = inferred(snap.cluster("dryrun"))
    assert result.safety_net_egress is True


def test_disabled_install_has_no_policy_and_is_disabled():
    result = inferred(snap.cluster(None))
    assert result.mode == "disabled"
    assert result.allowed_namespaces == []
    assert result.policies == []


def test_policies_are_recognised_by_structure_not_by_name():
    policies = renamed(snap.policies("dryrun", ["ingress-nginx"]))
    result = inferred(snap.gim_workloads() + snap.ingress_nginx() + policies)
    assert result.mode == "dryrun"
    assert result.allowed_namespaces == ["ingress-nginx"]
    assert result.extra_policies == []
    assert any("without the chart's labels" in n for n in result.notes)


def test_one_combined_policy_with_matchlabels_peers_is_understood():
    combined = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "gim", "namespace": snap.GIM},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {}},
                        {"namespaceSelector": {"matchLabels": {NAME_LABEL: "ingress-nginx"}}},
                        {"namespaceSelector": {"matchLabels": {NAME_LABEL: "monitoring"}}},
                    ]
                }
            ],
        },
    }
    result = inferred(snap.gim_workloads() + [combined])
    assert result.mode == "enforce"
    assert result.allowed_namespaces == ["ingress-nginx", "monitoring"]
    assert result.policies[0].roles == (SAME_NAMESPACE, ALLOWED_NAMESPACES)
    assert any("no default-deny" in n for n in result.notes)


def test_extra_policies_are_told_apart_from_the_defaults():
    result = inferred(snap.cluster("enforce", ["ingress-nginx"], extra=[snap.SMTP_EGRESS]))
    assert result.mode == "enforce"
    assert result.extra_policies == [f"{snap.GIM}/allow-external-smtp"]
    assert result.allowed_namespaces == ["ingress-nginx"]


def test_namespace_selector_on_another_label_is_not_guessed_into_allowed_namespaces():
    by_team = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-team-a", "namespace": snap.GIM},
        "spec": {
            "podSelector": {},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}],
        },
    }
    result = inferred(snap.cluster("enforce", ["ingress-nginx"]) + [by_team])
    assert result.allowed_namespaces == ["ingress-nginx"]
    assert f"{snap.GIM}/allow-team-a" in result.extra_policies
    note = next(n for n in result.notes if "allow-team-a" in n)
    assert "does not map to allowedNamespaces" in note and "team-a" in note


def test_only_user_policies_means_disabled_with_a_note():
    smtp = copy.deepcopy(snap.SMTP_EGRESS)
    smtp["metadata"]["namespace"] = snap.GIM
    result = inferred(snap.gim_workloads() + [smtp])
    assert result.mode == "disabled"
    assert result.extra_policies == [f"{snap.GIM}/allow-external-smtp"]
    assert any("none shaped like GIM's defaults" in n for n in result.notes)


def test_ingress_only_safety_net_with_egress_extra_is_flagged():
    policies = snap.policies("dryrun", ["ingress-nginx"], extra=[snap.SMTP_EGRESS])
    for p in policies:
        if p["metadata"]["name"] == "gim-netpol-dryrun-allow-all":
            p["spec"] = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}
    result = inferred(snap.gim_workloads() + snap.ingress_nginx() + policies)
    assert result.mode == "dryrun"
    assert result.safety_net_egress is False
    assert any("safety net allows ingress only" in n for n in result.notes)


def test_allowed_namespace_missing_from_the_cluster_is_noted():
    result = inferred(snap.gim_workloads() + snap.policies("enforce", ["istio-system"]))
    assert result.allowed_namespaces == ["istio-system"]
    assert any("do not exist in the cluster: istio-system" in n for n in result.notes)


def test_policies_of_other_namespaces_are_ignored():
    elsewhere = snap.policies("dryrun", ["x"], ns="team-a")
    result = inferred(snap.gim_workloads() + snap.unrelated() + elsewhere)
    assert result.mode == "disabled"


ALLOW_ALL_EGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "allow-all-egress", "namespace": snap.GIM},
    "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]},
}


def test_allow_all_egress_is_the_users_own_rule_under_enforce():
    result = inferred(snap.cluster("enforce", ["ingress-nginx"]) + [ALLOW_ALL_EGRESS])
    assert result.mode == "enforce"
    assert result.extra_policies == [f"{snap.GIM}/allow-all-egress"]


def test_allow_all_egress_beside_an_ingress_safety_net_is_part_of_it():
    policies = snap.policies("dryrun", ["ingress-nginx"])
    for p in policies:
        if p["metadata"]["name"] == "gim-netpol-dryrun-allow-all":
            p["spec"] = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}
    result = inferred(snap.gim_workloads() + policies + [ALLOW_ALL_EGRESS])
    assert result.mode == "dryrun"
    assert f"{snap.GIM}/allow-all-egress" in result.safety_nets
    assert result.safety_net_egress is True
