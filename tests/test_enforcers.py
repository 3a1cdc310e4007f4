"""The kind backend's other enforcers: their upstream manifests as the suite applies them, the plain CNI
beside kube-network-policies, and when each counts as installed and Ready."""

from __future__ import annotations

import json

import pytest
import yaml

from conformance.backends.base import BackendUnavailable
from conformance.backends.enforcers import (
    KUBE_NETWORK_POLICIES,
    KUBE_ROUTER,
    install_plain_cni,
    pin_images,
    ptp_conflist,
)


def _containers(text: str) -> list[dict]:
    found = []
    for doc in yaml.safe_load_all(text):
        spec = ((doc or {}).get("spec") or {}).get("template", {}).get("spec") or {}
        found += [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]
    return found


@pytest.mark.parametrize("enforcer", [KUBE_ROUTER, KUBE_NETWORK_POLICIES], ids=lambda e: e.name)
def test_every_container_of_the_upstream_manifest_runs_the_pinned_image_without_pulling(enforcer) -> None:
    upstream = _containers(enforcer.manifest.read_text())
    applied = _containers(enforcer.manifest_text())
    assert upstream and len(applied) == len(upstream)
    # upstream pulls a floating or older tag (kube-router: no tag and Always; kube-network-policies v0.8.0's
    # install.yaml still names v0.7.0)
    assert any(c["image"] != enforcer.image for c in upstream)
    assert {c["image"] for c in applied} == {enforcer.image}
    assert {c["imagePullPolicy"] for c in applied} == {"IfNotPresent"}


def test_pin_images_leaves_other_images_and_objects_alone() -> None:
    text = yaml.safe_dump_all(
        [
            {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}},
            {
                "kind": "DaemonSet",
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": "a", "image": "example.org/router:v1"},
                                {"name": "b", "image": "example.org/router-helper:v1"},
                            ]
                        }
                    }
                },
            },
        ]
    )
    docs = list(yaml.safe_load_all(pin_images(text, "example.org/router", "example.org/router:v2")))
    assert docs[0] == {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}}
    a, b = docs[1]["spec"]["template"]["spec"]["containers"]
    assert a == {"name": "a", "image": "example.org/router:v2", "imagePullPolicy": "IfNotPresent"}
    assert b == {"name": "b", "image": "example.org/router-helper:v1"}


def test_ptp_conflist_is_kindnets_without_masquerade() -> None:
    conf = json.loads(ptp_conflist("192.168.1.0/24"))
    ptp, portmap = conf["plugins"]
    assert ptp["type"] == "ptp" and ptp["ipMasq"] is False
    assert ptp["ipam"]["type"] == "host-local"
    assert ptp["ipam"]["ranges"] == [[{"subnet": "192.168.1.0/24"}]]
    assert portmap["type"] == "portmap"


class FakeCluster:
    """Answers kubectl with a node list and records docker calls."""

    name = "gim-netpol"
    context = "kind-gim-netpol"

    def __init__(self, nodes: list[dict], daemonset: dict | None = None) -> None:
        self.nodes = nodes
        self.daemonset = daemonset
        self.docker_calls: list[tuple[tuple[str, ...], str | None]] = []
        self.waits = 0

    def kubectl(self, *args: str, input_text: str | None = None, timeout_s: float = 0, hint: str = "") -> str:
        if args[:2] == ("get", "nodes"):
            return json.dumps({"items": self.nodes})
        if args[:2] == ("get", "daemonset"):
            if self.daemonset is None:
                return ""
            return "daemonset.apps/x" if "name" in args else json.dumps(self.daemonset)
        raise AssertionError(args)

    def docker(self, *args: str, input_text: str | None = None) -> str:
        self.docker_calls.append((args, input_text))
        return ""

    def node_names(self) -> list[str]:
        return [n["metadata"]["name"] for n in self.nodes]

    def wait(self, what, timeout_s, check, hint) -> None:
        self.waits += 1
        done, state = check()
        if not done:
            raise BackendUnavailable(f"{what} not reached: {state}")

    def create_objects(self, text: str, hint: str) -> None:
        raise AssertionError("not here")


def _node(name: str, ip: str, cidr: str | None) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {"podCIDR": cidr} if cidr else {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]
        },
    }


def test_plain_cni_writes_each_nodes_cidr_and_routes_to_the_others() -> None:
    cluster = FakeCluster(
        [
            _node("cp", "172.18.0.2", "192.168.0.0/24"),
            _node("w1", "172.18.0.3", "192.168.1.0/24"),
            _node("w2", "172.18.0.4", "192.168.2.0/24"),
        ]
    )
    install_plain_cni(cluster)
    writes = {args[2]: json.loads(text) for args, text in cluster.docker_calls if "cat >" in " ".join(args)}
    assert {n: c["plugins"][0]["ipam"]["ranges"][0][0]["subnet"] for n, c in writes.items()} == {
        "cp": "192.168.0.0/24",
        "w1": "192.168.1.0/24",
        "w2": "192.168.2.0/24",
    }
    routes = sorted(args[1:] for args, _ in cluster.docker_calls if "route" in args)
    assert routes == sorted(
        [
            ("cp", "ip", "route", "replace", "192.168.1.0/24", "via", "172.18.0.3"),
            ("cp", "ip", "route", "replace", "192.168.2.0/24", "via", "172.18.0.4"),
            ("w1", "ip", "route", "replace", "192.168.0.0/24", "via", "172.18.0.2"),
            ("w1", "ip", "route", "replace", "192.168.2.0/24", "via", "172.18.0.4"),
            ("w2", "ip", "route", "replace", "192.168.0.0/24", "via", "172.18.0.2"),
            ("w2", "ip", "route", "replace", "192.168.1.0/24", "via", "172.18.0.3"),
        ]
    )


def test_plain_cni_waits_for_every_pod_cidr_and_names_the_nodes_without_one() -> None:
    cluster = FakeCluster([_node("cp", "172.18.0.2", "192.168.0.0/24"), _node("w1", "172.18.0.3", None)])
    with pytest.raises(BackendUnavailable, match="no pod CIDR yet for w1"):
        install_plain_cni(cluster)
    assert cluster.docker_calls == []  # nothing half-configured


@pytest.mark.parametrize(
    ("status", "ready"),
    [
        ({"desiredNumberScheduled": 3, "numberReady": 3}, True),
        ({"desiredNumberScheduled": 3, "numberReady": 2}, False),
        ({"desiredNumberScheduled": 0, "numberReady": 0}, False),
        ({}, False),
    ],
)
def test_an_enforcer_is_ready_when_its_daemonset_runs_ready_everywhere(status: dict, ready: bool) -> None:
    cluster = FakeCluster([], {"status": status})
    if ready:
        KUBE_ROUTER.check(cluster)
    else:
        with pytest.raises(BackendUnavailable, match="kube-router is not running on every node"):
            KUBE_ROUTER.check(cluster)


def test_an_enforcer_without_its_daemonset_is_not_installed() -> None:
    assert not KUBE_ROUTER.installed(FakeCluster([]))
    assert KUBE_ROUTER.installed(FakeCluster([], {"status": {}}))
