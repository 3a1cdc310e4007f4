"""The kind backend with --cni kube-router / kube-network-policies, and --node-memory, against the fake
kind, kubectl and docker of test_kind_provisioner: what it installs, in which order, and what it waits for."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conformance.backends.base import BackendUnavailable
from conformance.backends.enforcers import KUBE_NETWORK_POLICIES, KUBE_ROUTER, PTP_CONFLIST
from conformance.errors import UserError
from tests import test_kind_provisioner
from tests.test_kind_provisioner import calls, make_cluster

fakes = pytest.fixture(test_kind_provisioner.fakes.__wrapped__, name="fakes")


def _docker(state, what: str) -> list:
    path = state / f"docker-{what}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("enforcer", [KUBE_ROUTER, KUBE_NETWORK_POLICIES], ids=lambda e: e.name)
def test_the_enforcer_is_installed_from_its_pinned_manifest_and_waited_for_on_every_node(
    fakes, tmp_path, enforcer
) -> None:
    cluster = make_cluster(tmp_path, enforcer=enforcer.name, calico_manifests_dir=None)
    cluster.create()
    kubectl = [c for c in calls(fakes, "kubectl") if c["argv"][:1] == ["--kubeconfig"]]
    creates = [c for c in kubectl if c["argv"][4:6] == ["create", "-f"]]
    assert [c["argv"][4:] for c in creates] == [["create", "-f", "-"]]  # no Calico manifest
    applied = [d for d in yaml.safe_load_all(creates[0]["stdin"]) if d]
    daemonset = next(d for d in applied if d["kind"] == "DaemonSet")
    assert daemonset["metadata"]["name"] == enforcer.daemonset
    images = {c["image"] for c in daemonset["spec"]["template"]["spec"]["containers"]}
    assert images == {enforcer.image}
    argvs = [c["argv"][4:] for c in kubectl]
    polls = [i for i, a in enumerate(argvs) if a[:2] == ["get", "daemonset"] and a[-1] == "json"]
    assert len(polls) >= 2  # polled until every node's pod is Ready
    nodes = [i for i, a in enumerate(argvs) if a[:2] == ["get", "nodes"]]
    create = argvs.index(["create", "-f", "-"])
    # installed, then nodes Ready, then the enforcer on every node
    assert any(create < i < polls[0] for i in nodes)
    assert not any(a[:2] == ["get", "tigerastatus"] for a in argvs)
    assert cluster.created


def test_kube_network_policies_gets_the_plain_cni_on_every_node_before_its_manifest(fakes, tmp_path) -> None:
    cluster = make_cluster(tmp_path, enforcer="kube-network-policies", calico_manifests_dir=None)
    cluster.create()
    execs = _docker(fakes, "exec")
    conflists = {e["argv"][1]: json.loads(e["stdin"]) for e in execs if e["argv"][0] == "-i"}
    assert sorted(conflists) == ["gim-control-plane", "gim-worker", "gim-worker2"]
    assert conflists["gim-worker"]["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "192.168.1.0/24"}]]
    assert all(PTP_CONFLIST in " ".join(e["argv"]) for e in execs if e["argv"][0] == "-i")
    routes = [e["argv"] for e in execs if "route" in e["argv"]]
    assert ["gim-worker", "ip", "route", "replace", "192.168.2.0/24", "via", "172.18.0.4"] in routes
    assert len(routes) == 6  # each node to each other node
    # the CNI is there before the enforcer: its pods need pod networking only for the others
    log = [json.loads(line) for line in (fakes / "log.jsonl").read_text().splitlines()]
    first_create = next(i for i, c in enumerate(log) if c["tool"] == "kubectl" and "create" in c["argv"])
    assert (fakes / "docker-exec.jsonl").exists() and first_create > 0


def test_kube_router_needs_no_plain_cni(fakes, tmp_path) -> None:
    make_cluster(tmp_path, enforcer="kube-router", calico_manifests_dir=None).create()
    assert _docker(fakes, "exec") == []  # kube-router writes its own CNI configuration


def test_every_node_of_a_cluster_the_run_creates_gets_the_memory_cap(fakes, tmp_path) -> None:
    cluster = make_cluster(tmp_path, enforcer="kube-router", calico_manifests_dir=None, node_memory="3g")
    cluster.create()
    updates = _docker(fakes, "update")
    assert sorted(u[-1] for u in updates) == ["gim-control-plane", "gim-worker", "gim-worker2"]
    assert all(u[:4] == ["--memory", "3g", "--memory-swap", "3g"] for u in updates)


def test_a_reused_cluster_is_not_capped(fakes, tmp_path) -> None:
    make_cluster(tmp_path, enforcer="kube-router", calico_manifests_dir=None).create()
    (fakes / "docker-update.jsonl").unlink(missing_ok=True)
    again = make_cluster(
        tmp_path, enforcer="kube-router", calico_manifests_dir=None, node_memory="3g", reuse=True
    )
    again.create()
    assert _docker(fakes, "update") == []  # not this run's nodes: left as they are


def test_an_unknown_enforcer_is_refused_naming_the_option(tmp_path) -> None:
    with pytest.raises(UserError, match="--cni.*calico, kube-router, kube-network-policies"):
        make_cluster(tmp_path, enforcer="weave")


def test_kube_network_policies_on_a_kernel_without_nft_queue_stops_before_anything_is_installed(
    fakes, tmp_path, monkeypatch
) -> None:
    """Live on this machine (kernel without CONFIG_NFT_QUEUE), its pods ran Ready and every sync failed
    ("syncing nftables rules" error: netlink receive: no such file or directory): nothing was enforced and
    every test errored on the deny-all canary. Now the start stops at once, saying why."""
    monkeypatch.setenv("FAKE_NFT_NO_QUEUE", "1")
    cluster = make_cluster(tmp_path, enforcer="kube-network-policies", calico_manifests_dir=None)
    with pytest.raises(BackendUnavailable) as err:
        cluster.create()
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("kube-network-policies v0.8.0 cannot enforce NetworkPolicies on this machine")
    assert "CONFIG_NFT_QUEUE" in text and "Error: No such file or directory" in text
    assert "--cni kube-router" in text
    kubectl = [c["argv"][4:6] for c in calls(fakes, "kubectl") if c["argv"][:1] == ["--kubeconfig"]]
    assert ["create", "-f"] not in kubectl  # nothing installed
    assert not any(e["argv"][0] == "-i" for e in _docker(fakes, "exec"))  # no CNI written either
    probes = [e["argv"][-1] for e in _docker(fakes, "exec")]
    assert probes and all("nft delete table inet gim-netpol-probe" in p for p in probes)  # left clean


def test_the_start_says_what_was_created_and_what_it_took(fakes, tmp_path) -> None:
    cluster = make_cluster(tmp_path, enforcer="kube-router", calico_manifests_dir=None)
    cluster.create()
    assert re.fullmatch(
        r"kind cluster gim created in \d+ s \(3 nodes, kindest/node:v1\.34\.8@sha256:[0-9a-f]{64}\); "
        r"kube-router Ready on every node \d+ s later",
        cluster.started,
    ), cluster.started
    again = make_cluster(tmp_path, enforcer="kube-router", calico_manifests_dir=None, reuse=True)
    again.create()
    assert again.started.startswith("kind cluster gim reused (3 nodes")
