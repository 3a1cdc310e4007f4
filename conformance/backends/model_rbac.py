"""RBAC as a Kubernetes API server's authorizer applies it: what the model backend refuses, and how.

An API request is an ``ApiCall`` (verb, API group, resource and subresource, namespace, name). ``Rbac``
holds ClusterRoles, Roles and their bindings and answers whether a user may make a call, following the
RBAC documentation (kubernetes.io/docs/reference/access-authn-authz/rbac/, Kubernetes v1.34) and the
authorizer's rule matching (kubernetes plugin/pkg/auth/authorizer/rbac/rbac.go, ``RuleAllows``):

- a PolicyRule allows a call when its ``verbs``, ``apiGroups`` and ``resources`` each hold the call's value
  or ``*``; a subresource is named ``pods/exec`` (or ``*/exec``); a non-empty ``resourceNames`` also
  needs the call's object name (so never a list or a create, which have none);
- a ClusterRoleBinding grants its ClusterRole everywhere; a RoleBinding grants its Role, or a ClusterRole,
  in the binding's namespace only;
- subjects: a User by name, a ServiceAccount as ``system:serviceaccount:NS:NAME``, the Groups every
  ServiceAccount is in (``system:serviceaccounts``, ``system:serviceaccounts:NS``, ``system:authenticated``).

A refused call raises ``Forbidden`` with the message the API server writes (kubernetes v1.34
staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go ``forbiddenMessage``,
wrapped by apimachinery's ``errors.NewForbidden``): ``pods "x" is forbidden: User "system:serviceaccount:
ns:sa" cannot create resource "pods" in API group "" in the namespace "ns"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from conformance.backends.base import Forbidden
from conformance.netpol.model import K8sObject

# The kinds the backends read and write, as the API serves them: kind -> (API group, resource).
RESOURCES: dict[str, tuple[str, str]] = {
    "Namespace": ("", "namespaces"),
    "Pod": ("", "pods"),
    "Service": ("", "services"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
    "DaemonSet": ("apps", "daemonsets"),
    "Node": ("", "nodes"),
}


@dataclass(frozen=True, order=True)
class ApiCall:
    """One API request as the authorizer sees it. ``namespace`` is "" for a cluster-scoped request (a
    cluster-scoped kind, or a list across all namespaces)."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    @property
    def resource_path(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def anonymous(self) -> ApiCall:
        """The call without its object name (what a list of needs compares)."""
        return ApiCall(self.verb, self.group, self.resource, self.subresource, self.namespace)

    def forbidden_message(self, user: str) -> str:
        where = f"in the namespace {_q(self.namespace)}" if self.namespace else "at the cluster scope"
        reason = (
            f"User {_q(user)} cannot {self.verb} resource {_q(self.resource_path)} in API group"
            f" {_q(self.group)} {where}"
        )
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        named = f"{qualified} {_q(self.name)}" if self.name else qualified
        return f"{named} is forbidden: {reason}"

    def __str__(self) -> str:
        where = f"in namespace {self.namespace}" if self.namespace else "cluster-wide"
        group = f' (API group "{self.group}")' if self.group else ""
        return f"{self.verb} {self.resource_path}{group} {where}"


def _q(text: str) -> str:
    """Go's %q of a plain string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _holds(values: Iterable[str], wanted: str) -> bool:
    values = list(values or ())
    return "*" in values or wanted in values


def rule_allows(rule: Mapping, call: ApiCall) -> bool:
    """Whether one PolicyRule allows ``call`` (RuleAllows: verbs, apiGroups, resources, resourceNames)."""
    if not _holds(rule.get("verbs") or (), call.verb) or not _holds(rule.get("apiGroups") or (), call.group):
        return False
    resources = list(rule.get("resources") or ())
    # ResourceMatches: "*" is every resource and subresource; "*/exec" the exec subresource of any
    if not ("*" in resources or call.resource_path in resources or f"*/{call.subresource}" in resources):
        return False
    names = list(rule.get("resourceNames") or ())
    return not names or call.name in names


def service_account(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def _groups(user: str) -> set[str]:
    parts = user.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return {"system:serviceaccounts", f"system:serviceaccounts:{parts[2]}", "system:authenticated"}
    return {"system:authenticated"}


def _binds(binding: K8sObject, user: str) -> bool:
    groups = _groups(user)
    for subject in binding.get("subjects") or ():
        kind = subject.get("kind")
        if kind == "User" and subject.get("name") == user:
            return True
        if kind == "Group" and subject.get("name") in groups:
            return True
        account = service_account(subject.get("namespace", ""), subject.get("name", ""))
        if kind == "ServiceAccount" and account == user:
            return True
    return False


class Rbac:
    """The RBAC objects of a cluster (ClusterRole, Role, ClusterRoleBinding, RoleBinding) as they apply to
    ``user``: which rules hold where."""

    def __init__(self, objects: Iterable[K8sObject], user: str) -> None:
        self.user = user
        objects = [o for o in objects if isinstance(o, dict)]
        cluster_roles = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "ClusterRole"}
        roles = {
            (o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
            for o in objects
            if o.get("kind") == "Role"
        }
        # (namespace or "" for everywhere, rules)
        self.grants: list[tuple[str, list[Mapping]]] = []
        for binding in objects:
            kind = binding.get("kind")
            if kind not in ("ClusterRoleBinding", "RoleBinding") or not _binds(binding, user):
                continue
            ref = binding.get("roleRef") or {}
            namespace = "" if kind == "ClusterRoleBinding" else binding["metadata"].get("namespace", "")
            if ref.get("kind") == "ClusterRole":
                role = cluster_roles.get(ref.get("name"))
            else:  # a RoleBinding refers to a Role of its own namespace
                role = roles.get((namespace, ref.get("name")))
            if role is not None:
                self.grants.append((namespace, list(role.get("rules") or ())))

    def allows(self, call: ApiCall) -> bool:
        for namespace, rules in self.grants:
            if namespace and namespace != call.namespace:
                continue
            if any(rule_allows(rule, call) for rule in rules):
                return True
        return False

    def authorize(self, call: ApiCall) -> None:
        """Nothing, or ``Forbidden`` with the API server's message."""
        if not self.allows(call):
            raise Forbidden(call.forbidden_message(self.user))
