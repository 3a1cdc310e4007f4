"""clusters/kind-calico.yaml and the Calico custom resources derived from it."""

from __future__ import annotations

import ipaddress
import re

import pytest
import yaml

from conformance.backends import tools
from conformance.backends.kind import (
    CALICO_TESTED_KUBERNETES,
    NODE_IMAGE,
    REPO_CONFIG,
    calico_custom_resources,
    calico_manifest_names,
    node_count,
    pod_subnet,
    read_kind_config,
)
from conformance.errors import UserError

# The shape of projectcalico/calico manifests/custom-resources.yaml (v3.30+): Installation with one
# IPPool, APIServer, Goldmane, Whisker.
UPSTREAM_CUSTOM_RESOURCES = """\
apiVersion: operator.tigera.io/v1
kind: Installation
metadata:
  name: default
spec:
  calicoNetwork:
    ipPools:
    - name: default-ipv4-ippool
      blockSize: 26
      cidr: 192.168.0.0/16
      encapsulation: VXLANCrossSubnet
      natOutgoing: Enabled
      nodeSelector: all()
---
apiVersion: operator.tigera.io/v1
kind: APIServer
metadata:
  name: default
spec: {}
---
apiVersion: operator.tigera.io/v1
kind: Goldmane
metadata:
  name: default
---
apiVersion: operator.tigera.io/v1
kind: Whisker
metadata:
  name: default
"""


def test_repo_config_is_one_control_plane_and_two_workers_without_kindnet():
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    assert raw["kind"] == "Cluster" and raw["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    roles = [n["role"] for n in raw["nodes"]]
    assert roles == ["control-plane", "worker", "worker"]
    assert raw["networking"]["disableDefaultCNI"] is True
    config = read_kind_config(REPO_CONFIG)
    assert node_count(config) == 3


def test_pod_subnet_is_the_calico_ippool_cidr():
    config = read_kind_config(REPO_CONFIG)
    subnet = pod_subnet(config)
    ipaddress.ip_network(subnet)  # a real CIDR
    # Calico's own default pool equals the kind podSubnet, as in its kind quickstart...
    upstream = yaml.safe_load_all(UPSTREAM_CUSTOM_RESOURCES)
    (installation,) = [d for d in upstream if d["kind"] == "Installation"]
    assert installation["spec"]["calicoNetwork"]["ipPools"][0]["cidr"] == subnet
    # ...and the resources the suite creates carry the podSubnet whatever the file says.
    rendered = list(yaml.safe_load_all(calico_custom_resources(UPSTREAM_CUSTOM_RESOURCES, subnet)))
    pools = [
        p for d in rendered if d["kind"] == "Installation" for p in d["spec"]["calicoNetwork"]["ipPools"]
    ]
    assert [p["cidr"] for p in pools] == [subnet]


def test_only_the_installation_is_created_with_everything_but_the_cidr_kept():
    """Issue 13 item 6: APIServer (aggregated projectcalico.org/v3 API, which holds namespace deletion
    until it serves), Goldmane and Whisker are not created: Kubernetes NetworkPolicy needs none of them."""
    rendered = list(yaml.safe_load_all(calico_custom_resources(UPSTREAM_CUSTOM_RESOURCES, "10.244.0.0/16")))
    assert [d["kind"] for d in rendered] == ["Installation"]
    pool = rendered[0]["spec"]["calicoNetwork"]["ipPools"][0]
    assert pool == {
        "name": "default-ipv4-ippool",
        "blockSize": 26,
        "cidr": "10.244.0.0/16",
        "encapsulation": "VXLANCrossSubnet",
        "natOutgoing": "Enabled",
        "nodeSelector": "all()",
    }


def test_each_pool_gets_the_pod_cidr_of_its_own_ip_family():
    """Issue 13 item 9: an IPv6 pool is not given the IPv4 subnet."""
    dual = UPSTREAM_CUSTOM_RESOURCES.replace(
        "      nodeSelector: all()\n",
        "      nodeSelector: all()\n    - name: default-ipv6-ippool\n      cidr: fd00::/48\n",
    )
    rendered = list(yaml.safe_load_all(calico_custom_resources(dual, "10.244.0.0/16,fd00:10:244::/56")))
    pools = rendered[0]["spec"]["calicoNetwork"]["ipPools"]
    assert [(p["name"], p["cidr"]) for p in pools] == [
        ("default-ipv4-ippool", "10.244.0.0/16"),
        ("default-ipv6-ippool", "fd00:10:244::/56"),
    ]
    with pytest.raises(UserError, match="default-ipv6-ippool is IPv6 but the cluster's pod CIDRs"):
        calico_custom_resources(dual, "10.244.0.0/16")


def test_the_nodes_run_the_pinned_image_within_calicos_tested_kubernetes_range():
    """Issue 13 item 4: kind v0.32.0 would default to Kubernetes v1.36.1."""
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    assert [n.get("image") for n in raw["nodes"]] == [NODE_IMAGE] * 3
    m = re.fullmatch(r"kindest/node:v(\d+)\.(\d+)\.(\d+)@sha256:[0-9a-f]{64}", NODE_IMAGE)
    assert m, "a node image is pinned by tag AND digest (kind release notes)"
    low, high = CALICO_TESTED_KUBERNETES
    assert low <= (int(m[1]), int(m[2])) <= high
    # The kubectl fetched for the run is within one minor of the nodes' Kubernetes.
    assert f"v{m[1]}.{m[2]}.{m[3]}" == tools.KUBECTL_VERSION


def test_custom_resources_without_a_pool_are_refused():
    with pytest.raises(UserError, match="ipPools"):
        calico_custom_resources("apiVersion: operator.tigera.io/v1\nkind: APIServer\n", "10.0.0.0/16")


def test_a_config_that_keeps_kindnet_is_refused(tmp_path):
    path = tmp_path / "kind.yaml"
    path.write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n  podSubnet: 10.244.0.0/16\n"
    )
    with pytest.raises(UserError) as info:
        read_kind_config(path)
    assert "disableDefaultCNI" in str(info.value) and str(path) in str(info.value)


def test_a_config_without_pod_subnet_or_of_the_wrong_kind_is_refused(tmp_path):
    path = tmp_path / "kind.yaml"
    path.write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n  disableDefaultCNI: true\n"
    )
    with pytest.raises(UserError, match="podSubnet"):
        read_kind_config(path)
    path.write_text("kind: Config\napiVersion: v1\n")
    with pytest.raises(UserError, match="kind: Cluster"):
        read_kind_config(path)


def test_calico_manifests_follow_the_quickstart_of_each_version():
    assert calico_manifest_names("v3.31.2") == [
        "operator-crds.yaml",
        "tigera-operator.yaml",
        "custom-resources.yaml",
    ]
    assert calico_manifest_names("v3.29.3") == ["tigera-operator.yaml", "custom-resources.yaml"]
    with pytest.raises(UserError):
        calico_manifest_names("latest")
