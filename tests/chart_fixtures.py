"""A correct rendered GIM chart for two values profiles, and seeded defects of it: the suite's own proof.

``tests/fixtures/chart/rendered-PROFILE.yaml`` is what ``helm template gim CHART -n gitguardian -f
values-PROFILE.yaml`` prints for a chart that keeps the documented promises. Each ``Defect`` is a copy
of one of them that differs in ONE way a chart author could get wrong, with the promise the suite must
then report broken.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from conformance.gim.contract import (
    DRYRUN_BLOCKS_NOTHING,
    EXTRA_POLICIES,
    NOT_LISTED_BLOCKED,
    SAME_NAMESPACE,
    namespace_allowed,
)
from conformance.gim.values import load_values
from conformance.netpol.model import K8sObject
from conformance.netpol.snapshot import read_documents

FIXTURES = Path(__file__).parent / "fixtures" / "chart"
GIM_NAMESPACE = "gitguardian"  # what the fixtures were rendered for (helm template -n gitguardian)

# The chart's own NetworkPolicies, by role.
DENY_INGRESS = "gim-gitguardian-deny-ingress"
SAME_NAMESPACE_ALLOW = "gim-gitguardian-allow-same-namespace"
ALLOW_NAMESPACE_PREFIX = "gim-gitguardian-allow-ns-"
DRYRUN_ALLOW_ALL = "gim-gitguardian-dryrun-allow-all"
# The pod selector of every chart policy that isolates GIM's pods: the chart's selector labels.
GIM_POD_SELECTOR = {
    "matchLabels": {"app.kubernetes.io/name": "gitguardian", "app.kubernetes.io/instance": "gim"},
}
COMPONENT_LABEL = "app.kubernetes.io/component"


@dataclass(frozen=True)
class Profile:
    name: str
    values: Path
    rendered: Path


PROFILES: dict[str, Profile] = {
    name: Profile(name, FIXTURES / f"values-{name}.yaml", FIXTURES / f"rendered-{name}.yaml")
    for name in ("dryrun", "enforce")
}


def correct_documents(profile: str) -> list[K8sObject]:
    """A fresh copy of the correct rendered output of ``profile``."""
    return read_documents(str(PROFILES[profile].rendered))


def policies(docs: list[K8sObject]) -> dict[str, K8sObject]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == "NetworkPolicy"}


def extra_policy_names(profile: str) -> list[str]:
    return [p["metadata"]["name"] for p in load_values([PROFILES[profile].values]).extra_policies]


def _find(docs: list[K8sObject], name: str) -> K8sObject:
    found = policies(docs).get(name)
    if found is None:  # the fixture changed under the defect: it must not silently become a no-op
        raise LookupError(f"the correct chart has no NetworkPolicy {name}")
    return found


def _without(docs: list[K8sObject], names: set[str]) -> list[K8sObject]:
    missing = names - set(policies(docs))
    if missing:
        raise LookupError(f"the correct chart has no NetworkPolicy {', '.join(sorted(missing))}")
    return [d for d in docs if not (d.get("kind") == "NetworkPolicy" and d["metadata"]["name"] in names)]


# -- the defects -------------------------------------------------------------------------------------------


def safety_net_ingress_only(docs: list[K8sObject]) -> list[K8sObject]:
    """The dryrun allow-all covers ingress only: the SMTP extraPolicy then cuts GIM's other egress."""
    spec = _find(docs, DRYRUN_ALLOW_ALL)["spec"]
    spec["policyTypes"] = ["Ingress"]
    del spec["egress"]
    return docs


def allowed_namespace_wrong_label(docs: list[K8sObject]) -> list[K8sObject]:
    """The ingress-nginx rule matches ``name: ingress-nginx``, a label namespaces do not carry."""
    rule = _find(docs, ALLOW_NAMESPACE_PREFIX + "ingress-nginx")["spec"]["ingress"][0]
    rule["from"][0]["namespaceSelector"] = {"matchLabels": {"name": "ingress-nginx"}}
    return docs


def no_same_namespace_allow(docs: list[K8sObject]) -> list[K8sObject]:
    return _without(docs, {SAME_NAMESPACE_ALLOW})


def allow_all_left_under_enforce(docs: list[K8sObject]) -> list[K8sObject]:
    """The enforce output still holds the dryrun safety net, exactly as the dryrun output renders it."""
    safety_net = copy.deepcopy(_find(correct_documents("dryrun"), DRYRUN_ALLOW_ALL))
    last_policy = max(i for i, d in enumerate(docs) if d.get("kind") == "NetworkPolicy")
    return [*docs[: last_policy + 1], safety_net, *docs[last_policy + 1 :]]


def isolation_partial(docs: list[K8sObject]) -> list[K8sObject]:
    """The chart's shared selector helper selects only the nginx component: the other pods stay open."""
    changed = 0
    for policy in policies(docs).values():
        selector = policy["spec"]["podSelector"]
        if selector == GIM_POD_SELECTOR:
            selector["matchExpressions"] = [{"key": COMPONENT_LABEL, "operator": "In", "values": ["nginx"]}]
            changed += 1
    if not changed:
        raise LookupError("the correct chart has no policy selecting GIM's pods by the chart's selector")
    return docs


def extra_policies_dropped(docs: list[K8sObject]) -> list[K8sObject]:
    return _without(docs, set(extra_policy_names("enforce")))


@dataclass(frozen=True)
class Defect:
    name: str
    profile: str  # the values profile whose correct output it breaks
    promise: str  # the documented promise the suite must report broken
    change: Callable[[list[K8sObject]], list[K8sObject]]

    @property
    def values(self) -> Path:
        return PROFILES[self.profile].values

    def documents(self) -> list[K8sObject]:
        return self.change(correct_documents(self.profile))

    def write(self, directory: Path) -> Path:
        """The defective manifests as a ``helm template`` output file in ``directory``."""
        path = directory / f"{self.name}.yaml"
        path.write_text(yaml.safe_dump_all(self.documents(), sort_keys=False), encoding="utf-8")
        return path


DEFECTS: dict[str, Defect] = {
    d.name: d
    for d in (
        Defect("dryrun-safety-net-ingress-only", "dryrun", DRYRUN_BLOCKS_NOTHING, safety_net_ingress_only),
        Defect(
            "allowed-ns-wrong-label",
            "enforce",
            namespace_allowed("ingress-nginx"),
            allowed_namespace_wrong_label,
        ),
        Defect("no-same-namespace-allow", "enforce", SAME_NAMESPACE, no_same_namespace_allow),
        Defect("allow-all-left-under-enforce", "enforce", NOT_LISTED_BLOCKED, allow_all_left_under_enforce),
        Defect("isolation-partial", "enforce", NOT_LISTED_BLOCKED, isolation_partial),
        Defect("extra-policies-dropped", "enforce", EXTRA_POLICIES, extra_policies_dropped),
    )
}
