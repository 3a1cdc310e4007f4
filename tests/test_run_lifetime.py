"""Issue 8, defect 8: under xdist every worker shares one run id; the first worker to finish must not
delete the namespaces another is still testing. Each worker deletes what it created; the last one out
deletes the run's other leftovers (a crashed worker's); what cannot be deleted is named, with the
command that removes it.
"""

from __future__ import annotations

from conformance.backends.factory import leftovers_line, run_lifetime
from conformance.backends.model import ModelBackend, ModelCluster
from conformance.backends.model_faults import Faults
from conformance.probes.agnhost import RUN_LABEL

RUN = "run8abcd"
OPTIONS = {"kubeconfig": "/tmp/kc", "context": "prod"}


def _namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {RUN_LABEL: RUN}}}


def _phase(cluster: ModelCluster, name: str) -> str | None:
    cluster.api()
    return cluster.phase(name)


def test_two_workers_of_unequal_length_each_delete_only_their_own(tmp_path):
    cluster = ModelCluster()
    gw0, gw1 = ModelBackend(cluster=cluster), ModelBackend(cluster=cluster)
    crashed = ModelBackend(cluster=cluster)  # a worker that died without cleaning up
    crashed.apply([_namespace("crashed-ns")])
    with run_lifetime(gw1, RUN, tmp_path, OPTIONS):
        gw1.apply([_namespace("long-test")])
        with run_lifetime(gw0, RUN, tmp_path, OPTIONS):
            gw0.apply([_namespace("short-test")])
        # gw0 finished first: its namespace goes, gw1's and the crashed worker's stay
        assert _phase(cluster, "short-test") == "Terminating"
        assert _phase(cluster, "long-test") == "Active", (
            "the first worker out deleted another worker's namespace"
        )
        assert _phase(cluster, "crashed-ns") == "Active"
        gw1.apply(
            [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "long-test"}}]
        )
    # the last worker out removes its own and the run's other leftovers
    assert _phase(cluster, "long-test") == "Terminating"
    assert _phase(cluster, "crashed-ns") == "Terminating"
    assert leftovers_line(tmp_path, RUN) is None


def test_namespaces_a_worker_already_deleted_are_not_deleted_again(tmp_path):
    cluster = ModelCluster()
    gw0 = ModelBackend(cluster=cluster)
    with run_lifetime(gw0, RUN, tmp_path, OPTIONS):
        gw0.apply([_namespace("done")])
        gw0.delete([_namespace("done")])
        cluster.clock.sleep(30)
        other = ModelBackend(cluster=cluster)
        other.apply(
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "done"}}]
        )  # someone else's now
    assert _phase(cluster, "done") == "Active"


def test_when_cleanup_is_impossible_the_last_line_names_what_was_left_and_the_command(tmp_path):
    cluster = ModelCluster(faults=Faults(api_down=((100.0, 10_000.0),)))
    gw0 = ModelBackend(cluster=cluster)
    with run_lifetime(gw0, RUN, tmp_path, OPTIONS, leftovers_dir=tmp_path / "left"):
        gw0.apply([_namespace("stuck")])
        cluster.clock.sleep(200)  # the API server goes down before the run ends
    line = leftovers_line(tmp_path / "left", RUN)
    assert line is not None
    assert "left in the cluster: stuck" in line
    assert line.endswith("gim-netpol cleanup --run-id run8abcd --kubeconfig /tmp/kc --context prod")
    assert "connection refused" in line
