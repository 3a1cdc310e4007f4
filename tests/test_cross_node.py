"""Issue 22, item 5: every check crosses nodes where it can.

Which nodes can run the probe pods (kube-scheduler's filters: Ready, cordon, taints), the model's kind
nodes and its scheduler (topologySpreadConstraints), and the check that fails, in one line, when several
nodes could run the pods and none of its pod-IP flows crossed nodes; a single-node cluster passes and
says so once.
"""

from __future__ import annotations

from collections import Counter

import pytest

from conformance.backends.model import ModelBackend
from conformance.backends.model_faults import parse_faults
from conformance.backends.model_rbac import ApiCall
from conformance.backends.nodes import Node, Schedulable, Taint, node_from_object, schedulable, tolerates
from conformance.errors import UserError
from conformance.gim.values import NetpolValues
from conformance.netpol.model import ContainerPort
from conformance.probes import agnhost
from conformance.suite.fleet import Fleet
from conformance.suite.scenario import Scenario
from conformance.suite.topology import Topology
from tests.test_suite_plugin import run_suite

CONTROL_PLANE = "taint node-role.kubernetes.io/control-plane:NoSchedule"
CORDONED_DURING_SETUP = "cordoned=kind-worker2@0+10"  # the fleet is scheduled in the first seconds
ONE_TEST = ("-k", "gim_pods_reach_each_other")


# -- which nodes can run a pod -------------------------------------------------------------------------
def _node(name: str, *, ready: bool = True, cordoned: bool = False, taints: tuple[dict, ...] = ()) -> dict:
    """A Node as ``kubectl get node -o json`` prints it."""
    status = "True" if ready else "Unknown"
    return {
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"unschedulable": cordoned, "taints": list(taints)} if cordoned or taints else {},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": status}]
        },
    }


def test_the_nodes_a_probe_pod_can_run_on_are_those_kube_scheduler_lets_it():
    nodes = [
        node_from_object(o)
        for o in (
            _node("cp", taints=({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},)),
            _node("w1"),
            _node(
                "w2",
                cordoned=True,
                taints=({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},),
            ),
            _node("w3", ready=False),
            _node(
                "w4", taints=({"key": "gpu", "value": "yes", "effect": "PreferNoSchedule"},)
            ),  # a preference
            _node("w5", taints=({"key": "dedicated", "value": "db", "effect": "NoExecute"},)),
        )
    ]
    assert schedulable(nodes) == Schedulable(
        ("w1", "w4"),
        (
            ("cp", CONTROL_PLANE),
            ("w2", "cordoned (spec.unschedulable)"),
            ("w3", "NotReady"),
            ("w5", "taint dedicated=db:NoExecute"),
        ),
    )
    db = [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoExecute"}]
    assert "w5" in schedulable(nodes, db).nodes


@pytest.mark.parametrize(
    ("toleration", "taint", "tolerated"),
    [
        ({"key": "k", "operator": "Exists"}, Taint("k", "NoSchedule", "v"), True),
        ({"key": "k", "value": "v"}, Taint("k", "NoSchedule", "v"), True),  # operator Equal by default
        ({"key": "k", "value": "w"}, Taint("k", "NoSchedule", "v"), False),
        ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, Taint("k", "NoSchedule"), False),
        ({"operator": "Exists"}, Taint("anything", "NoExecute", "v"), True),  # empty key: every taint
        ({"key": "other", "operator": "Exists"}, Taint("k", "NoSchedule"), False),
    ],
)
def test_a_toleration_matches_a_taint_as_the_api_says(toleration, taint, tolerated):
    assert tolerates(toleration, taint) is tolerated


# -- the model's nodes and scheduler -------------------------------------------------------------------
def test_the_model_is_a_kind_cluster_of_a_tainted_control_plane_and_two_workers():
    backend = ModelBackend()
    assert [n.name for n in backend.nodes()] == ["kind-control-plane", "kind-worker", "kind-worker2"]
    assert backend.schedulable_nodes() == Schedulable(
        ("kind-worker", "kind-worker2"), (("kind-control-plane", CONTROL_PLANE),)
    )
    assert ApiCall("list", "", "nodes") in backend.cluster.calls, "listed as KubeBackend lists them"


def test_a_single_node_model_is_an_untainted_control_plane_as_kind_makes_it():
    backend = ModelBackend(nodes=1)
    assert backend.nodes() == [Node("kind-control-plane")]
    assert backend.schedulable_nodes() == Schedulable(("kind-control-plane",))


def _servers(namespace: str, count: int, run_id: str = "t") -> list[dict]:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    return [ns] + [
        agnhost.server_pod(namespace, f"s{i}", {"app": f"s{i}"}, (ContainerPort(8080),), run_id=run_id)
        for i in range(count)
    ]


def _placement(backend: ModelBackend, namespace: str) -> Counter:
    return Counter(p.node for p in backend.state([namespace]).pods)


def test_the_model_spreads_the_probe_pods_of_a_namespace_within_their_max_skew():
    backend = ModelBackend(nodes=4)  # a control plane and three workers
    backend.apply(_servers("a", 7))
    assert _placement(backend, "a") == {"kind-worker": 3, "kind-worker2": 2, "kind-worker3": 2}
    # Counted per namespace, as kube-scheduler counts them: a second namespace spreads on its own, its
    # first pods going to the least loaded nodes.
    backend.apply(_servers("b", 2))
    assert _placement(backend, "b") == {"kind-worker2": 1, "kind-worker3": 1}


def test_a_do_not_schedule_spread_counts_the_tainted_control_plane_unless_told_to_honour_taints():
    """nodeTaintsPolicy defaults to Ignore: the control plane's zero is the minimum, so a third pod would
    make a skew of 2 on either worker and stays Pending; Honor leaves the control plane out."""
    for policy, pending in (("Ignore", 1), ("Honor", 0)):
        backend = ModelBackend()
        objects = _servers("a", 3)
        for pod in objects[1:]:
            (constraint,) = pod["spec"]["topologySpreadConstraints"]
            constraint.update(whenUnsatisfiable="DoNotSchedule", nodeTaintsPolicy=policy)
        backend.apply(objects)
        unplaced = [p for p in backend.objects("Pod") if not p["spec"].get("nodeName")]
        assert len(unplaced) == pending, policy


def test_a_pod_no_node_can_take_stays_pending_without_an_ip_until_one_can():
    backend = ModelBackend(nodes=2, faults=parse_faults("cordoned=kind-worker@0+30"))
    backend.apply(_servers("a", 1))
    (pod,) = [p for p in backend.objects("Pod") if p["metadata"]["namespace"] == "a"]
    assert pod["status"]["phase"] == "Pending" and "podIP" not in pod["status"]
    assert {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"} in pod["status"][
        "conditions"
    ]
    assert backend.unready_pods(["a"]) == {"a/s0": None}, "may still become Ready: not a broken pod"
    backend.wait_ready(["a"], timeout_s=60)  # uncordoned at 30 s: scheduled, then Ready
    assert 30 <= backend.clock.now() < 40
    assert _placement(backend, "a") == {"kind-worker": 1}


def test_a_cordon_fault_on_a_node_the_model_lacks_is_refused_naming_the_option():
    with pytest.raises(UserError, match="--model-faults.*cordoned=kind-worker3.*kind-worker2"):
        ModelBackend(faults=parse_faults("cordoned=kind-worker3@0+10"))


# -- the check ----------------------------------------------------------------------------------------
def _checked(backend: ModelBackend, *, after_s: float = 0.0):
    fleet = Fleet(backend, Topology("run1", "gim", ("ingress-nginx", "monitoring"), ("not-allowed",)))
    fleet.setup()
    backend.clock.advance(after_s)
    topology = fleet.view(2)
    values = NetpolValues(enabled=True, mode="enforce", allowed_namespaces=topology.allowed_namespaces)
    sc = Scenario(backend, fleet, topology, values)
    sc.deploy()
    return sc.check("enforce")


def test_a_check_with_both_kinds_of_flow_passes_on_the_default_model():
    report = _checked(ModelBackend())
    assert report.ok, report.explain()
    summary = report.summary()
    assert summary["same_node"] > 0 and summary["cross_node"] > 0
    assert summary["schedulable_nodes"] == ["kind-worker", "kind-worker2"]
    assert summary["cross_node_problem"] == ""


def test_a_check_with_no_cross_node_flow_fails_in_one_line_when_several_nodes_could_run_the_pods():
    # kind-worker2 is cordoned while the fleet is scheduled, uncordoned before the check
    report = _checked(ModelBackend(faults=parse_faults(CORDONED_DURING_SETUP)), after_s=10)
    assert not report.mismatches, "the probes agree: the check fails for its nodes alone"
    assert not report.ok
    (line,) = report.explain().splitlines()
    assert line.startswith("enforce [model]: NO CROSS-NODE FLOW: 2 nodes can run the probe pods")
    assert "(kind-worker, kind-worker2)" in line
    assert "by node: kind-worker 8, kind-worker2 0" in line
    assert "likely cause: " in line and "topologySpreadConstraints" in line and "cordoned" in line
    assert report.summary()["cross_node"] == 0


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(lambda: ModelBackend(nodes=1), id="single-node"),
        pytest.param(
            lambda: ModelBackend(faults=parse_faults("cordoned=kind-worker2@0+1000")), id="cordoned"
        ),
    ],
)
def test_a_cluster_with_one_schedulable_node_passes_and_says_there_is_no_cross_node_path(backend):
    report = _checked(backend())
    assert report.ok, report.explain()
    assert report.summary()["cross_node"] == 0
    note = report.nodes.note()
    assert note.startswith("1 node can run the probe pods (") and "no cross-node path exists" in note


# -- as a user runs it ----------------------------------------------------------------------------------
def test_the_suite_fails_the_check_in_one_line_when_every_pod_landed_on_one_node():
    run = run_suite("--backend", "model", "--model-faults", CORDONED_DURING_SETUP, *ONE_TEST)
    assert run.returncode == 1, run.output
    assert "Traceback" not in run.output
    # the check's own line; pytest's short summary repeats it after "FAILED ...", whole where CI is set
    failures = [
        line
        for line in run.stdout.splitlines()
        if "NO CROSS-NODE FLOW: 2 nodes" in line and not line.startswith("FAILED ")
    ]
    assert len(failures) == 1 and failures[0].startswith("enforce: GIM to GIM [model]: "), run.stdout
    assert "0 cross-node, NO CROSS-NODE FLOW)" in run.stdout, "the summary line marks the check"


def test_the_suite_on_a_single_node_passes_and_says_so_once():
    run = run_suite("--backend", "model", "--model-nodes", "1", "-k", "enforce")
    assert run.returncode == 0, run.output
    notes = [line for line in run.stdout.splitlines() if line.startswith("nodes: ")]
    assert notes == [
        "nodes: 1 node can run the probe pods (kind-control-plane): no cross-node path exists, "
        "every pod-IP flow is same-node"
    ]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--model-nodes", "0"), "--model-nodes"),
        (("--model-faults", "cordoned=kind-worker2@0+10", "--model-nodes", "2"), "--model-faults"),
    ],
)
def test_bad_node_options_stop_the_run_in_one_line(args, named):
    from tests.test_suite_plugin import assert_stopped_with_one_line

    assert_stopped_with_one_line(run_suite("--backend", "model", *args), named)
