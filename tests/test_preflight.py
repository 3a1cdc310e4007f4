"""Preflight: one fast message naming what is missing, and how to fix it or run without a cluster."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

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
    assert "kubectl v1.33 to v1.35 (kubectl's skew policy: one minor of the API server" in message
    assert "not found on PATH" in message
    fake_bin(bindir, "kind", "echo 'kind v0.29.0 go1.24.0 linux/amd64'")  # too old for the pinned image
    fake_bin(bindir, "kubectl", KUBECTL_OK)
    message = kind_message(no_download=True)
    assert f"kind on PATH ({bindir / 'kind'}) is v0.29.0, but kind v0.32.0 or later is needed" in message
    assert "kubectl" not in message.split("--backend")[0]


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
    assert (
        "kubectl v1.33 to v1.35 (kubectl's skew policy: one minor of the API server, here Kubernetes "
        in message
    )


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


# --- issue 21 item 1: kubectl is checked against the server it will talk to --------------------------


def version_info(git_version: str) -> bytes:
    """What an API server answers on /version (k8s.io/apimachinery pkg/version Info)."""
    major, minor = git_version.lstrip("v").split(".")[:2]
    return json.dumps(
        {
            "major": major,
            "minor": minor,
            "gitVersion": git_version,
            "gitCommit": "6ab3ac5d6f8ea7f3e7e46f9e43a1d4b9b6bdc4f3",
            "gitTreeState": "clean",
            "buildDate": "2025-01-15T14:30:00Z",
            "goVersion": "go1.23.4",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
    ).encode()


@pytest.fixture
def kind_machine(tmp_path, monkeypatch):
    """docker, kind v0.32.0 and a kubectl of the test's choosing (fakes, alone on PATH); ``cluster(v)``
    makes kind cluster gim-netpol exist with an API server that reports Kubernetes ``v``."""
    from tests.test_kind_download import Server
    from tests.test_kind_provisioner import fake_machine, manifests_dir

    state = fake_machine(tmp_path, monkeypatch, alone=True)
    bindir = tmp_path / "bin"
    monkeypatch.setenv("GIM_NETPOL_CACHE_DIR", str(tmp_path / "cache"))
    servers = []

    def cluster(version: str) -> None:
        server = Server({"/version/": version_info(version)})  # the client's path (OpenAPI /version/)
        servers.append(server)
        (state / "clusters.txt").write_text("gim-netpol\n")
        monkeypatch.setenv("FAKE_API_URL", server.url)

    def options(**changes) -> dict:
        base = {
            "backend": "kind",
            "kubeconfig": None,
            "context": None,
            "no_download": True,
            "calico_version": "v3.31.2",
            "calico_manifests": str(manifests_dir(tmp_path)),
            "reuse_cluster": True,
            "cluster_name": "gim-netpol",
        }
        return {**base, **changes}

    yield SimpleNamespace(bindir=bindir, state=state, cluster=cluster, options=options)
    for server in servers:
        server.close()


def test_kubectl_is_checked_against_the_api_server_of_the_cluster_it_reuses(kind_machine, monkeypatch):
    """The run of issue 21: kubectl 1.28.7 on PATH, --reuse-cluster --no-download on a 1.28 cluster."""
    from conformance.backends.factory import preflight as factory_preflight

    kind_machine.cluster("v1.28.7")
    monkeypatch.setenv("FAKE_KUBECTL_VERSION", "v1.28.7")
    found = factory_preflight(kind_machine.options())
    assert found.kubectl == str(kind_machine.bindir / "kubectl")

    monkeypatch.setenv("FAKE_KUBECTL_VERSION", "v1.34.8")  # the pinned node image's: too new for 1.28
    with pytest.raises(BackendUnavailable) as info:
        factory_preflight(kind_machine.options())
    message = str(info.value)
    assert "\n" not in message
    assert f"kubectl on PATH ({kind_machine.bindir / 'kubectl'}) is v1.34.8" in message  # what was found
    assert "kubectl v1.27 to v1.29" in message  # what is needed, and why:
    assert "Kubernetes v1.28.7, read from the API server of kind cluster 'gim-netpol'" in message


def test_kubectl_for_a_cluster_the_run_creates_is_checked_against_the_node_image(kind_machine, monkeypatch):
    """--reuse-cluster with no such cluster (or no --reuse-cluster): the run creates it from the pinned
    node image, whose Kubernetes is the server kubectl will talk to."""
    from conformance.backends.factory import preflight as factory_preflight

    monkeypatch.setenv("FAKE_KUBECTL_VERSION", "v1.28.7")
    for reuse in (True, False):
        with pytest.raises(BackendUnavailable) as info:
            factory_preflight(kind_machine.options(reuse_cluster=reuse))
        message = str(info.value)
        assert f"kubectl on PATH ({kind_machine.bindir / 'kubectl'}) is v1.28.7" in message
        assert "kubectl v1.33 to v1.35" in message
        assert (
            "Kubernetes v1.34.8, of the node image kindest/node:v1.34.8 of the cluster the run creates"
            in (message)
        )
        assert "not found on PATH" not in message
    monkeypatch.setenv("FAKE_KUBECTL_VERSION", "v1.35.0")  # one minor newer than the server: fine
    assert factory_preflight(kind_machine.options()).kubectl == str(kind_machine.bindir / "kubectl")


def test_a_reused_cluster_that_does_not_answer_is_one_line_naming_it(kind_machine):
    from conformance.backends.factory import preflight as factory_preflight

    (kind_machine.state / "clusters.txt").write_text("gim-netpol\n")  # nodes stopped: nothing listens
    with pytest.raises(BackendUnavailable) as info:
        factory_preflight(kind_machine.options())
    message = str(info.value)
    assert "\n" not in message
    assert "cannot read the Kubernetes version of kind cluster 'gim-netpol', to be reused" in message
    assert "kind delete cluster --name gim-netpol" in message
