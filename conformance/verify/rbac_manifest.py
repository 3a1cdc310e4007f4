"""Permissions as the RBAC objects ``kubectl apply -f -`` takes, with a comment on what each rule is for.

Cluster-wide permissions become one ClusterRole and its ClusterRoleBinding; the permissions of each
namespace a Role and a RoleBinding there. Rules follow the RBAC API (rbac.authorization.k8s.io/v1
PolicyRule: apiGroups, resources, verbs; kubernetes.io/docs/reference/access-authn-authz/rbac/,
Kubernetes v1.34): one rule per API group and set of verbs, no wildcard.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from conformance.netpol.model import K8sObject
from conformance.verify.rbac import Permission

NAME = "gim-netpol-verify"
RBAC_API = "rbac.authorization.k8s.io/v1"
VERB_ORDER = ("get", "list", "create", "delete")


def subject(service_account: str | None = None, user: str | None = None) -> dict[str, str]:
    """The binding subject: ``NAMESPACE/NAME`` of a ServiceAccount, or a User name."""
    if user:
        return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}
    namespace, _, name = (service_account or "").partition("/")
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def _flow(items: Sequence[str]) -> str:
    return "[" + ", ".join(i or '""' for i in items) + "]"


def _rules(permissions: Sequence[Permission]) -> list[str]:
    """The ``rules:`` lines: resources with the same group and verbs share a rule; one comment line per
    resource saying what verify does with it."""
    verbs: dict[tuple[str, str], set[str]] = {}
    whys: dict[tuple[str, str], list[str]] = {}
    for p in permissions:
        key = (p.group, p.resource_path)
        verbs.setdefault(key, set()).add(p.verb)
        if p.why and p.why not in whys.setdefault(key, []):
            whys[key].append(p.why)
    rules: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), vs in verbs.items():
        ordered = tuple(v for v in VERB_ORDER if v in vs) + tuple(sorted(vs - set(VERB_ORDER)))
        rules.setdefault((group, ordered), []).append(resource)
    lines = ["rules:"]
    for (group, ordered), resources in rules.items():
        for resource in resources:
            lines.append(f"  # {resource}: {'; '.join(whys.get((group, resource), [])) or '-'}")
        lines += [
            f"  - apiGroups: {_flow([group])}",
            f"    resources: {_flow(resources)}",
            f"    verbs: {_flow(ordered)}",
        ]
    return lines


def _metadata(namespace: str = "") -> list[str]:
    lines = ["metadata:", f"  name: {NAME}"]
    if namespace:
        lines.append(f"  namespace: {namespace}")
    return [*lines, "  labels:", f"    app.kubernetes.io/name: {NAME}"]


def _binding(kind: str, role_kind: str, who: dict[str, str], namespace: str = "") -> list[str]:
    lines = [f"apiVersion: {RBAC_API}", f"kind: {kind}", *_metadata(namespace)]
    lines += ["roleRef:", "  apiGroup: rbac.authorization.k8s.io", f"  kind: {role_kind}", f"  name: {NAME}"]
    lines += ["subjects:", f"  - kind: {who['kind']}", f"    name: {who['name']}"]
    lines += [f"    {k}: {v}" for k, v in who.items() if k not in ("kind", "name")]
    return lines


def manifest(
    permissions: Sequence[Permission],
    who: dict[str, str],
    header: Sequence[str],
    namespaces: Sequence[K8sObject] = (),
) -> str:
    """The YAML stream: ``header`` as comments, ``namespaces`` (created once), the ClusterRole and its
    binding, then a Role and a RoleBinding per namespace that has permissions."""
    docs = [yaml.safe_dump(ns, sort_keys=False).rstrip("\n").splitlines() for ns in namespaces]
    cluster = [p for p in permissions if not p.namespace]
    if cluster:
        docs.append([f"apiVersion: {RBAC_API}", "kind: ClusterRole", *_metadata(), *_rules(cluster)])
        docs.append(_binding("ClusterRoleBinding", "ClusterRole", who))
    by_namespace: dict[str, list[Permission]] = {}
    for p in permissions:
        if p.namespace:
            by_namespace.setdefault(p.namespace, []).append(p)
    for namespace, perms in by_namespace.items():
        docs.append([f"apiVersion: {RBAC_API}", "kind: Role", *_metadata(namespace), *_rules(perms)])
        docs.append(_binding("RoleBinding", "Role", who, namespace))
    head = "".join(f"# {line}\n" if line else "#\n" for line in header)
    return head + "".join("---\n" + "\n".join(doc) + "\n" for doc in docs)
