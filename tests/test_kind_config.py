"""clusters/kind-calico.yaml and the Calico custom resources derived from it."""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from conformance.backends.kind import (
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


def test_custom_resources_keep_everything_but_the_cidr():
    rendered = list(yaml.safe_load_all(calico_custom_resources(UPSTREAM_CUSTOM_RESOURCES, "10.244.0.0/16")))
    assert [d["kind"] for d in rendered] == ["Installation", "APIServer", "Goldmane", "Whisker"]
    pool = rendered[0]["spec"]["calicoNetwork"]["ipPools"][0]
    assert pool == {
        "name": "default-ipv4-ippool",
        "blockSize": 26,
        "cidr": "10.244.0.0/16",
        "encapsulation": "VXLANCrossSubnet",
        "natOutgoing": "Enabled",
        "nodeSelector": "all()",
    }


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
