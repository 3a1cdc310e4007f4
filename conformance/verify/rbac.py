"""The permissions ``gim-netpol verify`` needs (deploy/rbac-verify.yaml grants exactly these), and the
check it runs first: one SelfSubjectAccessReview per permission, listing what is missing.

SelfSubjectAccessReview (authorization.k8s.io/v1) is allowed to every authenticated user by the
default ``system:basic-user`` ClusterRole, so the check itself needs no grant. Client calls follow
the kubernetes python client docs (docs/AuthorizationV1Api.md, create_self_subject_access_review).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from conformance.netpol.model import K8sObject
from conformance.verify import kinds


@dataclass(frozen=True, order=True)
class Permission:
    verb: str
    group: str  # "" for the core API group
    resource: str
    subresource: str = ""
    why: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.verb, self.group, self.resource, self.subresource)

    def __str__(self) -> str:
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        group = f".{self.group}" if self.group else ""
        return f"{self.verb} {resource}{group}" + (f" ({self.why})" if self.why else "")


def _read(group: str, resource: str, why: str) -> list[Permission]:
    return [Permission(verb, group, resource, why=why) for verb in ("get", "list")]


# Read-only discovery of the whole cluster's state (nothing is written outside the run's namespaces).
DISCOVERY: tuple[Permission, ...] = tuple(p for k in kinds.CORE for p in _read(k.group, k.plural, k.why))
# The optional kinds, needed only when the cluster serves their group.
OPTIONAL: tuple[Permission, ...] = tuple(p for k in kinds.OPTIONAL for p in _read(k.group, k.plural, k.why))
# Probes: namespaces the run creates (labelled with its id) and the pods in them. RBAC cannot limit
# create/delete to labelled namespaces: verify only ever deletes namespaces carrying its run label.
PROBING: tuple[Permission, ...] = (
    Permission("create", "", "namespaces", why="the run's temporary namespaces"),
    Permission("delete", "", "namespaces", why="deleting them at the end, and `cleanup`"),
    Permission("create", "", "pods", why="probe clients and the canary's server"),
    Permission("delete", "", "pods", why="the opt-in clients in allowed namespaces"),
    # Exec goes over a WebSocket GET; API servers before 1.31 (feature gate
    # AuthorizePodWebsocketUpgradeCreatePermission) authorize it as "get", later ones as "create".
    Permission("create", "", "pods", "exec", why="agnhost connect in the clients"),
    Permission("get", "", "pods", "exec", why="exec over WebSocket on API servers before 1.31"),
    Permission("create", "networking.k8s.io", "networkpolicies", why="the canary's deny-all"),
    Permission("list", "", "events", why="why a probe pod is not ready"),
    Permission("list", "apps", "daemonsets", why="naming the CNI"),
)


def required_permissions(*, probing: bool = True, groups: Iterable[str] | None = None) -> list[Permission]:
    """What verify needs: discovery always; the optional kinds of the served ``groups`` (None: all of
    them, as deploy/rbac-verify.yaml grants); probing on a live run."""
    needed = list(DISCOVERY)
    served = None if groups is None else set(groups)
    needed += [p for p in OPTIONAL if served is None or p.group in served]
    if probing:
        needed += PROBING
    return needed


def granted_by_rules(rules: Iterable[dict]) -> set[tuple[str, str, str, str]]:
    """The (verb, group, resource, subresource) a ClusterRole's rules grant (no wildcards expected)."""
    granted = set()
    for rule in rules:
        for group in rule.get("apiGroups") or [""]:
            for resource in rule.get("resources") or []:
                name, _, sub = resource.partition("/")
                for verb in rule.get("verbs") or []:
                    granted.add((verb, group, name, sub))
    return granted


def cluster_role(objects: Iterable[K8sObject]) -> K8sObject:
    return next(o for o in objects if o.get("kind") == "ClusterRole")


def access_review(permission: Permission) -> dict[str, Any]:
    """The SelfSubjectAccessReview body asking for ``permission`` (cluster-wide)."""
    attributes = {"verb": permission.verb, "group": permission.group, "resource": permission.resource}
    if permission.subresource:
        attributes["subresource"] = permission.subresource
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }


def missing_permissions(
    review: Callable[[dict[str, Any]], bool], permissions: Iterable[Permission]
) -> list[Permission]:
    """The permissions ``review`` (one SelfSubjectAccessReview body -> allowed?) says are not granted."""
    return [p for p in permissions if not review(access_review(p))]


def api_review(api_client: Any) -> Callable[[dict[str, Any]], bool]:
    """``review`` for ``missing_permissions`` through the kubernetes client."""
    from kubernetes import client

    authz = client.AuthorizationV1Api(api_client)

    def review(body: dict[str, Any]) -> bool:
        attrs = body["spec"]["resourceAttributes"]
        request = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(**attrs)
            )
        )
        return bool(authz.create_self_subject_access_review(request).status.allowed)

    return review
