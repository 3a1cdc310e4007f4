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
    """The same policies as a person might apply them: other names, no Helm records."""
    out = []
    for p in copy.deepcopy(policies):
        p["metadata"]["name"] = prefix + str(len(out))
        p["metadata"].pop("labels", None)
        p["metadata"].pop("annotations", None)
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
    assert any("not installed by Helm" in n and "acme-0" in n for n in result.notes)


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


def _helm_records(policies, *, labels=None, annotations=None):
    """The policies with only the given labels and annotations (what another chart, or Helm, left)."""
    out = copy.deepcopy(policies)
    for p in out:
        p["metadata"]["labels"] = dict(labels or {})
        p["metadata"]["annotations"] = dict(annotations or {})
    return out


def test_a_real_charts_policies_are_owned_by_the_helm_release_that_installed_them():
    # A chart that sets none of the reference rendering's labels: Helm's own records decide.
    policies = _helm_records(
        renamed(snap.policies("enforce", ["ingress-nginx"]), prefix="gitguardian-netpol-"),
        labels={"app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "gitguardian-2024.11.0"},
        annotations={"meta.helm.sh/release-name": "gg", "meta.helm.sh/release-namespace": snap.GIM},
    )
    result = inferred(snap.gim_workloads() + snap.ingress_nginx() + policies)
    assert result.mode == "enforce"
    assert all(p.managed_by_chart and p.release == "gg" for p in result.policies)
    assert result.releases == ["gg"]
    assert not any("Helm" in n for n in result.notes)


def test_the_reference_rendering_carries_helms_records():
    (policy, *_) = snap.policies("enforce", ["ingress-nginx"])
    assert policy["metadata"]["annotations"] == {
        "meta.helm.sh/release-name": "gim",
        "meta.helm.sh/release-namespace": snap.GIM,
    }
    assert policy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert inferred(snap.cluster("enforce", ["ingress-nginx"])).releases == ["gim"]


def test_part_of_label_alone_is_not_helm_ownership():
    policies = _helm_records(
        snap.policies("enforce", ["ingress-nginx"]), labels={"app.kubernetes.io/part-of": "gitguardian"}
    )
    result = inferred(snap.gim_workloads() + snap.ingress_nginx() + policies)
    assert not any(p.managed_by_chart for p in result.policies)
    assert any("not installed by Helm" in n for n in result.notes)


def test_managed_by_label_without_annotations_is_helm_with_no_release_name():
    # `helm template | kubectl apply`, or Helm before 3.2: the label, not the annotations.
    policies = _helm_records(
        snap.policies("enforce", ["ingress-nginx"]), labels={"app.kubernetes.io/managed-by": "Helm"}
    )
    result = inferred(snap.gim_workloads() + snap.ingress_nginx() + policies)
    assert all(p.managed_by_chart and p.release is None for p in result.policies)
    assert result.releases == []
    assert not any("not installed by Helm" in n for n in result.notes)


def test_defaults_from_two_releases_are_noted():
    first, second, *rest = snap.policies("enforce", ["ingress-nginx"])
    second = _helm_records(
        [second],
        labels={"app.kubernetes.io/managed-by": "Helm"},
        annotations={"meta.helm.sh/release-name": "gim-old", "meta.helm.sh/release-namespace": snap.GIM},
    )[0]
    result = inferred(snap.gim_workloads() + snap.ingress_nginx() + [first, second, *rest])
    assert result.releases == ["gim", "gim-old"]
    assert any("more than one Helm release: gim, gim-old" in n for n in result.notes)
