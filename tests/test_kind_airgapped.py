"""The kind path without a registry or the internet (issue 21 items 2, 4, 5), against the fake `docker`,
`kind` and `kubectl` of test_kind_provisioner, alone on PATH: the real docker is never called."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conformance.backends.kind import NODE_IMAGE, CommandFailed
from tests.test_kind_provisioner import REGISTRY, calls, fake_machine, make_cluster
from tests.test_suite_plugin import run_suite

PINNED_TAG, PINNED_DIGEST = NODE_IMAGE.split("@")
# A proxy nobody listens on: were anything fetched over HTTP(S), it would fail here, not leave the machine.
NO_NETWORK = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": ""}


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """An air-gapped machine: the fakes alone on PATH, a docker with no image and no registry."""
    return fake_machine(tmp_path, monkeypatch, alone=True)


def docker(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def load_node_image_as_the_readme_says(tmp_path: Path, monkeypatch) -> None:
    """Pulled by its tag on a connected machine, saved, and `docker load`ed on this one."""
    import os

    connected = tmp_path / "connected-docker"
    connected.mkdir()
    env = {**os.environ, "FAKE_DOCKER_STATE": str(connected), "FAKE_REGISTRY": REGISTRY}
    docker("pull", PINNED_TAG, env=env)
    archive = tmp_path / "images.tar"
    docker("save", "-o", str(archive), PINNED_TAG, env=env)
    docker("load", "-i", str(archive))


# --- item 2 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["--no-download"],
            ["--no-download", "Calico v3.31.2 manifests", "--calico-manifests DIR", "data/calico/README.md"],
        ),
        (["--no-download", "--reuse-cluster"], ["--no-download", "--calico-manifests DIR"]),
        (["--calico-manifests", "{empty}"], ["operator-crds.yaml", "data/calico/README.md"]),
    ],
    ids=["no-download", "no-download-reuse", "manifests-missing"],
)
def test_missing_calico_manifests_stop_the_run_before_any_cluster_is_touched(machine, tmp_path, args, words):
    """`--no-download` fetches nothing: without --calico-manifests the run stops at once, with one line
    saying what is missing and how to provide it, before kind is even asked which clusters exist."""
    (tmp_path / "empty").mkdir()
    args = [a.replace("{empty}", str(tmp_path / "empty")) for a in args]
    env = {"PATH": str(tmp_path / "bin"), "FAKE_STATE": str(machine), **NO_NETWORK}
    env["GIM_NETPOL_CACHE_DIR"] = str(tmp_path / "cache")
    run = run_suite("--backend", "kind", *args, env=env)
    assert run.returncode == 2, run.output
    assert "Traceback" not in run.output
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("gim-netpol: error: ")
    for word in words:
        assert word in lines[0], lines[0]
    assert not calls(machine, "kind") and not calls(machine, "kubectl") and not calls(machine, "docker")


# --- item 4 -------------------------------------------------------------------------------------------


def test_a_node_image_no_registry_serves_is_named_and_points_to_the_air_gapped_section(machine, tmp_path):
    with pytest.raises(CommandFailed) as info:
        make_cluster(tmp_path).create()
    message = str(info.value)
    assert "\n" not in message
    assert f'failed to pull image "{NODE_IMAGE}"' in message  # kind's own words, kept
    assert (
        f"the node image {NODE_IMAGE} is not in docker and could not be pulled (no registry reachable?)"
        in (message)
    )
    assert "`docker load` it first" in message and 'README.md, section "Air-gapped"' in message
    assert "enough memory" not in message
    assert "the nodes it started were deleted" in message


# --- item 5 -------------------------------------------------------------------------------------------


def test_a_docker_loaded_node_image_boots_the_cluster_by_its_tag(machine, tmp_path, monkeypatch):
    """Docker's classic store keeps no repo digest for a loaded image: kind, asked for the pinned
    tag@digest, would not find it and try to pull it. The suite boots every node from the tag."""
    load_node_image_as_the_readme_says(tmp_path, monkeypatch)
    assert json.loads(docker("image", "inspect", "--format", "{{json .RepoDigests}}", PINNED_TAG)) == []
    (machine / "log.jsonl").unlink()  # what the connected machine did
    cluster = make_cluster(tmp_path)
    cluster.create()
    assert cluster.created
    create = next(c["argv"] for c in calls(machine, "kind") if c["argv"][:2] == ["create", "cluster"])
    assert create[create.index("--image") + 1] == PINNED_TAG
    assert not [c for c in calls(machine, "docker") if c["argv"][0] == "pull"]
    assert [
        n for n in cluster.notes if f"node image {PINNED_TAG} used by its tag" in n and PINNED_DIGEST in n
    ]


def test_a_node_image_docker_has_by_its_digest_is_booted_by_its_digest(machine, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_REGISTRY", REGISTRY)
    docker("pull", PINNED_TAG)  # pulled by tag: docker records its repo digest too
    cluster = make_cluster(tmp_path)
    cluster.create()
    create = next(c["argv"] for c in calls(machine, "kind") if c["argv"][:2] == ["create", "cluster"])
    assert create[create.index("--image") + 1] == NODE_IMAGE  # the pin, digest included
    assert not cluster.notes
    assert [c["argv"][0] for c in calls(machine, "docker")].count("pull") == 1  # ours; kind pulled nothing
