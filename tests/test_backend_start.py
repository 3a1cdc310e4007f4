"""Issue 21, items 3 and 8: a backend that cannot start stops the session once, with one line.

Item 3: every error of the kind path (a manifest that cannot be fetched, missing manifests, a failed
kubectl) is one line naming what is missing and how to get it, exit status 2, and leaves no cluster behind.
Item 8: an enforcer whose pods can never be Ready (calico-node in CrashLoopBackOff, Typha and
kube-controllers OOMKilled, an image that cannot be pulled) stops the wait at once, naming the pods and
why, and the session stops once, under pytest-xdist too; the model's ``enforcer-crash`` fault does the
same. The kind runs go through pytest itself, against the fake ``kind``/``kubectl`` of
test_kind_provisioner (here also answering ``version``, ``get pods -n NS`` and ``logs --previous``) and
a fake ``docker``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import sys
import time
from pathlib import Path

import pytest

from conformance.backends.base import BackendUnavailable
from conformance.backends.enforcer_pods import CALICO_NAMESPACES, EnforcerCannotStart, read_pods
from conformance.backends.model import ModelBackend
from conformance.backends.model_faults import parse_faults
from tests.test_kind_provisioner import FAKE_KIND, FAKE_KUBECTL, calls, make_cluster, manifests_dir
from tests.test_suite_plugin import Run, run_suite

# What the fakes answer besides what test_kind_provisioner's do: the versions resolve() accepts, the pods
# of a namespace (FAKE_PODS: a JSON list of pods), the previous log of a container (FAKE_LOGS: a JSON
# object "namespace/pod/container" -> log).
KIND_EXTRA = r"""
import sys
if sys.argv[1:2] == ["version"]:
    print("kind v0.32.0 go1.24.0 linux/amd64")
    sys.exit(0)
"""
KUBECTL_EXTRA = r"""
import json, os, sys
if sys.argv[1:2] == ["version"]:
    print(json.dumps({"clientVersion": {"gitVersion": "v1.34.8"}}))
    sys.exit(0)
_cmd = sys.argv[5:]
if _cmd[:3] == ["get", "pods", "-n"] or _cmd[:1] == ["logs"]:
    with open(os.path.join(os.environ["FAKE_STATE"], "log.jsonl"), "a") as log:
        log.write(json.dumps({"tool": "kubectl", "argv": sys.argv[1:], "stdin": None}) + "\n")
    if _cmd[:1] == ["logs"]:
        ns, pod, container = _cmd[2], _cmd[3], _cmd[5]
        logs = json.loads(os.environ.get("FAKE_LOGS", "{}"))
        if "%s/%s/%s" % (ns, pod, container) not in logs:
            print('Error from server (BadRequest): previous terminated container "%s" in pod "%s" not found'
                  % (container, pod), file=sys.stderr)
            sys.exit(1)
        print(logs["%s/%s/%s" % (ns, pod, container)])
        sys.exit(0)
    pods = json.load(open(os.environ["FAKE_PODS"])) if os.environ.get("FAKE_PODS") else []
    mine = [p for p in pods if p["metadata"]["namespace"] == _cmd[3]]
    print(json.dumps({"apiVersion": "v1", "kind": "List", "items": mine}))
    sys.exit(0)
"""


def _install(bindir: Path, name: str, body: str) -> None:
    path = bindir / name
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    """fake kind, kubectl and docker (a daemon that answers) first on PATH; their state folder."""
    state = tmp_path / "state"
    state.mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _install(bindir, "kind", f"#!{sys.executable} -S\n{KIND_EXTRA}\n{FAKE_KIND}")
    _install(bindir, "kubectl", f"#!{sys.executable} -S\n{KUBECTL_EXTRA}\n{FAKE_KUBECTL}")
    _install(bindir, "docker", "#!/bin/sh\necho 27.3.1\n")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_STATE", str(state))
    monkeypatch.setenv("GIM_NETPOL_CACHE_DIR", str(tmp_path / "cache"))  # never the user's, never fetched
    return state


def _env(**extra: str) -> dict[str, str]:
    keep = ("PATH", "FAKE_STATE", "FAKE_PODS", "FAKE_LOGS", "GIM_NETPOL_CACHE_DIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **extra}


def run_kind(*args: str, **env: str) -> Run:
    return run_suite("--backend", "kind", *args, env=_env(**env), timeout=120)


def assert_stopped_once(run: Run, *words: str) -> str:
    """Exit status 2, no test run or reported, no traceback, and one line on stderr naming ``words``."""
    assert run.returncode == 2, run.output
    assert "Traceback" not in run.output and "INTERNALERROR" not in run.output
    assert not re.search(r"\d+ (passed|failed|error)", run.stdout), run.stdout
    assert "no tests ran" in run.stdout or not run.stdout  # stopped in the session, or before it
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("gim-netpol: error: ")
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def clusters(state: Path) -> list[str]:
    path = state / "clusters.txt"
    return path.read_text().split() if path.exists() else []


# -- item 3: every error of the kind path, through pytest: one line, exit status 2, no cluster left -------
STOPPED_WORDS = ("cannot start backend kind",)


def test_missing_calico_manifests_stop_the_run_with_one_line_before_any_cluster_is_touched(fakes, tmp_path):
    folder = manifests_dir(tmp_path)
    (folder / "operator-crds.yaml").unlink()
    run = run_kind("--calico-manifests", str(folder))
    assert_stopped_once(run, str(folder), "operator-crds.yaml", "conformance/data/calico/README.md")
    assert not calls(fakes, "kind"), "nothing touched a cluster"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_calico_manifest_that_cannot_be_fetched_stops_the_run_with_one_line_and_no_cluster_left(fakes):
    # Every https request goes to a closed port of this machine: the fetch fails without leaving it.
    proxy = f"http://127.0.0.1:{_closed_port()}"
    run = run_kind(https_proxy=proxy, HTTPS_PROXY=proxy, no_proxy="", NO_PROXY="")
    line = assert_stopped_once(run, "custom-resources.yaml", "conformance/data/calico/README.md")
    assert "Traceback" not in run.output and "CommandFailed" not in run.output
    assert clusters(fakes) == [], line


def test_a_failed_kubectl_command_stops_the_run_with_one_line_and_no_cluster_left(fakes, tmp_path):
    error = 'error: resource mapping not found for name: "default": no matches for kind "Installation"'
    run = run_kind("--calico-manifests", str(manifests_dir(tmp_path)), FAKE_CREATE_STDERR=error)
    line = assert_stopped_once(run, *STOPPED_WORDS, "create -f -` exited 1", "no matches for kind")
    assert clusters(fakes) == [], line


# -- pods as the kubelet reports them -------------------------------------------------------------------
def _pod(ns: str, name: str, phase: str, statuses: list[dict], ready: bool = False) -> dict:
    return {
        "metadata": {"namespace": ns, "name": name},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": statuses,
        },
    }


def crash_looping(ns: str, name: str, container: str, restarts: int, *, killed: str = "Error", code: int = 1):
    """Back in CrashLoopBackOff after ``restarts`` restarts; Calico's containers leave no termination
    message (terminationMessagePolicy File): the reason is in the log."""
    status = {
        "name": container,
        "image": f"quay.io/calico/{container.removeprefix('calico-')}:v3.31.2",
        "ready": False,
        "restartCount": restarts,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off 40s restarting {name}"}},
        "lastState": {"terminated": {"exitCode": code, "reason": killed}},
    }
    return _pod(ns, name, "Running", [status])


def pull_failing(ns: str, name: str, container: str, image: str, error: str) -> dict:
    message = f'Back-off pulling image "{image}": ErrImagePull: {error}'
    status = {
        "name": container,
        "image": image,
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": message}},
    }
    return _pod(ns, name, "Pending", [status])


def creating(ns: str, name: str, container: str) -> dict:
    status = {
        "name": container,
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ContainerCreating"}},
    }
    return _pod(ns, name, "Pending", [status])


def running(ns: str, name: str, container: str) -> dict:
    status = {"name": container, "ready": True, "restartCount": 0, "state": {"running": {}}}
    return _pod(ns, name, "Running", [status], ready=True)


# What the first live run showed: calico-node crash-looping, Typha and kube-controllers OOMKilled.
ISSUE_21_PODS = [
    running("tigera-operator", "tigera-operator-7d8c9b6f5-vx4mn", "tigera-operator"),
    crash_looping("calico-system", "calico-node-5xk2p", "calico-node", 4, code=2),
    crash_looping(
        "calico-system", "calico-typha-6d9f7c5b4-x8kqv", "calico-typha", 3, killed="OOMKilled", code=137
    ),
    crash_looping(
        "calico-system",
        "calico-kube-controllers-5c8b-q2wzr",
        "calico-kube-controllers",
        3,
        killed="OOMKilled",
        code=137,
    ),
    creating("kube-system", "coredns-668d6bf9bc-4xq7z", "coredns"),
]
ISSUE_21_LOGS = {
    "calico-system/calico-node-5xk2p/calico-node": "starting felix\nfatal error: runtime: out of memory\n"
}


def write_pods(tmp_path: Path, monkeypatch, pods: list[dict], logs: dict[str, str] | None = None) -> None:
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(pods))
    monkeypatch.setenv("FAKE_PODS", str(path))
    monkeypatch.setenv("FAKE_LOGS", json.dumps(logs or {}))


def assert_names_the_issue_21_pods(line: str) -> None:
    assert "calico-system/calico-node-5xk2p: container calico-node keeps exiting (CrashLoopBackOff" in line
    assert "fatal error: runtime: out of memory" in line, "the last log line of the crashed container"
    assert "calico-system/calico-typha-6d9f7c5b4-x8kqv" in line and "OOMKilled, last exit code 137" in line
    assert "calico-system/calico-kube-controllers-5c8b-q2wzr" in line
    assert "tigera-operator-7d8c9b6f5-vx4mn" not in line, "a Ready pod is not named"


# -- item 8: the kind backend's waits read the enforcer's pods -------------------------------------------
def test_a_crash_looping_and_oom_killed_enforcer_stops_the_wait_at_once_naming_its_pods(
    fakes, tmp_path, monkeypatch
):
    write_pods(tmp_path, monkeypatch, ISSUE_21_PODS, ISSUE_21_LOGS)
    cluster = make_cluster(tmp_path, nodes_timeout_s=60, calico_timeout_s=60)
    start = time.monotonic()
    with pytest.raises(EnforcerCannotStart) as info:
        cluster.create()
    assert time.monotonic() - start < 20, "stopped at once, not at the deadline"
    message = str(info.value)
    assert message.startswith("all nodes Ready will never be reached: pods that can never be Ready: ")
    assert_names_the_issue_21_pods(message)
    assert "1 other pod(s) not Ready yet" in message  # CoreDNS, waiting for the CNI
    assert "--keep-cluster keeps it" in message
    logs = [c["argv"][4:] for c in calls(fakes, "kubectl") if c["argv"][4] == "logs"]
    assert [
        "logs",
        "-n",
        "calico-system",
        "calico-node-5xk2p",
        "-c",
        "calico-node",
        "--previous",
        "--tail=5",
    ] in logs


def test_an_image_the_nodes_cannot_pull_stops_the_wait_with_the_pull_error(fakes, tmp_path, monkeypatch):
    image = "quay.io/calico/node:v3.31.2"
    error = f'failed to pull and unpack image "{image}": dial tcp: lookup quay.io: no such host'
    write_pods(
        tmp_path,
        monkeypatch,
        [pull_failing("calico-system", "calico-node-5xk2p", "calico-node", image, error)],
    )
    with pytest.raises(EnforcerCannotStart) as info:
        make_cluster(tmp_path, nodes_timeout_s=60).create()
    assert (
        f"calico-system/calico-node-5xk2p: container calico-node cannot pull image '{image}' "
        f"(ImagePullBackOff): {error}" in str(info.value)
    )


def test_a_pod_that_restarted_once_is_waited_for_and_named_at_the_deadline_with_its_state(
    fakes, tmp_path, monkeypatch
):
    """calico-node may restart while Typha comes up: one restart is no reason to stop. At the deadline the
    pods not Ready are named with their state, instead of the generic hint."""
    pods = [
        crash_looping("calico-system", "calico-node-5xk2p", "calico-node", 1),
        creating("calico-system", "calico-typha-6d9f7c5b4-x8kqv", "calico-typha"),
    ]
    write_pods(tmp_path, monkeypatch, pods)
    monkeypatch.setenv("FAKE_TIGERA_STUCK", "1")
    with pytest.raises(BackendUnavailable) as info:
        make_cluster(tmp_path, calico_timeout_s=0.5).create()
    message = str(info.value)
    assert not isinstance(info.value, EnforcerCannotStart)
    assert message.startswith("every tigerastatus Available not reached within 0.5s: calico Degraded")
    assert "pods not Ready: calico-system/calico-node-5xk2p: container calico-node keeps exiting" in message
    assert "restarted 1x" in message
    assert (
        "calico-system/calico-typha-6d9f7c5b4-x8kqv: Pending, container calico-typha ContainerCreating"
        in message
    )
    assert "hint:" not in message and "inotify" not in message


def test_too_many_open_files_in_a_crash_log_points_to_the_inotify_limits(fakes, tmp_path, monkeypatch):
    logs = {"calico-system/calico-node-5xk2p/calico-node": "fsnotify watcher: too many open files"}
    write_pods(
        tmp_path, monkeypatch, [crash_looping("calico-system", "calico-node-5xk2p", "calico-node", 3)], logs
    )
    with pytest.raises(EnforcerCannotStart) as info:
        make_cluster(tmp_path, nodes_timeout_s=60).create()
    assert "too many open files" in str(info.value) and "fs.inotify.max_user_instances=512" in str(info.value)


def test_read_pods_reads_only_the_namespaces_it_is_given_through_the_callable_it_is_given():
    """The reading is reusable for other enforcers (kube-router, kube-network-policies run in
    kube-system): namespaces and the kubectl-json callable are the caller's."""
    asked: list[tuple[str, ...]] = []

    def kubectl_json(*args: str) -> dict:
        asked.append(args)
        return {"items": [p for p in ISSUE_21_PODS if p["metadata"]["namespace"] == args[3]]}

    pods = read_pods(["kube-system"], kubectl_json)
    assert asked == [("get", "pods", "-n", "kube-system")]
    assert not pods.stuck and list(pods.waiting) == ["kube-system/coredns-668d6bf9bc-4xq7z"]
    pods = read_pods(CALICO_NAMESPACES, kubectl_json)
    assert sorted(pods.stuck) == [
        "calico-system/calico-kube-controllers-5c8b-q2wzr",
        "calico-system/calico-node-5xk2p",
        "calico-system/calico-typha-6d9f7c5b4-x8kqv",
    ]


# -- item 8: the model's enforcer-crash fault ----------------------------------------------------------------
def test_the_models_enforcer_starts_at_once_without_faults():
    backend = ModelBackend()
    backend.start_enforcer(420)
    assert backend.clock.now() == 0.0
    assert not read_pods(CALICO_NAMESPACES, backend.kubectl_json).waiting


def test_the_models_enforcer_crash_fails_the_start_as_kinds_does_naming_the_pods_within_a_minute():
    backend = ModelBackend(faults=parse_faults("enforcer-crash"))
    with pytest.raises(EnforcerCannotStart) as info:
        backend.start_enforcer(420)
    assert backend.clock.now() < 60, "stopped once the crashes repeat, not at the deadline"
    message = str(info.value)
    assert message.startswith("every Calico pod Ready will never be reached: pods that can never be Ready: ")
    # calico-node's status has no message (terminationMessagePolicy File): its last log line is read.
    assert "container calico-node keeps exiting (CrashLoopBackOff, last exit code 2" in message
    assert "fatal error: runtime: out of memory" in message
    assert "container calico-typha keeps exiting (CrashLoopBackOff, OOMKilled, last exit code 137" in message
    assert "container calico-kube-controllers keeps exiting (CrashLoopBackOff, OOMKilled" in message


# -- item 8 through pytest: the session stops once ----------------------------------------------------------
def test_an_enforcer_that_cannot_start_stops_the_kind_session_once_and_deletes_the_cluster(
    fakes, tmp_path, monkeypatch
):
    write_pods(tmp_path, monkeypatch, ISSUE_21_PODS, ISSUE_21_LOGS)
    run = run_kind("--calico-manifests", str(manifests_dir(tmp_path)))
    line = assert_stopped_once(run, *STOPPED_WORDS)
    assert_names_the_issue_21_pods(line)
    assert "no tests ran" in run.stdout and "ERROR" not in run.stdout
    assert clusters(fakes) == [], "the cluster the run created is deleted"
    assert run.seconds < 60


def test_under_xdist_an_enforcer_that_cannot_start_is_reported_once_per_session(fakes, tmp_path, monkeypatch):
    write_pods(tmp_path, monkeypatch, ISSUE_21_PODS, ISSUE_21_LOGS)
    run = run_kind("--calico-manifests", str(manifests_dir(tmp_path)), "-n", "2")
    line = assert_stopped_once(run, *STOPPED_WORDS)
    assert_names_the_issue_21_pods(line)
    assert run.output.count("calico-node-5xk2p") == 1, run.output
    assert "crashed" not in run.output and "ERROR" not in run.stdout
    creates = [c for c in calls(fakes, "kind") if c["argv"][:2] == ["create", "cluster"]]
    assert len(creates) == 1, "the other worker did not try again"
    assert clusters(fakes) == []


def test_keep_cluster_keeps_the_cluster_of_a_session_that_could_not_start(fakes, tmp_path, monkeypatch):
    write_pods(tmp_path, monkeypatch, ISSUE_21_PODS, ISSUE_21_LOGS)
    run = run_kind("--calico-manifests", str(manifests_dir(tmp_path)), "--keep-cluster")
    line = assert_stopped_once(run, *STOPPED_WORDS)
    assert "--keep-cluster keeps it" not in line
    assert clusters(fakes) == ["gim-netpol"]


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_the_models_enforcer_crash_stops_the_session_once_naming_the_pods(workers):
    run = run_suite("--backend", "model", "--model-faults", "enforcer-crash", *workers, timeout=120)
    line = assert_stopped_once(run, "cannot start backend model", "calico-system/calico-node-")
    assert (
        "CrashLoopBackOff" in line and "fatal error: runtime: out of memory" in line and "OOMKilled" in line
    )
    assert "no tests ran" in run.stdout and "ERROR" not in run.stdout
    assert run.output.count("calico-typha-6d9f7c5b4-x8kqv") == 1, run.output
