"""Invariants of NetworkPolicy semantics, checked on random small clusters (hypothesis).

Only invariants that hold by the API reference are checked. Some plausible ones do not: adding a
policy can allow a blocked flow (an allow rule), adding a peer to a rule whose ``from`` was empty
narrows it (empty means everyone), adding an egress rule to a policy without policyTypes can isolate
the pod for egress. The tests below keep to the cases where monotonicity is true.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.netpol import simulator
from conformance.netpol.model import Cluster, ContainerPort, Namespace, Pod
from conformance.netpol.simulator import Simulator

NAMESPACES = ("n1", "n2", "n3")
OUTSIDE = ("10.0.0.200", "192.168.1.1")
CONNECTIONS = ((80, "TCP"), (81, "TCP"), (53, "UDP"))
PORTS = (ContainerPort(80, "TCP", "http"), ContainerPort(81, "TCP", "alt"), ContainerPort(53, "UDP", "dns"))

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

label_values = st.sampled_from(["a", "b"])
pod_labels = st.dictionaries(st.sampled_from(["app", "tier"]), label_values, max_size=2)
ns_labels = st.dictionaries(st.sampled_from(["team", "env"]), label_values, max_size=2)


@st.composite
def selectors(draw: st.DrawFn, keys: tuple[str, ...]) -> dict[str, Any]:
    """Often empty (match all), so that random policies allow flows as well as block them."""
    kind = draw(st.sampled_from(["empty", "empty", "labels", "expression"]))
    if kind == "empty":
        return {}
    if kind == "labels":
        return {"matchLabels": {draw(st.sampled_from(keys)): draw(label_values)}}
    op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
    expr: dict[str, Any] = {"key": draw(st.sampled_from(keys)), "operator": op}
    if op in ("In", "NotIn"):
        expr["values"] = draw(st.lists(label_values, min_size=1, max_size=2, unique=True))
    selector: dict[str, Any] = {"matchExpressions": [expr]}
    if draw(st.booleans()):
        selector["matchLabels"] = {draw(st.sampled_from(keys)): draw(label_values)}
    return selector


ip_blocks = st.sampled_from(
    [
        {"cidr": "10.0.0.0/24"},
        {"cidr": "10.0.0.0/24", "except": ["10.0.0.0/30"]},
        {"cidr": "10.0.0.0/29"},
        {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]},
        {"cidr": "192.168.0.0/16"},
    ]
)

peers = st.one_of(
    st.builds(lambda s: {"podSelector": s}, selectors(("app", "tier"))),
    st.builds(lambda s: {"namespaceSelector": s}, selectors(("team", "env", "kubernetes.io/metadata.name"))),
    st.builds(
        lambda n, p: {"namespaceSelector": n, "podSelector": p},
        selectors(("team", "env")),
        selectors(("app", "tier")),
    ),
    st.builds(lambda b: {"ipBlock": b}, ip_blocks),
)

port_entries = st.sampled_from(
    [
        {"port": 80},
        {"port": 80, "endPort": 81},
        {"port": 81, "protocol": "TCP"},
        {"port": "http"},
        {"port": "dns", "protocol": "UDP"},
        {"protocol": "UDP"},
        {"port": 53, "protocol": "UDP"},
        {},
        {"port": 81, "protocol": "SCTP"},
    ]
)


@st.composite
def rules(draw: st.DrawFn, peers_field: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    kind = draw(st.sampled_from(["absent", "empty", "some"]))
    if kind == "empty":
        rule[peers_field] = []
    elif kind == "some":
        rule[peers_field] = draw(st.lists(peers, min_size=1, max_size=2))
    if draw(st.booleans()):
        rule["ports"] = draw(st.lists(port_entries, min_size=1, max_size=2))
    return rule


@st.composite
def policies(draw: st.DrawFn, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": draw(selectors(("app", "tier")))}
    types = draw(st.sampled_from([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
    if types is not None:
        spec["policyTypes"] = types
    if draw(st.booleans()):
        spec["ingress"] = draw(st.lists(rules("from"), max_size=2))
    if draw(st.booleans()):
        spec["egress"] = draw(st.lists(rules("to"), max_size=2))
    return {"metadata": {"name": name, "namespace": draw(st.sampled_from(NAMESPACES))}, "spec": spec}


@st.composite
def clusters(draw: st.DrawFn, min_policies: int = 0, max_policies: int = 3) -> Cluster:
    c = Cluster()
    for ns in NAMESPACES[:2]:  # n3 is left out of the state: it only has its name label
        c.add_namespace(Namespace(ns, draw(ns_labels)))
    for i in range(draw(st.integers(2, 5))):
        ports = tuple(p for p in PORTS if draw(st.booleans()))
        ip = f"10.0.0.{i + 1}" if draw(st.booleans()) else f"10.0.1.{i + 1}"
        host_network = draw(st.sampled_from([False, False, False, True]))
        namespace = draw(st.sampled_from(NAMESPACES))
        c.pods.append(
            Pod(namespace, f"p{i}", draw(pod_labels), ip=ip, ports=ports, host_network=host_network)
        )
    c.policies = [draw(policies(f"np{i}")) for i in range(draw(st.integers(min_policies, max_policies)))]
    return c


def endpoints(c: Cluster) -> list[Pod | str]:
    return [*c.pods, *OUTSIDE]


def table(c: Cluster) -> dict[tuple[str, str, int, str], bool]:
    sim = Simulator(c)
    return {
        (_name(s), _name(d), port, proto): v.allowed
        for s, d, port, proto, v in sim.matrix(endpoints(c), endpoints(c), CONNECTIONS)
    }


def _name(x: Pod | str) -> str:
    return x if isinstance(x, str) else x.key


# ---------------------------------------------------------------- invariants


@SETTINGS
@given(clusters(max_policies=0))
def test_without_policies_everything_is_allowed(c: Cluster) -> None:
    assert all(table(c).values())


@SETTINGS
@given(clusters(), policies("selects-nobody"))
def test_a_policy_selecting_no_pod_changes_nothing(c: Cluster, extra: dict[str, Any]) -> None:
    before = table(c)
    extra["spec"]["podSelector"] = {"matchLabels": {"app": "no-such-app"}}
    c.policies.append(extra)
    assert table(c) == before


@SETTINGS
@given(clusters(min_policies=1), st.data())
def test_adding_a_rule_a_peer_or_a_port_never_blocks_an_allowed_flow(c: Cluster, data: st.DataObject) -> None:
    before = table(c)
    grown = copy.deepcopy(c)
    widen = data.draw(st.sampled_from(_widenings(grown)))
    widen(data)
    after = table(grown)
    assert all(after[k] for k, ok in before.items() if ok)


def _widenings(c: Cluster) -> list[Callable[[st.DataObject], None]]:
    """The changes that can only widen a policy: a rule; a peer or a port added to a non-empty list.

    An empty or absent peer or port list already matches everything (adding to it narrows it), and a
    first egress rule on a policy without policyTypes makes it isolate egress.
    """
    found: list[Callable[[st.DataObject], None]] = []
    for pol in c.policies:
        spec = pol["spec"]
        for direction, peers_field in (("ingress", "from"), ("egress", "to")):
            existing = spec.setdefault(direction, [])
            if direction == "ingress" or existing or "policyTypes" in spec:
                found.append(lambda data, rs=existing, f=peers_field: rs.append(data.draw(rules(f))))
            for rule in existing:
                if rule.get(peers_field):
                    found.append(lambda data, r=rule, f=peers_field: r[f].append(data.draw(peers)))
                if rule.get("ports"):
                    found.append(lambda data, r=rule: r["ports"].append(data.draw(port_entries)))
    return found


@SETTINGS
@given(clusters(), policies("added"))
def test_adding_a_policy_never_blocks_a_flow_between_already_isolated_pods(
    c: Cluster, extra: dict[str, Any]
) -> None:
    """A new policy only adds allowances to pods that were isolated already (rules are OR-ed)."""
    sim = Simulator(c)
    before = {
        k: v
        for k, v in table(c).items()
        if v
        and _isolated_or_outside(sim, c, k[1], "ingress")
        and _isolated_or_outside(sim, c, k[0], "egress")
    }
    c.policies.append(extra)
    after = table(c)
    assert all(after[k] for k in before)


def _isolated_or_outside(sim: Simulator, c: Cluster, who: str, direction: str) -> bool:
    return "/" not in who or bool(sim.isolating(c.pod(who), direction))


@SETTINGS
@given(clusters())
def test_verdict_is_ingress_and_egress_and_consistent_with_isolation(c: Cluster) -> None:
    sim = Simulator(c)
    for src, dst, _, _, v in sim.matrix(endpoints(c), endpoints(c), CONNECTIONS):
        assert v.allowed == (v.ingress.allowed and v.egress.allowed)
        for dv, pod, direction in ((v.ingress, dst, "ingress"), (v.egress, src, "egress")):
            isolating = sim.isolating(pod, direction) if isinstance(pod, Pod) else []
            assert dv.isolated == bool(isolating)
            if not dv.isolated:
                assert dv.allowed and dv.policy is None
            elif dv.allowed:
                assert dv.policy in isolating and dv.rule is not None and dv.policy in dv.reason
            else:
                assert dv.policy is None and all(key in dv.reason for key in isolating)


@SETTINGS
@given(clusters())
def test_matrix_agrees_with_verdict(c: Cluster) -> None:
    sim = Simulator(c)
    fresh = Simulator(c)
    rows = list(sim.matrix(endpoints(c), endpoints(c), [*CONNECTIONS, ("http", "TCP")]))
    n = len(endpoints(c))
    with_http = sum(1 for p in c.pods if p.named_port("http", "TCP"))
    assert len(rows) == len(CONNECTIONS) * n * (n - 1) + with_http * (n - 1)
    for src, dst, port, proto, v in rows:
        assert fresh.verdict(src, dst, port, proto) == v


@SETTINGS
@given(clusters())
def test_matrix_agrees_with_verdict_when_it_keeps_a_single_column(c: Cluster) -> None:
    # all pairs of thousands of pods have more distinct columns than matrix() keeps: the ones it
    # dropped are computed again, identically
    with patch.object(simulator, "COLUMNS_KEPT", 1):
        rows = list(Simulator(c).matrix(endpoints(c), endpoints(c), [*CONNECTIONS, ("http", "TCP")]))
    fresh = Simulator(c)
    for src, dst, port, proto, v in rows:
        assert fresh.verdict(src, dst, port, proto) == v


@SETTINGS
@given(clusters(), st.randoms(use_true_random=False))
def test_policy_order_does_not_matter(c: Cluster, rnd: random.Random) -> None:
    before = table(c)
    rnd.shuffle(c.policies)
    assert table(c) == before
