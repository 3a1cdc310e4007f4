"""--images: when the kind backend boots the images images/build.py built on this machine, and what follows
(node image, probe image, the build's kind and kubectl first on PATH), against the fake docker of
test_kind_provisioner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conformance.backends import local_images
from conformance.backends.kind import NODE_IMAGE
from conformance.errors import UserError
from conformance.probes.agnhost import AGNHOST_IMAGE
from tests.test_kind_provisioner import fake_machine
from tests.test_suite_plugin import run_suite

LOCAL_NODE = "gim-netpol.local/node:v1.34.3"
LOCAL_PROBE = "registry.k8s.io/e2e-test-images/agnhost:2.56"


@pytest.fixture
def machine(tmp_path: Path, monkeypatch) -> Path:
    """A fake docker on PATH, an empty image store and an empty suite cache."""
    state = fake_machine(tmp_path, monkeypatch)
    monkeypatch.setenv("GIM_NETPOL_CACHE_DIR", str(tmp_path / "cache"))
    return state


def docker_has(state: Path, *refs: str) -> None:
    images = [{"id": f"sha256:{i:064x}", "tags": [r], "digests": []} for i, r in enumerate(refs, 1)]
    (state / "docker-images.json").write_text(json.dumps(images))


def built(tmp_path: Path) -> Path:
    """What images/build.py records, with its kind and kubectl."""
    bin_dir = tmp_path / "cache" / "build" / "bin"
    for tool in ("kind/kind", "kubernetes/kubectl"):
        (bin_dir / tool).parent.mkdir(parents=True, exist_ok=True)
        (bin_dir / tool).write_text("#!/bin/sh\n")
    record = {
        "node_image": LOCAL_NODE,
        "kubernetes_version": "v1.34.3",
        "probe_image": LOCAL_PROBE,
        "kind": str(bin_dir / "kind/kind"),
        "kubectl": str(bin_dir / "kubernetes/kubectl"),
    }
    path = tmp_path / "cache" / "build" / "images.json"
    path.write_text(json.dumps(record))
    return bin_dir


def test_auto_boots_the_local_build_when_docker_lacks_the_upstream_node_image(machine, tmp_path) -> None:
    built(tmp_path)
    docker_has(machine, LOCAL_NODE)
    chosen = local_images.choose("auto", NODE_IMAGE)
    assert chosen is not None and chosen.node_image == LOCAL_NODE


def test_auto_keeps_the_upstream_node_image_when_docker_has_it(machine, tmp_path) -> None:
    built(tmp_path)
    docker_has(machine, LOCAL_NODE, NODE_IMAGE.split("@")[0])
    assert local_images.choose("auto", NODE_IMAGE) is None


def test_auto_without_a_build_is_upstream(machine) -> None:
    docker_has(machine)
    assert local_images.choose("auto", NODE_IMAGE) is None


def test_a_build_whose_node_image_is_gone_is_not_used(machine, tmp_path) -> None:
    built(tmp_path)
    docker_has(machine)  # e.g. docker's images were pruned
    assert local_images.choose("auto", NODE_IMAGE) is None
    with pytest.raises(UserError, match=r"--images.*python3 images/build.py"):
        local_images.choose("local", NODE_IMAGE)


def test_local_images_set_the_node_and_default_probe_image_and_put_the_builds_tools_first(
    machine, tmp_path, monkeypatch
) -> None:
    bin_dir = built(tmp_path)
    docker_has(machine, LOCAL_NODE)
    options = {"images": "auto", "probe_image": AGNHOST_IMAGE}
    note = local_images.apply(options, NODE_IMAGE, AGNHOST_IMAGE)
    assert options["node_image"] == LOCAL_NODE
    assert options["probe_image"] == LOCAL_PROBE
    path = os.environ["PATH"].split(os.pathsep)
    assert path[:2] == [str(bin_dir / "kind"), str(bin_dir / "kubernetes")]
    assert note and LOCAL_NODE in note and "images/build.py" in note


def test_a_probe_image_the_user_chose_is_kept(machine, tmp_path) -> None:
    built(tmp_path)
    docker_has(machine, LOCAL_NODE)
    options = {"images": "local", "probe_image": "mirror.example/agnhost:2.52"}
    local_images.apply(options, NODE_IMAGE, AGNHOST_IMAGE)
    assert options["probe_image"] == "mirror.example/agnhost:2.52"


def test_upstream_images_leave_everything_as_it_was(machine, tmp_path) -> None:
    built(tmp_path)
    docker_has(machine, LOCAL_NODE)
    options = {"images": "upstream", "probe_image": AGNHOST_IMAGE}
    assert local_images.apply(options, NODE_IMAGE, AGNHOST_IMAGE) is None
    assert options == {"images": "upstream", "probe_image": AGNHOST_IMAGE, "node_image": NODE_IMAGE}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--images", "local"), "--images: no locally built node image"),
        (("--node-memory", "lots"), "--node-memory: expected a size such as 3g or 2048m, got 'lots'"),
        (("--cni", "weave"), "--cni: expected one of calico, kube-router, kube-network-policies"),
    ],
)
def test_bad_kind_options_stop_the_run_in_one_line_before_any_cluster(machine, args, message) -> None:
    run = run_suite(*args, env={"GIM_NETPOL_CACHE_DIR": os.environ["GIM_NETPOL_CACHE_DIR"]}, timeout=60)
    assert run.returncode == 2, run.output
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], run.stderr
    assert not (machine / "log.jsonl").exists() or "kind" not in (machine / "log.jsonl").read_text()


def test_calico_on_the_local_images_stops_at_once_saying_what_to_run(machine, tmp_path) -> None:
    """Calico is not built here: the default --cni would create a cluster, then fail on its manifests."""
    built(tmp_path)
    docker_has(machine, LOCAL_NODE)
    cache = str(tmp_path / "cache")
    run = run_suite(env={"GIM_NETPOL_CACHE_DIR": cache, "PATH": os.environ["PATH"]}, timeout=60)
    assert run.returncode == 2, run.output
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--cni: Calico is not among the images built on this machine" in lines[0]
    assert "--cni kube-router" in lines[0]
    log = machine / "log.jsonl"
    assert not log.exists() or '"tool": "kind"' not in log.read_text()  # no cluster touched
