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

import os
import re
import socket
import stat
import sys
from pathlib import Path

import pytest

from tests.test_kind_provisioner import FAKE_KIND, FAKE_KUBECTL, calls, manifests_dir
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
