"""The permissions ``gim-netpol verify`` needs in each mode, and the check it runs first: one
SelfSubjectAccessReview per permission, listing what is missing.

Modes (``MODES``):

- ``namespaced`` (the default live mode): list across the cluster on exactly the kinds verify reads and
  on DaemonSets (naming the CNI); in each probe namespace, create and delete of what the run creates
  there (pods, Services, NetworkPolicies) and exec in its client pods; in each allowed namespace it
  probes from (``--probe-allowed-namespaces``), create/delete of its one client pod and exec in it. No
  namespace is created or deleted; GIM's namespace is only listed. Derived from ``placement.planned_objects``.
- ``cluster-wide``: the run creates and deletes namespaces of its own (deploy/rbac-verify.yaml).
- ``read-only`` (``--no-probes``): the lists alone.

Exec goes over a WebSocket GET: API servers before 1.31 (feature gate
AuthorizePodWebsocketUpgradeCreatePermission, beta and on in 1.31) authorize it as ``get pods/exec``,
later ones as ``create pods/exec``; both are granted.

SelfSubjectAccessReview (authorization.k8s.io/v1) is allowed to every authenticated user by the
default ``system:basic-user`` ClusterRole, so the check itself needs no grant. Client calls follow
the kubernetes python client docs (docs/AuthorizationV1Api.md, create_self_subject_access_review).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from conformance.netpol.model import K8sObject
from conformance.verify import kinds
from conformance.verify.placement import is_client

MODES = ("namespaced", "cluster-wide", "read-only")


@dataclass(frozen=True, order=True)
class Permission:
    verb: str
    group: str  # "" for the core API group
    resource: str
    subresource: str = ""
    why: str = ""
    namespace: str = ""  # "" cluster-wide (a ClusterRole), else a Role in that namespace

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.verb, self.group, self.resource, self.subresource, self.namespace)

    @property
    def resource_path(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def __str__(self) -> str:
        group = f".{self.group}" if self.group else ""
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.verb} {self.resource_path}{group}{where}" + (f" ({self.why})" if self.why else "")


def _list(kind: kinds.Kind) -> Permission:
    return Permission("list", kind.group, kind.plural, why=kind.why)


# Read-only discovery of the whole cluster's state: list, never get (verify reads whole lists).
DISCOVERY: tuple[Permission, ...] = tuple(_list(k) for k in kinds.CORE)
# The optional kinds, needed only when the cluster serves their group.
OPTIONAL: tuple[Permission, ...] = tuple(_list(k) for k in kinds.OPTIONAL)
CNI = Permission("list", "apps", "daemonsets", why="naming the CNI from its DaemonSet")
EXEC_WHY = "agnhost connect in the probe clients"
OLD_EXEC_WHY = "the same exec on API servers before 1.31"
# Cluster-wide probing: namespaces of the run's own (labelled with its id) and what goes in them. RBAC
# cannot limit create/delete to labelled namespaces: verify only ever deletes namespaces carrying its label.
CLUSTER_WIDE: tuple[Permission, ...] = (
    Permission("create", "", "namespaces", why="the run's temporary namespaces"),
    Permission("delete", "", "namespaces", why="deleting them at the end, and `cleanup`"),
    Permission("create", "", "pods", why="probe clients, canary servers"),
    Permission("delete", "", "pods", why="the opt-in clients in allowed namespaces"),
    Permission("create", "", "services", why="the service-ip canary's Service"),
    Permission("create", "", "pods", "exec", why=EXEC_WHY),
    Permission("get", "", "pods", "exec", why=OLD_EXEC_WHY),
    Permission("create", "networking.k8s.io", "networkpolicies", why="the canaries' policies"),
    CNI,
)
WRITTEN = {
    "Pod": ("", "pods", "probe clients and canary servers"),  # (which of the two: see below)
    "Service": ("", "services", "the service-ip canary's Service"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies", "the canaries' policies"),
}


def namespaced_permissions(objects: Iterable[K8sObject]) -> list[Permission]:
    """What a namespaced run creating ``objects`` needs: create and delete of each kind in each namespace
    it creates one in, exec where it runs a client pod, and listing DaemonSets."""
    needed: dict[tuple, Permission] = {}
    for obj in objects:
        if obj.get("kind") not in WRITTEN:
            raise ValueError(f"a namespaced run creates no {obj.get('kind')}")
        group, resource, why = WRITTEN[obj["kind"]]
        if obj["kind"] == "Pod":
            why = "probe client pods" if is_client(obj) else "servers the canaries probe"
        namespace = obj["metadata"]["namespace"]
        wanted = [Permission(v, group, resource, why=why, namespace=namespace) for v in ("create", "delete")]
        if is_client(obj):
            wanted += [
                Permission("create", "", "pods", "exec", why=EXEC_WHY, namespace=namespace),
                Permission("get", "", "pods", "exec", why=OLD_EXEC_WHY, namespace=namespace),
            ]
        for p in wanted:  # one permission per key, saying every reason for it
            had = needed.get(p.key)
            if had is None:
                needed[p.key] = p
            elif p.why not in had.why:
                needed[p.key] = replace(had, why=f"{had.why}; {p.why}")
    return [CNI, *needed.values()]


def required_permissions(
    mode: str = "cluster-wide", *, groups: Iterable[str] | None = None, objects: Iterable[K8sObject] = ()
) -> list[Permission]:
    """What verify needs in ``mode``: discovery always; the optional kinds of the served ``groups`` (None:
    all of them); then what probing needs (namespaced: from the ``objects`` the run creates)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    served = None if groups is None else set(groups)
    needed = [*DISCOVERY, *(p for p in OPTIONAL if served is None or p.group in served)]
    if mode == "cluster-wide":
        needed += CLUSTER_WIDE
    elif mode == "namespaced":
        needed += namespaced_permissions(objects)
    return needed


def granted_by_rules(rules: Iterable[dict], namespace: str = "") -> set[tuple[str, str, str, str, str]]:
    """The (verb, group, resource, subresource, namespace) keys a role's rules grant (no wildcards)."""
    granted = set()
    for rule in rules:
        for group in rule.get("apiGroups") or [""]:
            for resource in rule.get("resources") or []:
                name, _, sub = resource.partition("/")
                for verb in rule.get("verbs") or []:
                    granted.add((verb, group, name, sub, namespace))
    return granted


def cluster_role(objects: Iterable[K8sObject]) -> K8sObject:
    return next(o for o in objects if o.get("kind") == "ClusterRole")


def access_review(permission: Permission) -> dict[str, Any]:
    """The SelfSubjectAccessReview body asking for ``permission`` (in its namespace, or cluster-wide)."""
    attributes = {"verb": permission.verb, "group": permission.group, "resource": permission.resource}
    if permission.subresource:
        attributes["subresource"] = permission.subresource
    if permission.namespace:
        attributes["namespace"] = permission.namespace
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


FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"'
    r' in API group "(?P<group>[^"]*)"'
    r'(?: in the namespace "(?P<namespace>[^"]+)"| at the cluster scope)'
)


def missing_rule(message: str) -> str | None:
    """The RBAC rule a 403 Forbidden message of the API server shows missing (its authorizer's format:
    kubernetes v1.34 apiserver responsewriters ``forbiddenMessage``), or None for another 403 (admission,
    a namespace being terminated)."""
    found = FORBIDDEN.search(message)
    if found is None:
        return None
    group, namespace = found["group"], found["namespace"]
    where = f"a Role in namespace {namespace}" if namespace else "the ClusterRole"
    return (
        f'missing RBAC rule {{apiGroups: ["{group}"], resources: [{found["resource"]}],'
        f" verbs: [{found['verb']}]}}"
        f" in {where} for {found['user']}"
    )
