"""Infer the GIM values (mode, allowedNamespaces, extraPolicies) from the policies in the GIM namespace.

The real chart may name its policies differently from the reference renderer, so policies are
recognised by what they do, not by name:

- safety net (dryrun): selects every pod and has an ingress rule that matches everything;
- default deny: selects every pod, isolates ingress, allows nothing;
- same-namespace allow: selects every pod, allows ingress from ``podSelector: {}`` (own namespace);
- allowed namespaces: selects every pod, allows ingress from namespaceSelector peers that name
  namespaces by their ``kubernetes.io/metadata.name`` label (matchLabels, or an ``In`` expression).

A policy that is none of these is an extra policy (``networkPolicy.extraPolicies``). Whether a policy is
the chart's is read from what Helm itself records on every object it installs, not from a label a chart
may or may not set: Helm 3.2+ stamps the label ``app.kubernetes.io/managed-by: Helm`` and the
annotations ``meta.helm.sh/release-name`` / ``meta.helm.sh/release-namespace`` at install and upgrade
(helm/helm pkg/action/validate.go, ``setMetadataVisitor``; it refuses to adopt an object whose values
differ). ``helm template | kubectl apply`` leaves no annotations. Whatever cannot be mapped back to
values is said in ``notes`` rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.netpol.model import NAME_LABEL, Cluster, K8sObject, policy_key, policy_namespace
from conformance.netpol.selectors import matches as selector_matches

DISABLED, DRYRUN, ENFORCE = "disabled", "dryrun", "enforce"

SAFETY_NET = "safety-net"
DEFAULT_DENY = "default-deny"
SAME_NAMESPACE = "same-namespace"
ALLOWED_NAMESPACES = "allowed-namespaces"
EXTRA = "extra"
CORE_ROLES = (SAFETY_NET, DEFAULT_DENY, SAME_NAMESPACE, ALLOWED_NAMESPACES)

MANAGED_BY_LABEL, MANAGED_BY_HELM = "app.kubernetes.io/managed-by", "Helm"
RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"


@dataclass(frozen=True)
class HelmOwner:
    """What Helm recorded on an object: the release (None when only the managed-by label is there)."""

    release: str | None
    namespace: str | None

    def __str__(self) -> str:
        if self.release is None:
            return "Helm (managed-by label only: no release annotations)"
        return f"Helm release {self.release}" + (f" in {self.namespace}" if self.namespace else "")


def helm_owner(obj: K8sObject) -> HelmOwner | None:
    """The Helm release that installed ``obj``, or None when Helm's records are absent."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    release = annotations.get(RELEASE_NAME)
    if release:
        return HelmOwner(str(release), annotations.get(RELEASE_NAMESPACE))
    if labels.get(MANAGED_BY_LABEL) == MANAGED_BY_HELM:
        return HelmOwner(None, None)
    return None


@dataclass(frozen=True)
class PolicyRole:
    key: str  # namespace/name
    roles: tuple[str, ...]  # CORE_ROLES this policy plays, or (EXTRA,)
    owner: HelmOwner | None  # what Helm recorded on it; None: not installed by Helm
    detail: str  # one line: what the policy does

    @property
    def managed_by_chart(self) -> bool:
        return self.owner is not None

    @property
    def release(self) -> str | None:
        return self.owner.release if self.owner else None

    @property
    def is_extra(self) -> bool:
        return self.roles == (EXTRA,)


@dataclass
class Inference:
    """The values the GIM namespace's policies implement."""

    namespace: str
    mode: str
    allowed_namespaces: list[str]
    policies: list[PolicyRole]
    safety_net_egress: bool  # the safety net also allows all egress
    notes: list[str] = field(default_factory=list)

    @property
    def releases(self) -> list[str]:
        """The Helm releases that installed the GIM defaults (normally one)."""
        found = [p.release for p in self.policies if not p.is_extra and p.release]
        return sorted(set(found))

    @property
    def extra_policies(self) -> list[str]:
        return [p.key for p in self.policies if p.is_extra]

    @property
    def safety_nets(self) -> list[str]:
        return [p.key for p in self.policies if SAFETY_NET in p.roles]

    @property
    def enabled(self) -> bool:
        return self.mode != DISABLED


def selects_all(policy: K8sObject) -> bool:
    selector = (policy.get("spec") or {}).get("podSelector")
    return _empty_selector(selector)


def _empty_selector(selector: Any) -> bool:
    return not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions"))


def policy_types(policy: K8sObject) -> list[str]:
    """spec.policyTypes with the API's default: Ingress always, Egress when there are egress rules."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return list(types)
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def matches_everything(rule: Any) -> bool:
    """An ingress/egress rule with no peers and no ports: 'If this field is empty or missing, this rule
    matches all sources' (networking.k8s.io/v1 NetworkPolicyIngressRule.from, same for ports)."""
    if not isinstance(rule, dict):
        return False
    return not rule.get("from") and not rule.get("to") and not rule.get("ports")


def _rules(policy: K8sObject, direction: str) -> list[Any]:
    return list((policy.get("spec") or {}).get(direction) or [])


def namespace_names(selector: Any) -> list[str] | None:
    """The namespaces a namespaceSelector names by their name label, or None if it selects otherwise."""
    if not isinstance(selector, dict):
        return None
    labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if labels and not expressions and set(labels) == {NAME_LABEL}:
        return [str(labels[NAME_LABEL])]
    if expressions and not labels and len(expressions) == 1:
        expr = expressions[0]
        if expr.get("key") == NAME_LABEL and expr.get("operator") == "In" and expr.get("values"):
            return [str(v) for v in expr["values"]]
    return None


def _peer_kind(peer: Any) -> tuple[str, list[str]]:
    """('same-namespace', []), ('namespaces', names) or ('other', [])."""
    if not isinstance(peer, dict) or peer.get("ipBlock"):
        return "other", []
    if "namespaceSelector" not in peer:
        return ("same-namespace", []) if _empty_selector(peer.get("podSelector")) else ("other", [])
    names = namespace_names(peer.get("namespaceSelector"))
    if names is not None and _empty_selector(peer.get("podSelector")):
        return "namespaces", names
    return "other", []


def _classify(
    policy: K8sObject, cluster: Cluster, notes: list[str]
) -> tuple[tuple[str, ...], list[str], str]:
    """The policy's roles, the namespaces it allows by name, and a one-line description."""
    key = policy_key(policy)
    types = policy_types(policy)
    ingress, egress = _rules(policy, "ingress"), _rules(policy, "egress")
    if not selects_all(policy):
        return (EXTRA,), [], "selects some pods only"
    if "Ingress" in types and any(matches_everything(r) for r in ingress):
        covers = (
            "ingress and egress"
            if "Egress" in types and any(matches_everything(r) for r in egress)
            else "ingress"
        )
        return (SAFETY_NET,), [], f"allows all {covers} to every pod"
    if "Ingress" not in types and egress and all(matches_everything(r) for r in egress):
        return (SAFETY_NET,), [], "allows all egress from every pod"
    if egress or "Egress" in types:
        # The GIM defaults restrict ingress only; a policy restricting egress is the user's.
        return (EXTRA,), [], "restricts egress of every pod"
    if "Ingress" in types and not ingress:
        return (DEFAULT_DENY,), [], "denies all ingress to every pod"
    roles: list[str] = []
    allowed: list[str] = []
    for rule in ingress:
        if rule.get("ports"):
            return (EXTRA,), [], "allows ingress on some ports only"
        for peer in rule.get("from") or []:
            kind, names = _peer_kind(peer)
            if kind == "other":
                unmatched = _describe_other_peer(peer, cluster)
                notes.append(
                    f"{key}: a peer {unmatched} does not map to allowedNamespaces; policy treated as extra"
                )
                return (EXTRA,), [], "allows ingress from selected peers"
            if kind == "same-namespace" and SAME_NAMESPACE not in roles:
                roles.append(SAME_NAMESPACE)
            if kind == "namespaces":
                if ALLOWED_NAMESPACES not in roles:
                    roles.append(ALLOWED_NAMESPACES)
                allowed.extend(n for n in names if n not in allowed)
    if not roles:
        return (EXTRA,), [], "allows nothing it names"
    parts = []
    if SAME_NAMESPACE in roles:
        parts.append("its own namespace")
    if allowed:
        parts.append("namespaces " + ", ".join(allowed))
    return tuple(roles), allowed, "allows ingress from " + " and ".join(parts)


def _describe_other_peer(peer: Any, cluster: Cluster) -> str:
    if isinstance(peer, dict) and isinstance(peer.get("namespaceSelector"), dict):
        selector = peer["namespaceSelector"]
        matching = sorted(
            ns.name for ns in cluster.namespaces.values() if selector_matches(selector, ns.labels)
        )
        shown = ", ".join(matching) if matching else "none"
        return f"namespaceSelector {selector} (matches namespaces: {shown})"
    return str(peer)


def infer(cluster: Cluster, gim_namespace: str) -> Inference:
    """The values the policies of ``gim_namespace`` implement, with notes on what could not be inferred."""
    notes: list[str] = []
    policies = [p for p in cluster.policies if policy_namespace(p) == gim_namespace]
    roles: list[PolicyRole] = []
    allowed: list[str] = []
    for policy in sorted(policies, key=policy_key):
        kinds, names, detail = _classify(policy, cluster, notes)
        roles.append(PolicyRole(policy_key(policy), kinds, helm_owner(policy), detail))
        allowed.extend(n for n in names if n not in allowed)

    ingress_safety = [
        r for r in roles if SAFETY_NET in r.roles and _allows_all_ingress(_policy(cluster, r.key))
    ]
    if not ingress_safety:
        # An allow-all-egress policy is a dryrun safety net only beside an ingress one; otherwise it is
        # the user's own rule.
        roles = [
            PolicyRole(r.key, (EXTRA,), r.owner, r.detail) if SAFETY_NET in r.roles else r for r in roles
        ]
    core = [r for r in roles if not r.is_extra]
    safety = [r for r in roles if SAFETY_NET in r.roles]
    if not core:
        mode = DISABLED
        if roles:
            notes.append(
                f"{len(roles)} NetworkPolicies in {gim_namespace}, none shaped like GIM's defaults:"
                " networkPolicy.enabled looks false (they are listed as extra policies)"
            )
    else:
        mode = DRYRUN if safety else ENFORCE
    if mode != DISABLED and not any(DEFAULT_DENY in r.roles for r in core):
        notes.append("no default-deny policy found: ingress isolation comes from the allow policies alone")
    if mode != DISABLED and not any(SAME_NAMESPACE in r.roles for r in core):
        notes.append(
            f"no policy allows ingress from {gim_namespace} itself: GIM pods may not reach each other"
        )
    unowned = [r.key for r in core if not r.managed_by_chart]
    if unowned:
        notes.append(
            "shaped like GIM's defaults but not installed by Helm (no app.kubernetes.io/managed-by: Helm"
            f" label, no {RELEASE_NAME} annotation): created by hand? " + ", ".join(unowned)
        )
    releases = sorted({r.release for r in core if r.release})
    if len(releases) > 1:
        notes.append("GIM's default policies come from more than one Helm release: " + ", ".join(releases))
    safety_egress = bool(safety) and any(_covers_egress(cluster, r.key) for r in safety)
    if safety and not safety_egress and any(_restricts_egress(cluster, k) for k in _keys(roles, extra=True)):
        notes.append(
            "the safety net allows ingress only, but extra policies restrict egress: dryrun can block traffic"
        )
    missing = [n for n in allowed if n not in cluster.namespaces]
    if missing:
        notes.append("allowed namespaces that do not exist in the cluster: " + ", ".join(missing))
    return Inference(gim_namespace, mode, allowed, roles, safety_egress, notes)


def _keys(roles: list[PolicyRole], *, extra: bool) -> list[str]:
    return [r.key for r in roles if r.is_extra == extra]


def _policy(cluster: Cluster, key: str) -> K8sObject:
    return next(p for p in cluster.policies if policy_key(p) == key)


def _allows_all_ingress(policy: K8sObject) -> bool:
    return "Ingress" in policy_types(policy) and any(matches_everything(r) for r in _rules(policy, "ingress"))


def _covers_egress(cluster: Cluster, key: str) -> bool:
    policy = _policy(cluster, key)
    return "Egress" in policy_types(policy) and any(matches_everything(r) for r in _rules(policy, "egress"))


def _restricts_egress(cluster: Cluster, key: str) -> bool:
    policy = _policy(cluster, key)
    return "Egress" in policy_types(policy) and not any(
        matches_everything(r) for r in _rules(policy, "egress")
    )
