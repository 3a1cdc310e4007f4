"""KubeBackend: its pure conversions, and its API calls against a small fake API server on loopback.

The fake server stands in for the Kubernetes API server only (an external system): the real
kubernetes client serializes, sends and parses every request, so what is tested is our use of it.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from kubernetes import client

from conformance.api_errors import ApiUnreachable
from conformance.backends import kube
from conformance.backends.api_retry import RetryingBackend
from conformance.backends.base import BackendUnavailable, PodsCannotRun
from conformance.backends.kube import (
    KubeBackend,
    as_object,
    cni_from_daemonsets,
    order_for_apply,
    pod_is_ready,
    pod_problems,
    spec_hash,
)
from conformance.backends.pod_status import never_ready
from conformance.netpol.model import ContainerPort
from conformance.netpol.probing import Probe
from conformance.probes.agnhost import RUN_LABEL, client_pod, server_pod, service

RUN = "run-42"

# --- pure helpers ------------------------------------------------------------------------------


def test_apply_order_puts_namespaces_then_policies_before_workloads():
    objs = [
        {"kind": "Pod", "metadata": {"name": "p"}},
        {"kind": "Service", "metadata": {"name": "s"}},
        {"kind": "NetworkPolicy", "metadata": {"name": "n"}},
        {"kind": "Namespace", "metadata": {"name": "ns"}},
    ]
    assert [o["kind"] for o in order_for_apply(objs)] == ["Namespace", "NetworkPolicy", "Service", "Pod"]
    with pytest.raises(ValueError, match="ConfigMap"):
        order_for_apply([{"kind": "ConfigMap", "metadata": {"name": "c"}}])


def test_spec_hash_changes_with_the_spec_only():
    a = client_pod("x", "c", {"a": "1"}, run_id=RUN)
    b = client_pod("x", "c", {"a": "2"}, run_id=RUN)
    c = client_pod("x", "c", {"a": "1"}, image="other/agnhost:1", run_id=RUN)
    assert spec_hash(a) == spec_hash(b) != spec_hash(c)


def test_read_objects_convert_to_the_model():
    api_client = client.ApiClient()
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="nginx", namespace="gim", labels={"app": "nginx"}),
        spec=client.V1PodSpec(
            node_name="kind-worker2",
            containers=[
                client.V1Container(
                    name="server",
                    image="agnhost",
                    ports=[
                        client.V1ContainerPort(container_port=8080, name="http", protocol="TCP"),
                        client.V1ContainerPort(container_port=5353, protocol="UDP"),
                    ],
                )
            ],
        ),
        status=client.V1PodStatus(phase="Running", pod_ip="192.168.1.7"),
    )
    obj = as_object(api_client, pod, "Pod", "v1")
    assert obj["kind"] == "Pod" and obj["status"]["podIP"] == "192.168.1.7"
    svc = as_object(
        api_client,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="nginx", namespace="gim"),
            spec=client.V1ServiceSpec(
                selector={"app": "nginx"},
                cluster_ip="10.96.3.4",
                ports=[client.V1ServicePort(port=80, target_port="http", name="web")],
            ),
        ),
        "Service",
        "v1",
    )
    from conformance.netpol.snapshot import cluster_from_objects

    cluster = cluster_from_objects([("test", obj), ("test", svc)])
    (p,) = cluster.pods
    assert (p.key, p.ip, p.node, p.labels) == ("gim/nginx", "192.168.1.7", "kind-worker2", {"app": "nginx"})
    assert p.ports == (ContainerPort(8080, "TCP", "http"), ContainerPort(5353, "UDP", None))
    (s,) = cluster.services
    assert (s.cluster_ip, s.ports[0].target_port, s.selects(p)) == ("10.96.3.4", "http", True)


def test_pod_readiness_and_problems():
    ready = {
        "status": {
            "phase": "Running",
            "podIP": "1.2.3.4",
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    }
    assert pod_is_ready(ready)
    pulling = {
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
            "containerStatuses": [
                {
                    "name": "client",
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}},
                }
            ],
        }
    }
    assert not pod_is_ready(pulling)
    text = pod_problems(pulling)
    assert "phase Pending" in text and "ImagePullBackOff" in text and "no pod IP yet" in text


def _pod_with(container: dict) -> dict:
    status = {"phase": "Pending", "containerStatuses": [{"name": "c", **container}]}
    return {"metadata": {"namespace": "x", "name": "p"}, "status": status}


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({"state": {"waiting": {"reason": "ContainerCreating"}}}, None),
        ({"restartCount": 1, "lastState": {"terminated": {"exitCode": 0}}, "state": {"running": {}}}, None),
        (
            {"state": {"waiting": {"reason": "CreateContainerConfigError", "message": "no secret s"}}},
            "x/p: container c cannot start (CreateContainerConfigError): no secret s",
        ),
        (
            {
                "restartCount": 2,
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
                "state": {"running": {}},
            },
            "x/p: container c keeps exiting (OOMKilled, last exit code 137, restarted 2x)",
        ),
        (
            {"image": "bad name", "state": {"waiting": {"reason": "InvalidImageName", "message": "bad"}}},
            "x/p: container c cannot pull image 'bad name' (InvalidImageName): bad",
        ),
    ],
    ids=["creating", "exited 0", "config error", "restarted after OOM", "invalid image"],
)
def test_a_pod_that_will_never_be_ready_is_told_from_one_still_starting(container, expected):
    problem = never_ready(_pod_with(container))
    assert (problem.line() if problem else None) == expected


def test_cni_detection_names_the_daemonsets():
    assert cni_from_daemonsets([("calico-system", "calico-node"), ("kube-system", "kube-proxy")]) == (
        "Calico (calico-system/calico-node)"
    )
    assert "kindnet (kube-system/kindnet)" in cni_from_daemonsets([("kube-system", "kindnet")])
    assert "AWS VPC CNI" in cni_from_daemonsets([("kube-system", "aws-node")])
    assert cni_from_daemonsets([("kube-system", "kube-proxy")]).startswith("unknown")


# --- a fake API server on loopback -----------------------------------------------------------------


class FakeApiServer:
    """An in-memory Kubernetes API: namespaces, pods, services, networkpolicies, events, daemonsets."""

    def __init__(self):
        self.objects: dict[tuple[str, str, str], dict] = {}  # (resource, namespace, name)
        self.requests: list[tuple[str, str]] = []
        self.rv = 0
        self.unavailable = 0
        self.daemonsets = [("calico-system", "calico-node"), ("kube-system", "kube-proxy")]
        self.nodes: list[dict] = []
        self.nodes_forbidden = False
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _handle(self, method):
                with server.lock:
                    code, body = server.handle(method, self.path, self._body() if method != "GET" else None)
                self._send(code, body)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

            def do_PATCH(self):
                self._handle("PATCH")

            def do_DELETE(self):
                self._handle("DELETE")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    ROUTES = [
        (re.compile(r"^/api/v1/namespaces(?:/(?P<name>[^/]+))?$"), "namespaces", False),
        (
            re.compile(
                r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<res>pods|services|events)(?:/(?P<name>[^/]+))?$"
            ),
            None,
            True,
        ),
        (
            re.compile(
                r"^/apis/networking.k8s.io/v1/namespaces/(?P<ns>[^/]+)/networkpolicies(?:/(?P<name>[^/]+))?$"
            ),
            "networkpolicies",
            True,
        ),
    ]

    @staticmethod
    def status(code, reason, message):
        return code, {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": reason,
            "message": message,
            "code": code,
        }

    def handle(self, method, raw_path, body):
        url = urlparse(raw_path)
        path, query = url.path, parse_qs(url.query)
        self.requests.append((method, path))
        if self.unavailable:  # the next requests meet an API server that is restarting
            self.unavailable -= 1
            return self.status(
                503, "ServiceUnavailable", "the server is currently unable to handle the request"
            )
        if path == "/api/v1/nodes":
            if self.nodes_forbidden:  # the authorizer's wording (RBAC)
                return self.status(
                    403,
                    "Forbidden",
                    'nodes is forbidden: User "system:serviceaccount:ci:suite" cannot list resource "nodes" '
                    'in API group "" at the cluster scope',
                )
            return 200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": self.nodes}
        if path == "/apis/apps/v1/daemonsets":
            return 200, {
                "kind": "DaemonSetList",
                "apiVersion": "apps/v1",
                "metadata": {},
                "items": [
                    {"metadata": {"namespace": ns, "name": n}, "spec": {"selector": {}, "template": {}}}
                    for ns, n in self.daemonsets
                ],
            }
        for regex, route_resource, namespaced in self.ROUTES:  # noqa: B007 (used after the loop)
            m = regex.match(path)
            if m:
                break
        else:
            return self.status(404, "NotFound", f"no route {path}")
        groups = m.groupdict()
        resource = route_resource or groups["res"]
        ns = groups.get("ns") or ""
        name = groups.get("name")
        key = (resource, ns, name)
        if method == "GET" and name is None:
            items = [
                o for (r, n, _), o in self.objects.items() if r == resource and (not namespaced or n == ns)
            ]
            selector = (query.get("labelSelector") or [""])[0]
            if selector:  # "key=value" or "key" (exists), as the API server reads them
                k, eq, v = selector.partition("=")
                items = [
                    o
                    for o in items
                    if k in (o["metadata"].get("labels") or {})
                    and (not eq or o["metadata"]["labels"][k] == v)
                ]
            return 200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}
        if method == "POST":
            name = body["metadata"]["name"]
            key = (resource, ns, name)
            if key in self.objects:
                return self.status(409, "AlreadyExists", f'{resource} "{name}" already exists')
            return 201, self.store(key, body, created=True)
        if key not in self.objects:
            return self.status(404, "NotFound", f'{resource} "{name}" not found')
        current = self.objects[key]
        if method == "GET":
            return 200, current
        if method == "DELETE":
            if resource == "namespaces" and (current.get("status") or {}).get("phase") == "Terminating":
                # the registry's answer for a namespace already being deleted (namespace/storage.go)
                return self.status(409, "Conflict", "The system is ensuring all content is removed")
            del self.objects[key]
            if resource == "namespaces":
                for k in [k for k in self.objects if k[1] == name]:
                    del self.objects[k]
            if resource in ("pods", "namespaces", "services"):  # as the API server does: the object deleted
                return 200, current
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        if method == "PATCH":  # a strategic merge patch of labels: maps merge, null deletes a key
            labels = current["metadata"].setdefault("labels", {})
            for k, v in body["metadata"]["labels"].items():
                if v is None:
                    labels.pop(k, None)
                else:
                    labels[k] = v
            return 200, current
        if method == "PUT":
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return self.status(409, "Conflict", "the object has been modified")
            if resource == "services" and body["spec"].get("clusterIP") != current["spec"]["clusterIP"]:
                return self.status(422, "Invalid", "spec.clusterIP: Invalid value: field is immutable")
            return 200, self.store(key, body, created=False)
        return self.status(405, "MethodNotAllowed", method)

    def store(self, key, body, created):
        resource, ns, name = key
        self.rv += 1
        body.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        if resource == "namespaces":
            body["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        if resource == "services" and created:
            body["spec"]["clusterIP"] = f"10.96.0.{self.rv}"
        if resource == "pods" and created and name.split("-")[0] in KUBELET_STATES:
            body["status"], events = KUBELET_STATES[name.split("-")[0]](body)
            for i, (etype, reason, message, count) in enumerate(events):
                self.objects[("events", ns, f"{name}.{i}")] = {
                    "metadata": {"name": f"{name}.{i}", "namespace": ns},
                    "type": etype,
                    "reason": reason,
                    "message": message,
                    "count": count,
                    "involvedObject": {"name": name},
                }
        elif resource == "pods" and created:
            if name.startswith("stuck"):
                body["status"] = {
                    "phase": "Pending",
                    "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                    "containerStatuses": [
                        {
                            "name": "client",
                            "image": "agnhost",
                            "imageID": "",
                            "ready": False,
                            "restartCount": 0,
                            "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}},
                        }
                    ],
                }
                ev = {
                    "metadata": {"name": f"{name}.1", "namespace": ns},
                    "type": "Warning",
                    "reason": "Failed",
                    "message": "Failed to pull image",
                    "count": 2,
                    "involvedObject": {"name": name},
                }
                self.objects[("events", ns, f"{name}.1")] = ev
            else:
                body["status"] = {
                    "phase": "Running",
                    "podIP": f"192.168.0.{self.rv}",
                    "conditions": [{"type": "Ready", "status": "True"}],
                }
                body["spec"]["nodeName"] = "kind-worker"
        self.objects[key] = body
        return body


def _not_ready(phase: str, container: dict | None) -> dict:
    status: dict = {
        "phase": phase,
        "podIP": "192.168.0.77",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
    }
    if container is not None:
        status["containerStatuses"] = [{"imageID": "", "ready": False, **container}]
    return status


PULL_ERROR = (
    'rpc error: code = NotFound desc = failed to pull and unpack image "mirror.local/agnhost:2.52":'
    ' failed to resolve reference "mirror.local/agnhost:2.52": mirror.local/agnhost:2.52: not found'
)
# Pod statuses as a v1.28 kubelet writes them, by pod name prefix: (status, events).
KUBELET_STATES = {
    # agnhost porter without the sctp kernel module: exits 1, restarted with back-off
    "crashing": lambda pod: (
        _not_ready(
            "Running",
            {
                "name": "server",
                "image": pod["spec"]["containers"][0]["image"],
                "restartCount": 3,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off 40s restarting failed container=server pod=crashing-srv_x(uid)",
                    }
                },
                "lastState": {
                    "terminated": {
                        "exitCode": 1,
                        "reason": "Error",
                        "message": "2026/12/04 10:00:00 Failed to listen: protocol not supported\n",
                    }
                },
            },
        ),
        [("Warning", "BackOff", "Back-off restarting failed container server", 4)],
    ),
    # 1.28: the back-off message does not carry the pull error; the Failed event does
    "backoff": lambda pod: (
        _not_ready(
            "Pending",
            {
                "name": "client",
                "image": "mirror.local/agnhost:2.52",
                "restartCount": 0,
                "state": {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": 'Back-off pulling image "mirror.local/agnhost:2.52"',
                    }
                },
            },
        ),
        [
            ("Normal", "Pulling", 'Pulling image "mirror.local/agnhost:2.52"', 2),
            ("Warning", "Failed", f'Failed to pull image "mirror.local/agnhost:2.52": {PULL_ERROR}', 2),
            ("Warning", "Failed", "Error: ErrImagePull", 2),
        ],
    ),
    # not scheduled yet: may still become Ready
    "pending": lambda pod: (
        _not_ready("Pending", None),
        [("Warning", "FailedScheduling", "0/2 nodes are available: 2 Insufficient cpu.", 2)],
    ),
}


@pytest.fixture
def api(tmp_path):
    server = FakeApiServer()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server.url}}],
                "users": [{"name": "fake", "user": {"token": "t"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "fake",
            }
        )
    )
    backend = KubeBackend(str(kubeconfig), "fake")
    yield server, backend
    backend.close()
    server.close()


def ns_obj(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {RUN_LABEL: RUN}}}


def netpol(ns, name="deny-all"):
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def gim_objects(image="registry.k8s.io/e2e-test-images/agnhost:2.52"):
    return [
        server_pod(
            "gim", "nginx", {"app": "nginx"}, [ContainerPort(8080, name="http")], image=image, run_id=RUN
        ),
        service("gim", "nginx", {"app": "nginx"}, [ContainerPort(8080, name="http")], RUN),
        netpol("gim"),
        ns_obj("gim"),
        ns_obj("ingress-nginx"),
        client_pod("ingress-nginx", "client", {"role": "client"}, run_id=RUN),
    ]


def test_apply_then_state_round_trips_through_the_api(api):
    server, backend = api
    backend.apply(gim_objects())
    posts = [p for m, p in server.requests if m == "POST"]
    assert posts[:2] == ["/api/v1/namespaces", "/api/v1/namespaces"]
    assert posts.index("/apis/networking.k8s.io/v1/namespaces/gim/networkpolicies") < posts.index(
        "/api/v1/namespaces/gim/pods"
    )
    backend.wait_ready(["gim", "ingress-nginx"], timeout_s=5)
    cluster = backend.state(["gim", "ingress-nginx"])
    assert cluster.namespaces["gim"].labels[RUN_LABEL] == RUN
    nginx = cluster.pod("gim/nginx")
    assert nginx.ip and nginx.ports == (ContainerPort(8080, "TCP", "http"),) and nginx.node == "kind-worker"
    (svc,) = cluster.services
    assert svc.cluster_ip and svc.selects(nginx)
    assert [p["metadata"]["name"] for p in cluster.policies] == ["deny-all"]


def test_apply_again_replaces_in_place_and_recreates_changed_pods(api):
    server, backend = api
    backend.apply(gim_objects())
    svc_ip = server.objects[("services", "gim", "nginx")]["spec"]["clusterIP"]
    pod_ip = server.objects[("pods", "gim", "nginx")]["status"]["podIP"]
    server.requests.clear()
    backend.apply(gim_objects())  # same objects: replace, keep the Service IP, keep the pods
    assert server.objects[("services", "gim", "nginx")]["spec"]["clusterIP"] == svc_ip
    assert ("DELETE", "/api/v1/namespaces/gim/pods/nginx") not in server.requests
    assert server.objects[("pods", "gim", "nginx")]["status"]["podIP"] == pod_ip
    backend.apply(gim_objects(image="mirror.local/agnhost:2.52"))  # a new spec: delete + create
    assert ("DELETE", "/api/v1/namespaces/gim/pods/nginx") in server.requests
    assert (
        server.objects[("pods", "gim", "nginx")]["spec"]["containers"][0]["image"]
        == "mirror.local/agnhost:2.52"
    )


def test_apply_again_with_a_label_dropped_leaves_the_pod_without_it(api):
    server, backend = api
    pod = client_pod("ingress-nginx", "client", {"role": "client", "tier": "edge"}, run_id=RUN)
    backend.apply([ns_obj("ingress-nginx"), pod])
    backend.apply([client_pod("ingress-nginx", "client", {"role": "client"}, run_id=RUN)])
    labels = server.objects[("pods", "ingress-nginx", "client")]["metadata"]["labels"]
    assert labels == {"role": "client", RUN_LABEL: RUN}
    assert ("DELETE", "/api/v1/namespaces/ingress-nginx/pods/client") not in server.requests


def test_a_namespace_still_terminating_is_waited_out_then_created(api, monkeypatch):
    monkeypatch.setattr(kube, "GONE_POLL_S", 0.05)
    server, backend = api
    server.objects[("namespaces", "", "gim")] = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "gim", "resourceVersion": "1", "labels": {"old": "run"}},
        "status": {"phase": "Terminating"},
    }

    def finish_deletion():
        with server.lock:
            del server.objects[("namespaces", "", "gim")]

    timer = threading.Timer(0.3, finish_deletion)
    timer.start()
    backend.apply([ns_obj("gim"), netpol("gim")])
    timer.join()
    ns = server.objects[("namespaces", "", "gim")]
    assert ns["metadata"]["labels"][RUN_LABEL] == RUN and "old" not in ns["metadata"]["labels"]
    assert ("networkpolicies", "gim", "deny-all") in server.objects
    assert ("PUT", "/api/v1/namespaces/gim") not in server.requests


def test_wait_ready_waits_for_the_probe_pods_only(api, monkeypatch):
    # A borrowed namespace keeps its own pods (the user's workloads, ready or not): not ours to wait for.
    monkeypatch.setattr(kube, "READY_POLL_S", 0.05)
    server, backend = api
    backend.apply([ns_obj("monitoring"), client_pod("monitoring", "client", {}, run_id=RUN)])
    server.objects[("pods", "monitoring", "exporter")] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "exporter", "namespace": "monitoring", "labels": {"app": "exporter"}},
        "spec": {"containers": [{"name": "exporter", "image": "exporter"}]},
        "status": {
            "phase": "Running",
            "podIP": "192.168.3.3",
            "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        },
    }
    backend.wait_ready(["monitoring"], timeout_s=1)
    assert "monitoring/exporter" in {f"{p.namespace}/{p.name}" for p in backend.state(["monitoring"]).pods}


def test_delete_ignores_what_is_already_gone_and_delete_run_finds_namespaces_by_label(api):
    server, backend = api
    backend.apply(gim_objects())
    backend.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "unrelated"}}])
    backend.delete([netpol("gim"), netpol("gim", "never-existed")])
    assert ("networkpolicies", "gim", "deny-all") not in server.objects
    deleted = backend.delete_run(RUN, wait=True, timeout_s=5)
    assert sorted(deleted) == ["gim", "ingress-nginx"]
    assert [k for k in server.objects if k[0] == "namespaces"] == [("namespaces", "", "unrelated")]


def test_wait_ready_times_out_with_phase_and_events(api, monkeypatch):
    monkeypatch.setattr(kube, "READY_POLL_S", 0.05)
    server, backend = api
    backend.apply([ns_obj("x"), client_pod("x", "pending-client", {}, run_id=RUN)])
    assert backend.unready_pods(["x"]) == {"x/pending-client": None}, "not scheduled yet: it may still run"
    with pytest.raises(RuntimeError) as info:
        backend.wait_ready(["x"], timeout_s=0.2)
    message = str(info.value)
    assert "x/pending-client" in message and "phase Pending" in message and "not ready after 0.2s" in message
    assert "Warning FailedScheduling: 0/2 nodes are available: 2 Insufficient cpu. (x2)" in message


# --- issue 17: pods that never become Ready are reported at once, from their container statuses -------


def test_a_crash_looping_container_is_reported_at_once_with_its_exit_code_and_last_words(api, monkeypatch):
    monkeypatch.setattr(kube, "READY_POLL_S", 0.05)
    server, backend = api
    pod = server_pod("x", "crashing-srv", {}, [ContainerPort(8080), ContainerPort(8081, "SCTP")], run_id=RUN)
    backend.apply([ns_obj("x"), pod])
    with pytest.raises(PodsCannotRun) as info:
        backend.wait_ready(["x"], timeout_s=60)  # not waited out: the first poll says it
    assert str(info.value) == (
        "x/crashing-srv: container server keeps exiting (CrashLoopBackOff, last exit code 1, restarted 3x):"
        " 2026/12/04 10:00:00 Failed to listen: protocol not supported"
    )
    assert server.requests.count(("GET", "/api/v1/namespaces/x/pods")) == 1
    (problem,) = backend.unready_pods(["x"]).values()
    assert (problem.container, problem.exit_code, problem.restarts) == ("server", 1, 3)


def test_an_image_that_cannot_be_pulled_names_the_image_and_the_error_from_the_kubelets_event(api):
    # Before Kubernetes 1.32 the ImagePullBackOff message is only 'Back-off pulling image "..."'.
    _, backend = api
    pod = client_pod("x", "backoff-client", {}, image="mirror.local/agnhost:2.52", run_id=RUN)
    backend.apply([ns_obj("x"), pod])
    with pytest.raises(PodsCannotRun) as info:
        RetryingBackend(backend, timeout_s=5).wait_ready(["x"], timeout_s=60)
    assert str(info.value) == (
        "x/backoff-client: container client cannot pull image 'mirror.local/agnhost:2.52' (ImagePullBackOff):"
        f" {PULL_ERROR}"
    )


def test_an_image_pull_error_is_reported_at_once_and_diagnosed(api):
    _, backend = api
    backend.apply([ns_obj("x"), client_pod("x", "stuck-client", {}, run_id=RUN)])
    with pytest.raises(PodsCannotRun, match="x/stuck-client: container client cannot pull image 'agnhost'"):
        backend.wait_ready(["x"], timeout_s=60)
    assert "ErrImagePull" in backend.diagnose("x/stuck-client")


def test_detect_cni_and_repro(api):
    server, backend = api
    assert backend.detect_cni() == "Calico (calico-system/calico-node)"
    probe = Probe(client="ingress-nginx/client", target="gim/nginx", host="192.168.0.9", port=8080)
    command = backend.repro(probe, 2)
    argv = shlex.split(command)
    assert argv[:7] == ["kubectl", "--kubeconfig", backend.kubeconfig, "--context", "fake", "exec", "-n"]
    assert argv[7:] == [
        "ingress-nginx",
        "client",
        "--",
        "/agnhost",
        "connect",
        "192.168.0.9:8080",
        "--timeout=2s",
        "--protocol=tcp",
    ]


def test_probe_threads_get_their_own_api_clients(api):
    _, backend = api
    a, b = backend.new_core_api(), backend.new_core_api()
    assert a.api_client is not b.api_client is not backend.api_client
    assert a.api_client.configuration.host == backend.configuration.host


def test_a_bad_kubeconfig_is_backend_unavailable(tmp_path):
    with pytest.raises(BackendUnavailable, match="--backend model"):
        KubeBackend(str(tmp_path / "missing"), "nope")


def test_probe_through_the_real_client_reports_a_failed_exec_as_an_error(api):
    # The fake server cannot upgrade to a websocket: the real client's exec call is made (its argument
    # validation passes) and fails, which must come back as an error with the reason, never as blocked.
    _, backend = api
    probe = Probe(client="ingress-nginx/client", target="gim/nginx", host="192.168.0.9", port=8080)
    (obs,) = backend.probe([probe], timeout_s=1)
    assert obs.outcome.value == "error"
    assert "exec in ingress-nginx/client failed" in obs.detail


# --- issue 8: asynchronous deletion, transient errors, what a worker created ---------------------------


def _existing_namespace(server, name: str, phase: str = "Active") -> None:
    server.objects[("namespaces", "", name)] = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "resourceVersion": "1"},
        "status": {"phase": phase},
    }


def test_deleting_a_namespace_already_terminating_is_not_an_error(api):
    server, backend = api
    _existing_namespace(server, "going", "Terminating")
    backend.delete([ns_obj("going")])
    assert backend.namespace_phases()["going"] == "Terminating"


def test_the_backend_remembers_the_namespaces_it_created_until_it_deletes_them(api):
    server, backend = api
    _existing_namespace(server, "ingress-nginx")
    backend.apply(gim_objects())
    assert backend.created_namespaces == ["gim"], "a namespace that existed before is not the run's"
    backend.delete([ns_obj("gim")])
    assert backend.created_namespaces == []


def test_a_restarting_api_server_is_retried(api):
    server, backend = api
    retrying = RetryingBackend(backend, timeout_s=30)
    server.unavailable = 2
    retrying.apply([ns_obj("gim")])
    assert ("namespaces", "", "gim") in server.objects
    assert server.requests.count(("POST", "/api/v1/namespaces")) == 3


def _closed_port_kubeconfig(tmp_path) -> tuple[str, int]:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    cluster = {"name": "down", "cluster": {"server": f"http://127.0.0.1:{port}"}}
    context = {"name": "down", "context": {"cluster": "down", "user": "u"}}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "u", "user": {}}],
    }
    kubeconfig.write_text(yaml.safe_dump({**config, "contexts": [context], "current-context": "down"}))
    return str(kubeconfig), port


def test_an_api_server_that_refuses_connections_is_one_line_past_the_retry_timeout(tmp_path):
    kubeconfig, port = _closed_port_kubeconfig(tmp_path)
    retrying = RetryingBackend(KubeBackend(kubeconfig, "down"), timeout_s=1)
    with pytest.raises(ApiUnreachable) as down:
        retrying.state([])
    assert str(down.value) == f"API server unreachable at http://127.0.0.1:{port} for 1 s: connection refused"


def test_an_outage_leaves_no_urllib3_retry_warnings_in_the_captured_log(tmp_path, caplog):
    # The suite retries with tenacity and says it in one line; urllib3's own quick retries would log a
    # "Retrying (Retry(total=2, ...)) after connection broken by ..." warning each.
    caplog.set_level(logging.DEBUG)
    kubeconfig, _ = _closed_port_kubeconfig(tmp_path)
    backend = KubeBackend(kubeconfig, "down")
    for call in (lambda: backend.state([]), lambda: backend.apply([ns_obj("gim")])):
        with pytest.raises(ApiUnreachable):
            RetryingBackend(backend, timeout_s=1)._retry(call)
    assert [r.getMessage() for r in caplog.records if "Retrying" in r.getMessage()] == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# --- nodes (issue 22: every check crosses nodes where it can) ----------------------------------------


def _node(name: str, ready: str = "True", unschedulable: bool = False, taints: tuple = ()) -> dict:
    """A Node as a v1.34 API server serves it (the fields the scheduler's filters read)."""
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"unschedulable": unschedulable, "taints": [dict(t) for t in taints]},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": ready, "reason": "KubeletReady"},
            ]
        },
    }


def test_the_nodes_are_read_with_their_readiness_cordon_and_taints(api):
    from conformance.backends.nodes import Schedulable

    server, backend = api
    server.nodes = [
        _node(
            "kind-control-plane",
            taints=({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},),
        ),
        _node("kind-worker"),
        _node(
            "kind-worker2",
            unschedulable=True,  # kubectl cordon: the field and the taint the node controller adds
            taints=({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": None},),
        ),
        _node("kind-worker3", ready="Unknown"),
    ]
    assert RetryingBackend(backend, 5).schedulable_nodes() == Schedulable(
        ("kind-worker",),
        (
            ("kind-control-plane", "taint node-role.kubernetes.io/control-plane:NoSchedule"),
            ("kind-worker2", "cordoned (spec.unschedulable)"),
            ("kind-worker3", "NotReady"),
        ),
    )
    assert ("GET", "/api/v1/nodes") in server.requests


def test_an_identity_that_may_not_list_nodes_gets_a_note_instead_of_a_cross_node_verdict(api):
    from conformance.backends.base import Forbidden
    from conformance.suite.cross_node import coverage

    server, backend = api
    server.nodes_forbidden = True
    with pytest.raises(Forbidden, match='cannot list resource "nodes"'):
        backend.nodes()
    found = coverage(RetryingBackend(backend, 5), [])
    assert found.schedulable is None and found.problem == ""
    assert found.note().startswith("cross-node coverage not checked: cannot list nodes: nodes is forbidden: ")
