"""The reference rendering of GIM's ``networkPolicy.*`` values: the documented contract as NetworkPolicies.

disabled -> nothing. enabled -> ingress to every pod of the GIM namespace denied except from pods of the
same namespace and of the namespaces in ``allowedNamespaces`` (matched on ``kubernetes.io/metadata.name``).
dryrun -> plus an allow-all safety net for ingress AND egress, since ``extraPolicies`` may isolate egress
and the documentation promises that dryrun blocks nothing. ``extraPolicies`` are rendered as given, in the
GIM namespace. Names are stable and the order is fixed: default-deny, same-namespace, allowed-namespaces,
dryrun safety net, then the extra policies in the order given.
"""

from __future__ import annotations

import copy

from conformance.errors import UserError
from conformance.gim.values import (
    ALLOWED_NAMESPACES,
    DEFAULT_DENY,
    DRYRUN_ALLOW_ALL,
    SAME_NAMESPACE,
    NetpolValues,
    is_dns1123_label,
)
from conformance.netpol.model import NAME_LABEL, K8sObject

API_VERSION = "networking.k8s.io/v1"

LABELS: dict[str, str] = {
    "app.kubernetes.io/managed-by": "Helm",
    "app.kubernetes.io/part-of": "gitguardian",
    "app.kubernetes.io/component": "network-policy",
}
RELEASE = "gim"  # the release name the suite installs the chart as (chart.helm_command's default)


def helm_annotations(release: str, namespace: str) -> dict[str, str]:
    """What ``helm install``/``upgrade`` records on every object it owns (Helm 3.2+, helm/helm
    pkg/action/validate.go setMetadataVisitor), beside the ``app.kubernetes.io/managed-by: Helm`` label."""
    return {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace}


def render(values: NetpolValues, namespace: str, release: str = RELEASE) -> list[K8sObject]:
    """The NetworkPolicies GIM's chart must create in ``namespace`` for ``values``, as Helm installs them
    as ``release`` (with its ownership label and annotations)."""
    if not is_dns1123_label(namespace):
        raise UserError(f"{namespace!r} is not a valid namespace name", source="--namespace")
    if not values.enabled:
        return []
    policies = [
        _policy(DEFAULT_DENY, namespace, {"podSelector": {}, "policyTypes": ["Ingress"]}),
        _policy(
            SAME_NAMESPACE,
            namespace,
            {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}]},
        ),
    ]
    if values.allowed_namespaces:
        selector = {
            "matchExpressions": [
                {"key": NAME_LABEL, "operator": "In", "values": list(values.allowed_namespaces)},
            ]
        }
        policies.append(
            _policy(
                ALLOWED_NAMESPACES,
                namespace,
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"namespaceSelector": selector}]}],
                },
            )
        )
    if values.mode == "dryrun":
        policies.append(
            _policy(
                DRYRUN_ALLOW_ALL,
                namespace,
                {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]},
            )
        )
    policies.extend(
        _extra(policy, namespace, values.extra_policies_source, index)
        for index, policy in enumerate(values.extra_policies)
    )
    for policy in policies:
        metadata = policy["metadata"]
        given = metadata.get("annotations") or {}
        metadata["annotations"] = {**given, **helm_annotations(release, namespace)}
    return policies


def _policy(name: str, namespace: str, spec: dict) -> K8sObject:
    return {
        "apiVersion": API_VERSION,
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
        "spec": spec,
    }


def _extra(policy: K8sObject, namespace: str, source: str, index: int) -> K8sObject:
    out = copy.deepcopy(policy)
    metadata = out.setdefault("metadata", {})
    given = metadata.get("namespace")
    if given is not None and given != namespace:
        raise UserError(
            f"names namespace {given!r}, but extra policies are rendered in the GIM namespace {namespace!r};"
            " remove metadata.namespace",
            source=source,
            key=f"networkPolicy.extraPolicies[{index}].metadata.namespace",
        )
    metadata["namespace"] = namespace
    # The chart's labels win: Helm needs managed-by: Helm to own the object.
    metadata["labels"] = {**(metadata.get("labels") or {}), **LABELS}
    return out
