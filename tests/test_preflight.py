"""Preflight: one fast message naming what is missing, and how to fix it or run without a cluster."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conformance.backends.base import BackendUnavailable
from conformance.backends.preflight import check_existing, check_kind, preflight


def fake_bin(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


DOCKER_DOWN = (
    'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. '
    'Is the docker daemon running?" >&2; exit 1'
)


@pytest.fixture
def bindir(tmp_path, monkeypatch):
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", str(d))
    return d


def kind_message(**kwargs) -> str:
    start = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        check_kind(**kwargs)
    assert time.monotonic() - start < 2
    message = str(info.value)
    assert "\n" not in message
    return message


def test_this_machine_docker_without_daemon_and_no_kind():
    """The real environment here: a docker client, no daemon, no kind."""
    docker = shutil.which("docker")
    if docker is None or shutil.which("kind") is not None:
        pytest.skip("this machine is not the docker-client-without-daemon, no-kind case")
    if subprocess.run([docker, "info"], capture_output=True, timeout=10).returncode == 0:
        pytest.skip("a docker daemon is running here")
    message = kind_message()
    assert "docker daemon not reachable" in message
    assert "Cannot connect to the Docker daemon" in message
    assert "kind" not in message.split("--backend model")[0].replace("kind backend", "")  # fetched later
    assert "--backend model" in message
    message = kind_message(no_download=True)
    assert "kind v0.32.0 or later not found on PATH and --no-download" in message
    assert "kind.sigs.k8s.io" in message


KIND_OK = "echo 'kind v0.32.0 go1.24.0 linux/amd64'"
KUBECTL_OK = """echo '{"clientVersion": {"gitVersion": "v1.34.8"}}'"""


def test_all_present_passes_quickly(bindir):
    fake_bin(bindir, "docker", 'echo "27.3.1"')
    fake_bin(bindir, "kind", KIND_OK)
    fake_bin(bindir, "kubectl", KUBECTL_OK)
    start = time.monotonic()
    check_kind(no_download=True)
    preflight("kind", no_download=True)
    assert time.monotonic() - start < 2


def test_docker_is_the_only_prerequisite_unless_no_download(bindir):
    fake_bin(bindir, "docker", 'echo "27.3.1"')
    check_kind()  # kind and kubectl are fetched when the backend opens
    message = kind_message(no_download=True)
    assert "kind v0.32.0 or later not found on PATH and --no-download forbids fetching it" in message
    assert "kubectl v1.34.8 (+/- one minor) not found on PATH" in message
    fake_bin(bindir, "kind", "echo 'kind v0.29.0 go1.24.0 linux/amd64'")  # too old for the pinned image
    fake_bin(bindir, "kubectl", KUBECTL_OK)
    message = kind_message(no_download=True)
    assert "kind v0.32.0 or later not found" in message and "kubectl" not in message.split("--backend")[0]


def test_daemon_down_and_kind_missing_in_one_message(bindir):
    fake_bin(bindir, "docker", DOCKER_DOWN)
    fake_bin(bindir, "kubectl", KUBECTL_OK)
    message = kind_message(no_download=True)
    assert message.startswith("kind backend unavailable: ")
    assert "docker daemon not reachable" in message and "Is the docker daemon running?" in message
    assert "kind v0.32.0 or later not found on PATH" in message
    assert "kubectl" not in message.split("--backend model")[0]
    assert "--backend model" in message and "--backend existing --kubeconfig" in message


def test_nothing_installed_names_every_tool(bindir):
    message = kind_message(no_download=True)
    assert "docker client not found on PATH" in message and "docs.docker.com" in message
    assert "kind v0.32.0 or later not found" in message
    assert "kubectl v1.34.8 (+/- one minor) not found" in message


def test_a_hanging_daemon_is_bounded(bindir):
    fake_bin(bindir, "docker", f"exec {sys.executable} -c 'import time; time.sleep(10)'")
    message = kind_message(docker_timeout_s=0.5)
    assert "did not answer `docker info` within 0.5s" in message


def write_kubeconfig(path: Path, contexts: list[str], current: str | None = None) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": c, "cluster": {"server": "https://127.0.0.1:6443"}} for c in contexts],
        "users": [{"name": c, "user": {}} for c in contexts],
        "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in contexts],
    }
    if current:
        doc["current-context"] = current
    path.write_text(yaml.safe_dump(doc))
    return path


def existing_message(kubeconfig, context) -> str:
    with pytest.raises(BackendUnavailable) as info:
        check_existing(kubeconfig, context)
    message = str(info.value)
    assert "\n" not in message and "--backend model" in message
    return message


def test_existing_kubeconfig_missing(tmp_path):
    message = existing_message(str(tmp_path / "nope.yaml"), None)
    assert f"kubeconfig {tmp_path / 'nope.yaml'} not found" in message
    assert "--kubeconfig FILE" in message


def test_existing_context_missing_lists_the_contexts(tmp_path):
    cfg = write_kubeconfig(tmp_path / "config", ["kind-a", "prod"], current="kind-a")
    message = existing_message(str(cfg), "staging")
    assert "context 'staging' is not in" in message and "kind-a, prod" in message


def test_existing_uses_the_current_context_or_asks_for_one(tmp_path):
    cfg = write_kubeconfig(tmp_path / "config", ["kind-a", "prod"], current="prod")
    target = check_existing(str(cfg), None)
    assert target.context == "prod" and target.kubeconfig == (str(cfg),)
    assert check_existing(str(cfg), "kind-a").context == "kind-a"
    bare = write_kubeconfig(tmp_path / "bare", ["x"])
    assert "no current-context" in existing_message(str(bare), None)


def test_existing_merges_kubeconfig_env_like_kubectl(tmp_path, monkeypatch):
    a = write_kubeconfig(tmp_path / "a", ["one"], current="one")
    b = write_kubeconfig(tmp_path / "b", ["two"], current="two")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing"), str(a), str(b)]))
    target = check_existing(None, "two")
    assert target.kubeconfig == (str(a), str(b))
    assert check_existing(None, None).context == "one"  # the first file's current-context wins
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert "no kubeconfig" in existing_message(None, None)


def test_existing_garbage_kubeconfig(tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("{not: [valid")
    assert "unreadable" in existing_message(str(bad), None)


def test_model_backend_needs_nothing(bindir):
    preflight("model")
