"""Snapshots as kubectl prints them become the Cluster the simulator reasons about."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.errors import UserError
from conformance.netpol.model import NAME_LABEL, ContainerPort
from conformance.netpol.snapshot import cluster_from_objects, load_cluster, load_snapshot, read_documents


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {NAME_LABEL: name, **labels}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def pod(ns: str, name: str, ip: str | None, ports: list[dict] | None = None, **labels: str) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Running", "hostIP": "172.18.0.3"}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "uid": f"uid-{ns}-{name}"},
        "spec": {
            "containers": [{"name": "main", "image": "registry.k8s.io/e2e-test-images/agnhost:2.52"}]
            + ([{"name": "main", "image": "nginx", "ports": ports}] if ports else []),
            "nodeName": "kind-worker",
        },
        "status": status,
    }


def netpol(ns: str | None, name: str, spec: dict | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": spec or {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def kubectl_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(items), "metadata": {"resourceVersion": ""}}


GIM_SNAPSHOT = kubectl_list(
    namespace("gim", team="security"),
    namespace("ingress-nginx"),
    pod(
        "gim",
        "nginx-7d9f8",
        "10.244.1.5",
        [
            {"containerPort": 8080, "name": "http", "protocol": "TCP"},
            {"containerPort": 8443, "name": "https"},
        ],
        app="nginx",
    ),
    pod("gim", "worker-0", "10.244.2.7", app="worker"),
    pod("ingress-nginx", "controller-abc", "10.244.1.9", [{"containerPort": 53, "protocol": "UDP"}]),
    pod("monitoring", "prometheus-0", "10.244.2.11", [{"containerPort": 9090, "name": "web"}]),
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "nginx", "namespace": "gim"},
        "spec": {
            "selector": {"app": "nginx"},
            "clusterIP": "10.96.0.20",
            "ports": [{"port": 80, "targetPort": "http"}, {"port": 8443, "protocol": "TCP"}],
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "headless", "namespace": "gim"},
        "spec": {"selector": {"app": "worker"}, "clusterIP": "None", "ports": [{"port": 7000}]},
    },
    netpol("gim", "gim-default-deny"),
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "gim"}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "gim"}},
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "gim", "namespace": "gim"},
    },
)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def load(paths: list[str]) -> tuple[Any, list[str]]:
    notes: list[str] = []
    return load_cluster(paths, notes=notes.append), notes


def test_kubectl_list_in_yaml_gives_namespaces_pods_services_and_policies(tmp_path: Path) -> None:
    path = write(tmp_path, "snap.yaml", yaml.safe_dump(GIM_SNAPSHOT))
    cluster, notes = load([path])

    assert cluster.namespaces["gim"].labels == {NAME_LABEL: "gim", "team": "security"}
    # monitoring has a pod but no Namespace object: created with its name label only
    assert cluster.namespaces["monitoring"].labels == {NAME_LABEL: "monitoring"}
    nginx = cluster.pod("gim/nginx-7d9f8")
    assert nginx.ip == "10.244.1.5"
    assert nginx.labels == {"app": "nginx"}
    assert nginx.node == "kind-worker"
    assert nginx.ports == (ContainerPort(8080, "TCP", "http"), ContainerPort(8443, "TCP", "https"))
    assert cluster.pod("ingress-nginx/controller-abc").ports == (ContainerPort(53, "UDP", None),)
    assert cluster.pod("gim/worker-0").ports == ()

    services = {s.key: s for s in cluster.services}
    assert services["gim/nginx"].cluster_ip == "10.96.0.20"
    assert [(p.port, p.target_port, p.protocol) for p in services["gim/nginx"].ports] == [
        (80, "http", "TCP"),
        (8443, 8443, "TCP"),
    ]
    assert services["gim/headless"].cluster_ip is None
    assert [p["metadata"]["name"] for p in cluster.policies] == ["gim-default-deny"]
    assert notes == ["skipped 2 ConfigMap objects", "skipped 1 Ingress object"]


def test_json_snapshot_gives_the_same_cluster_as_yaml(tmp_path: Path) -> None:
    from_yaml, _ = load([write(tmp_path, "snap.yaml", yaml.safe_dump(GIM_SNAPSHOT))])
    from_json, _ = load([write(tmp_path, "snap.json", json.dumps(GIM_SNAPSHOT, indent=2))])
    assert from_json == from_yaml


def test_multi_document_stream_skips_empty_documents(tmp_path: Path) -> None:
    text = "---\n# exported by hand\n" + "\n---\n".join(
        [yaml.safe_dump(namespace("x")), "", yaml.safe_dump(pod("x", "a", "10.0.0.1")), ""]
    )
    objects = read_documents(write(tmp_path, "stream.yaml", text))
    assert [o["kind"] for o in objects] == ["Namespace", "Pod"]


def test_json_array_and_typed_lists_from_the_api(tmp_path: Path) -> None:
    # The API's PodList leaves out the items' kind; kubectl's List keeps it.
    pod_list = {"apiVersion": "v1", "kind": "PodList", "items": [pod("x", "a", "10.0.0.1")]}
    del pod_list["items"][0]["kind"]
    text = json.dumps([namespace("x"), pod_list, kubectl_list(netpol("x", "deny"))])
    cluster, _ = load([write(tmp_path, "snap.json", text)])
    assert [p.key for p in cluster.pods] == ["x/a"]
    assert [p["metadata"]["name"] for p in cluster.policies] == ["deny"]


def test_several_files_and_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write(
        tmp_path, "ns.yaml", yaml.safe_dump(kubectl_list(namespace("x"), namespace("y", env="prod")))
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(kubectl_list(pod("y", "b", "10.0.0.2")))))
    cluster, origins = load_snapshot([first, "-"])
    assert [p.key for p in cluster.pods] == ["y/b"]
    assert cluster.namespaces["y"].labels["env"] == "prod"
    assert origins["Pod/y/b"] == "<stdin>"
    assert origins["Namespace/x"] == first


def test_policy_and_pod_namespace_default(tmp_path: Path) -> None:
    objects = [
        ("m.yaml", netpol(None, "deny")),
        ("m.yaml", {**pod("x", "a", "10.0.0.1"), "metadata": {"name": "a"}}),
    ]
    cluster = cluster_from_objects(objects, default_namespace="gim")
    assert cluster.policies[0]["metadata"]["namespace"] == "gim"
    assert [p.key for p in cluster.pods] == ["gim/a"]
    assert "gim" in cluster.namespaces
    assert cluster_from_objects([("m.yaml", netpol(None, "deny"))]).policies[0]["metadata"]["namespace"] == (
        "default"
    )


def test_finished_pods_are_skipped_with_a_note(tmp_path: Path) -> None:
    done = pod("x", "job-1", "10.0.0.9")
    done["status"]["phase"] = "Succeeded"
    cluster, notes = load(
        [write(tmp_path, "s.yaml", yaml.safe_dump(kubectl_list(done, pod("x", "a", "10.0.0.1"))))]
    )
    assert [p.key for p in cluster.pods] == ["x/a"]
    assert notes == ["skipped 1 finished pod (phase Succeeded or Failed)"]


def test_host_network_pods_keep_their_flag(tmp_path: Path) -> None:
    p = pod("kube-system", "calico-node-x", "172.18.0.3")
    p["spec"]["hostNetwork"] = True
    cluster, _ = load([write(tmp_path, "s.yaml", yaml.safe_dump(kubectl_list(p)))])
    assert cluster.pod("kube-system/calico-node-x").host_network is True


def error_of(tmp_path: Path, text: str, name: str = "snap.yaml") -> str:
    path = write(tmp_path, name, text)
    with pytest.raises(UserError) as info:
        load_cluster([path])
    message = str(info.value)
    assert message.startswith(path + ": "), message
    assert "\n" not in message
    return message[len(path) + 2 :]


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match=r"nope\.yaml: cannot read the snapshot: No such file or directory"):
        load_cluster([missing])


def test_bad_yaml_gives_the_line(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  metadata: {name: a\n"
    assert error_of(tmp_path, text).startswith("invalid YAML at line 6")


def test_bad_json_gives_the_line(tmp_path: Path) -> None:
    assert error_of(tmp_path, '{\n  "kind": "List",\n  "items": [,]\n}', "snap.json").startswith(
        "invalid JSON at line 3, column 13"
    )


def test_object_without_a_name(tmp_path: Path) -> None:
    nameless = pod("x", "a", "10.0.0.1")
    del nameless["metadata"]["name"]
    message = error_of(tmp_path, yaml.safe_dump(kubectl_list(namespace("x"), nameless)))
    assert message == "Pod/x/<unnamed>: metadata.name is required"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("- a\n- b\n", "document 1 is a list, not a Kubernetes object (a mapping)"),
        ("kind: List\nitems: [42]\n", "List.items[0] is a number, not a Kubernetes object"),
        ("kind: List\nitems: {a: 1}\n", "List.items must be a list"),
    ],
)
def test_documents_that_are_not_objects(tmp_path: Path, document: str, expected: str) -> None:
    assert error_of(tmp_path, document) == expected


def test_duplicate_object_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", yaml.safe_dump(pod("x", "a", "10.0.0.1")))
    second = write(tmp_path, "b.yaml", yaml.safe_dump(pod("x", "a", "10.0.0.2")))
    with pytest.raises(UserError) as info:
        load_cluster([first, second])
    assert str(info.value) == f"{second}: Pod/x/a: duplicate object (also in {first})"


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        (
            {"containerPort": 0},
            "spec.containers[1].ports[0].containerPort must be a port number from 1 to 65535, got 0",
        ),
        ({"containerPort": 70000}, "containerPort must be a port number from 1 to 65535, got 70000"),
        ({"containerPort": "http"}, "containerPort must be a port number from 1 to 65535, got 'http'"),
        ({"name": "http"}, "containerPort must be a port number from 1 to 65535, got None"),
        ({"containerPort": 80, "protocol": "tcp"}, "protocol must be one of TCP, UDP, SCTP, got 'tcp'"),
    ],
)
def test_bad_container_ports(tmp_path: Path, port: dict, expected: str) -> None:
    message = error_of(tmp_path, yaml.safe_dump(pod("x", "a", "10.0.0.1", [port])))
    assert message.startswith("Pod/x/a: ") and message.endswith(expected), message


def test_bad_service_port(tmp_path: Path) -> None:
    svc = {
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "x"},
        "spec": {"ports": [{"port": 99999}]},
    }
    assert error_of(tmp_path, yaml.safe_dump(svc)) == (
        "Service/x/s: spec.ports[0].port must be a port number from 1 to 65535, got 99999"
    )


def test_unquoted_label_value_is_an_error(tmp_path: Path) -> None:
    text = "kind: Pod\nmetadata:\n  name: a\n  namespace: x\n  labels:\n    canary: true\n"
    assert error_of(tmp_path, text) == "Pod/x/a: metadata.labels.canary must be a string (quote it), got True"


def test_a_large_json_snapshot_loads_fast(tmp_path: Path) -> None:
    items = [namespace(f"ns-{i}") for i in range(300)]
    items += [
        pod(
            f"ns-{i % 300}",
            f"pod-{i}",
            f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
            [{"containerPort": 8080}],
            app="a",
        )
        for i in range(5000)
    ]
    items += [netpol(f"ns-{i % 300}", f"np-{i}") for i in range(1000)]
    path = write(tmp_path, "big.json", json.dumps(kubectl_list(*items)))
    start = time.process_time()  # CPU time: other tests running in parallel do not count
    cluster = load_cluster([path])
    elapsed = time.process_time() - start
    assert (len(cluster.pods), len(cluster.policies), len(cluster.namespaces)) == (5000, 1000, 300)
    # The whole `simulate` of such a snapshot has 3 s; parsing must take a small part of it
    # (about 0.3 s here; a check per object that scans all objects would take minutes).
    assert elapsed < 1.5, f"loading took {elapsed:.2f}s of CPU"


def test_pod_ip_must_be_an_ip_address(tmp_path: Path) -> None:
    assert error_of(tmp_path, yaml.safe_dump(pod("x", "a", "10.0.0.300"))) == (
        "Pod/x/a: status.podIP '10.0.0.300' is not an IP address"
    )
