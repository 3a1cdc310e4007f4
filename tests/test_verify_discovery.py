"""Live discovery against a fake API server on loopback: partly installed API groups, and API failures.

The real kubernetes client sends every request and raises its real errors (ApiException 404, 403,
500; urllib3 connection errors); the fake stands in for the API server only (issue 8, defect 2:
ServiceMonitor and Prometheus CRDs installed, PodMonitor not, used to crash verify with exit 1).
"""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client

from conformance.commands.cli import main
from conformance.verify.analysis import analyse
from conformance.verify.kinds import file_key
from conformance.verify.live import discover, served_versions
from tests import verify_snapshots as snap
from tests.test_kube_backend import FakeApiServer

CORE_PATHS = {
    "/api/v1/namespaces": "Namespace",
    "/api/v1/pods": "Pod",
    "/api/v1/services": "Service",
    "/apis/networking.k8s.io/v1/networkpolicies": "NetworkPolicy",
    "/apis/networking.k8s.io/v1/ingresses": "Ingress",
    "/apis/networking.k8s.io/v1/ingressclasses": "IngressClass",
}


class DiscoveryApiServer(FakeApiServer):
    """Serves the objects of a snapshot as an API server does: /apis discovery lists the installed
    groups, a kind whose CRD is missing answers 404, ``failures`` maps a path to a status code."""

    def __init__(self, objects, groups):
        super().__init__()
        self.groups = groups  # group -> served versions (preferred first)
        self.failures: dict[str, int] = {}
        self.by_path: dict[str, list[dict]] = {}
        for obj in objects:
            api_version = obj["apiVersion"]
            plural = _plural(obj)
            path = (
                f"/api/{api_version}/{plural}" if "/" not in api_version else f"/apis/{api_version}/{plural}"
            )
            self.by_path.setdefault(path, []).append(obj)

    def handle(self, method, raw_path, body):
        path = raw_path.split("?")[0].rstrip("/")
        self.requests.append((method, path))
        if path in self.failures:
            code = self.failures[path]
            return self.status(
                code, {403: "Forbidden", 500: "InternalError"}[code], "etcdserver: leader changed"
            )
        if method == "POST" and path.endswith("/selfsubjectaccessreviews"):
            return 201, {**body, "status": {"allowed": True}}
        if path == "/apis":
            return 200, {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": name,
                        "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in versions],
                        "preferredVersion": {"groupVersion": f"{name}/{versions[0]}", "version": versions[0]},
                    }
                    for name, versions in self.groups.items()
                ],
            }
        parts = path.split("/")
        served = path in CORE_PATHS or (
            len(parts) == 5 and parts[3] in self.groups.get(parts[2], []) and path in self.by_path
        )
        if method == "GET" and served:
            return 200, {
                "kind": "List",
                "apiVersion": "v1",
                "metadata": {},
                "items": self.by_path.get(path, []),
            }
        return self.status(404, "NotFound", "the server could not find the requested resource")


def _plural(obj):
    kind = obj["kind"]
    plurals = {"Prometheus": "prometheuses", "Ingress": "ingresses", "IngressClass": "ingressclasses"}
    return {**plurals, "NetworkPolicy": "networkpolicies"}.get(kind, kind.lower() + "s")


def _kubeconfig(tmp_path, url):
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": url}}],
                "users": [{"name": "fake", "user": {"token": "t"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "fake",
            }
        )
    )
    return str(path)


def _without(objects, kind):
    return [o for o in objects if o["kind"] != kind]


@pytest.fixture
def partly_installed():
    """prometheus-operator's ServiceMonitor and Prometheus CRDs, no PodMonitor; no Gateway API."""
    objects = _without(snap.cluster("enforce", ["ingress-nginx"]), "PodMonitor")
    server = DiscoveryApiServer(objects, {"monitoring.coreos.com": ["v1"], "apps": ["v1"]})
    yield server
    server.close()


def _api_client(url):
    configuration = client.Configuration()
    configuration.host = url
    return client.ApiClient(configuration=configuration)


def test_a_kind_whose_crd_is_missing_is_a_note_and_the_rest_is_still_checked(partly_installed):
    api = _api_client(partly_installed.url)
    view = discover(api, "fake", served_versions(api))
    assert ("GET", "/apis/monitoring.coreos.com/v1/podmonitors") in partly_installed.requests
    assert "PodMonitors (monitoring.coreos.com) are not served by this cluster: not checked" in view.notes
    gateway_note = next(n for n in view.notes if "gateway.networking.k8s.io" in n)
    assert "HTTPRoutes" in gateway_note and "not checked" in gateway_note
    # a group absent from discovery is not even asked for
    assert not any("gateway.networking.k8s.io" in p for _, p in partly_installed.requests)
    assert view.has_kind("ServiceMonitor") and not view.has_kind("PodMonitor")
    result = analyse(view, snap.GIM)
    assert "monitoring" in result.would_block  # the ServiceMonitor evidence still counts
    assert result.exit_status == 1


def test_an_api_group_at_an_older_version_is_listed_at_the_version_it_serves():
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "HTTPRoute",
        "metadata": {"name": "gim", "namespace": snap.GIM},
        "spec": {},
    }
    server = DiscoveryApiServer(
        [*snap.cluster("enforce", []), route], {"gateway.networking.k8s.io": ["v1beta1"]}
    )
    try:
        api = _api_client(server.url)
        view = discover(api, "fake", served_versions(api))
    finally:
        server.close()
    assert [file_key(r) for r in view.objects("HTTPRoute")] == ["HTTPRoute"]
    assert ("GET", "/apis/gateway.networking.k8s.io/v1beta1/httproutes") in server.requests


def _verify(capsys, kubeconfig):
    status = main(["verify", "--gim-namespace", snap.GIM, "--kubeconfig", kubeconfig, "--deadline", "1"])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_server_error_while_listing_is_exit_2_with_one_line(partly_installed, tmp_path, capsys):
    partly_installed.failures["/apis/monitoring.coreos.com/v1/servicemonitors"] = 500
    status, out, err = _verify(capsys, _kubeconfig(tmp_path, partly_installed.url))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "ServiceMonitors (monitoring.coreos.com)" in err and "500" in err and "leader changed" in err


def test_a_forbidden_list_names_the_rbac_manifest(partly_installed, tmp_path, capsys):
    partly_installed.failures["/api/v1/pods"] = 403
    status, _, err = _verify(capsys, _kubeconfig(tmp_path, partly_installed.url))
    assert status == 2 and err.count("\n") == 1
    assert "forbidden to read Pods" in err and "deploy/rbac-verify.yaml" in err


def test_an_unreachable_api_server_is_exit_2_with_one_line(tmp_path, capsys, caplog):
    server = DiscoveryApiServer([], {})
    url = server.url
    server.close()  # nothing listens there any more: connection refused
    status, _, err = _verify(capsys, _kubeconfig(tmp_path, url))
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "could not be reached" in err
    assert not [r for r in caplog.records if "Retrying" in r.getMessage()], "nor urllib3's retry warnings"


def test_an_answer_verify_did_not_foresee_is_exit_2_not_a_verdict(partly_installed, tmp_path, capsys):
    partly_installed.by_path["/apis/monitoring.coreos.com/v1/prometheuses"] = ["not an object"]
    status, out, err = _verify(capsys, _kubeconfig(tmp_path, partly_installed.url))
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "unexpected error, nothing was judged" in err


def test_every_served_route_kind_is_listed_and_traced_live():
    route = snap.gateway_route("HTTPRoute", snap.GIM, "gim", [("nginx", 443)], ("edge", "public"))
    vs = snap.virtual_service(snap.GIM, "gim", "nginx", 443, ["edge/public"])
    objects = [
        *snap.cluster("enforce", []),
        snap.namespace("edge"),
        snap.gateway_class("public-class", "example.com/gateway"),
        snap.gateway("edge", "public", "public-class"),
        snap.istio_gateway("edge", "public", {"istio": "ingressgateway"}),
        snap.pod("edge", "gw-0", {"gateway.networking.k8s.io/gateway-name": "public"}, [(8443, "https")]),
        snap.pod("edge", "istio-gw-0", {"istio": "ingressgateway"}, [(8443, "https")]),
        route,
        vs,
    ]
    for obj in objects:  # this cluster serves Istio at v1beta1 only (Istio before 1.22)
        if obj["apiVersion"].startswith("networking.istio.io/"):
            obj["apiVersion"] = "networking.istio.io/v1beta1"
    groups = {"gateway.networking.k8s.io": ["v1", "v1beta1"], "networking.istio.io": ["v1beta1", "v1alpha3"]}
    server = DiscoveryApiServer(objects, groups)
    try:
        api = _api_client(server.url)
        view = discover(api, "fake", served_versions(api))
    finally:
        server.close()
    assert [g["metadata"]["name"] for g in view.objects("Gateway")] == ["public"]
    assert [g["apiVersion"] for g in view.objects("IstioGateway")] == ["networking.istio.io/v1beta1"]
    assert not any("HTTPRoutes" in n or "VirtualServices" in n for n in view.notes)
    assert any("TLSRoutes" in n and "TCPRoutes" in n for n in view.notes)  # experimental channel absent
    found = {n.namespace: n.evidence for n in analyse(view, snap.GIM).shadow.needs}["edge"]
    assert any("HTTPRoute/gitguardian/gim" in e and "edge/gw-0" in e for e in found)
    assert any("VirtualService gitguardian/gim" in e and "edge/istio-gw-0" in e for e in found)
