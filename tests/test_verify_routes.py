"""Routes into GIM beyond Ingress, and scraping without prometheus-operator, from snapshots (issue 11).

Each test builds the objects as ``kubectl get -o yaml`` prints them (tests/verify_snapshots.py) and
checks who verify says needs GIM, with which evidence chain, and what enforce would block.
"""

from __future__ import annotations

import pytest

from conformance.verify.analysis import analyse
from conformance.verify.discovery import view_from_objects
from tests import verify_snapshots as snap

GIM = snap.GIM


def analysis(*extra, allowed=(), mode="enforce"):
    objects = (
        snap.gim_workloads()
        + snap.unrelated()
        + snap.policies(mode, allowed)
        + [o for group in extra for o in group]
    )
    view = view_from_objects([("snap.yaml", o) for o in objects], source="snap.yaml")
    return analyse(view, GIM)


def needs(result) -> dict[str, list[str]]:
    return {n.namespace: n.evidence for n in result.shadow.needs}


def targets(result, namespace) -> set[tuple[str, int]]:
    need = result.shadow.need(namespace) or next(
        n for n in result.shadow.host_network if n.namespace == namespace
    )
    return {(t.pod, t.port) for t in need.targets}


NGINX_POD = "gitguardian/nginx-6c8d9-x2x4z"
PUBLIC_API_POD = "gitguardian/public-api-7c4d-q8w3e"


# -- Gateway API --------------------------------------------------------------------------------------

# (controllerName, the data-plane pod's namespace, its labels) as each project documents them.
ENVOY_GATEWAY = (
    "gateway.envoyproxy.io/gatewayclass-controller",
    "envoy-gateway-system",
    {
        "app.kubernetes.io/name": "envoy",
        "app.kubernetes.io/component": "proxy",
        "gateway.envoyproxy.io/owning-gateway-name": "public",
        "gateway.envoyproxy.io/owning-gateway-namespace": "edge",
    },
)
ISTIO = (
    "istio.io/gateway-controller",
    "edge",
    {"gateway.networking.k8s.io/gateway-name": "public", "istio.io/rev": "default"},
)
CONTOUR = (
    "projectcontour.io/gateway-controller",
    "edge",
    {"app.kubernetes.io/name": "contour", "projectcontour.io/owning-gateway-name": "public"},
)
NGINX_GATEWAY_FABRIC = (
    "gateway.nginx.org/nginx-gateway-controller",
    "edge",
    {"gateway.networking.k8s.io/gateway-name": "public", "app.kubernetes.io/name": "public-nginx"},
)


def gateway_setup(controller, pod_ns, labels, *, host_network=False):
    objects = [
        snap.namespace("edge"),
        snap.gateway_class("public-class", controller),
        snap.gateway("edge", "public", "public-class"),
    ]
    if pod_ns not in ("edge", "kube-system"):  # kube-system is in snap.unrelated()
        objects.append(snap.namespace(pod_ns))
    objects.append(
        snap.pod(
            pod_ns, "gateway-dataplane-7f9c-abcde", labels, [(10443, "https")], host_network=host_network
        )
    )
    return objects


@pytest.mark.parametrize(
    "kind, implementation",
    [
        ("HTTPRoute", ENVOY_GATEWAY),
        ("GRPCRoute", ISTIO),
        ("TLSRoute", CONTOUR),
        ("TCPRoute", NGINX_GATEWAY_FABRIC),
    ],
    ids=["envoy-gateway", "istio", "contour", "nginx-gateway-fabric"],
)
def test_a_gateway_route_to_gim_is_traced_to_the_gateways_data_plane_pods(kind, implementation):
    controller, pod_ns, labels = implementation
    route = snap.gateway_route(kind, GIM, "gim", [("nginx", 443)], ("edge", "public"))
    result = analysis(gateway_setup(controller, pod_ns, labels), [route])
    (evidence,) = needs(result)[pod_ns]
    assert f"{kind}/gitguardian/gim routes to Service gitguardian/nginx port 443" in evidence
    assert f"Gateway edge/public (class public-class, controller {controller})" in evidence
    assert f"data plane pod {pod_ns}/gateway-dataplane-7f9c-abcde" in evidence
    assert targets(result, pod_ns) == {(NGINX_POD, 8443)}
    assert pod_ns in result.would_block
    assert result.exit_status == 1


def test_once_the_gateways_namespace_is_allowed_it_conforms():
    route = snap.gateway_route("HTTPRoute", GIM, "gim", [("nginx", 443)], ("edge", "public"))
    result = analysis(gateway_setup(*ENVOY_GATEWAY), [route], allowed=["envoy-gateway-system"])
    assert "envoy-gateway-system" in needs(result) and result.would_block == {}


def test_a_route_in_another_namespace_naming_a_gim_backend_says_it_needs_a_reference_grant():
    route = snap.gateway_route(
        "HTTPRoute", "edge", "gim", [("public-api", None)], (None, "public"), backend_namespace=GIM
    )
    result = analysis(gateway_setup(*ENVOY_GATEWAY), [route])
    (evidence,) = needs(result)["envoy-gateway-system"]
    assert "HTTPRoute/edge/gim" in evidence and "needs a ReferenceGrant in gitguardian" in evidence
    assert targets(result, "envoy-gateway-system") == {(PUBLIC_API_POD, 8001)}


def test_a_route_to_a_service_that_is_not_gims_is_not_evidence():
    shop = snap.service("team-a", "shop", {"app": "shop"}, [(80, "http", "http")])
    route = snap.gateway_route("HTTPRoute", "team-a", "shop", [("shop", 80)], ("edge", "public"))
    result = analysis(gateway_setup(*ENVOY_GATEWAY), [shop, route])
    assert "envoy-gateway-system" not in needs(result)
    assert not any("HTTPRoute" in w for w in result.warnings)


def test_a_gateway_whose_class_no_pod_serves_is_reported_unplaced():
    objects = gateway_setup(*ENVOY_GATEWAY)
    objects[-1]["metadata"]["labels"]["gateway.envoyproxy.io/owning-gateway-name"] = "another-gateway"
    route = snap.gateway_route("HTTPRoute", GIM, "gim", [("nginx", 443)], ("edge", "public"))
    result = analysis(objects, [route])
    assert "envoy-gateway-system" not in needs(result)
    (warning,) = [w for w in result.warnings if "HTTPRoute/gitguardian/gim" in w]
    assert "no pod in the input is its data plane" in warning
    assert "gateway.envoyproxy.io/owning-gateway-name=public" in warning


def test_an_unknown_controller_falls_back_to_the_gep_1762_label():
    labels = {"gateway.networking.k8s.io/gateway-name": "public"}
    route = snap.gateway_route("HTTPRoute", GIM, "gim", [("nginx", 443)], ("edge", "public"))
    result = analysis(gateway_setup("example.com/some-gateway", "edge", labels), [route])
    (evidence,) = needs(result)["edge"]
    assert "GEP-1762" in evidence


def test_cilium_gateway_is_host_network_with_ciliums_own_advice():
    labels = {"k8s-app": "cilium-envoy", "app.kubernetes.io/name": "cilium-envoy"}
    route = snap.gateway_route("HTTPRoute", GIM, "gim", [("nginx", 443)], ("edge", "public"))
    result = analysis(
        gateway_setup("io.cilium/gateway-controller", "kube-system", labels, host_network=True), [route]
    )
    assert "kube-system" not in needs(result)
    assert [n.namespace for n in result.shadow.host_network] == ["kube-system"]
    (warning,) = [w for w in result.warnings if w.startswith("host-network pods")]
    assert "CiliumNetworkPolicy (fromEntities: [ingress])" in warning


# -- Istio ----------------------------------------------------------------------------------------------


def istio_ingress_gateway():
    labels = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    return [
        snap.namespace("istio-system"),
        snap.pod("istio-system", "istio-ingressgateway-5d9f-z8k4m", labels, [(8443, "https")]),
        snap.istio_gateway("istio-system", "gim-gateway", {"istio": "ingressgateway"}),
    ]


def test_a_virtual_service_to_gim_is_traced_through_its_gateway_selector():
    vs = snap.virtual_service(GIM, "gim", "nginx", 443, ["istio-system/gim-gateway"])
    result = analysis(istio_ingress_gateway(), [vs])
    (evidence,) = needs(result)["istio-system"]
    assert "VirtualService gitguardian/gim routes to Service gitguardian/nginx port 443" in evidence
    assert "Istio Gateway istio-system/gim-gateway (selector istio=ingressgateway)" in evidence
    assert "istio-system/istio-ingressgateway-5d9f-z8k4m" in evidence
    assert targets(result, "istio-system") == {(NGINX_POD, 8443)}
    assert "istio-system" in result.would_block


def test_a_virtual_service_elsewhere_names_gim_by_its_full_host():
    vs = snap.virtual_service(
        "istio-system", "gim", "public-api.gitguardian.svc.cluster.local", None, ["gim-gateway"]
    )
    result = analysis(istio_ingress_gateway(), [vs])
    assert targets(result, "istio-system") == {(PUBLIC_API_POD, 8001)}


def test_virtual_services_that_are_not_gims_or_only_for_the_mesh_are_not_evidence():
    other = snap.virtual_service("team-a", "shop", "shop", 80, ["istio-system/gim-gateway"])
    mesh_only = snap.virtual_service(GIM, "internal", "internal-api", 8000, None)
    result = analysis(istio_ingress_gateway(), [other, mesh_only])
    assert "istio-system" not in needs(result)


def test_a_gateway_selector_matching_no_pod_is_reported_unplaced():
    objects = istio_ingress_gateway()
    objects[-1]["spec"]["selector"] = {"istio": "internal-gateway"}
    vs = snap.virtual_service(GIM, "gim", "nginx", 443, ["istio-system/gim-gateway"])
    result = analysis(objects, [vs])
    assert "istio-system" not in needs(result)
    assert any("no pod matches its selector istio=internal-gateway" in w for w in result.warnings)


def test_a_sidecar_injected_gim_namespace_is_noted():
    result = analysis(istio_ingress_gateway())
    assert not any("Istio mesh" in n for n in result.notes)
    objects = [o for o in snap.gim_workloads() if o["kind"] != "Namespace"]
    injected = [
        snap.namespace(GIM, {"istio-injection": "enabled"}),
        *objects,
        *snap.unrelated(),
        *snap.policies("enforce", []),
    ]
    view = view_from_objects([("snap.yaml", o) for o in injected], source="snap.yaml")
    note = next(n for n in analyse(view, GIM).notes if "Istio mesh" in n)
    assert "sidecar injection" in note and "15020" in note


# -- OpenShift -----------------------------------------------------------------------------------------


def test_an_openshift_route_is_served_by_the_router_pods():
    route = snap.openshift_route(GIM, "gim", "nginx", "https")
    result = analysis(snap.openshift_router(host_network=False), [route])
    (evidence,) = needs(result)["openshift-ingress"]
    assert "Route gitguardian/gim routes to Service gitguardian/nginx targetPort https" in evidence
    assert "router pod openshift-ingress/router-default-6d8f9c-x7k2p (IngressController default)" in evidence
    assert targets(result, "openshift-ingress") == {(NGINX_POD, 8443)}


def test_a_host_network_router_gets_the_documented_namespace_label_advice():
    route = snap.openshift_route(GIM, "gim", "public-api", 8001)
    result = analysis(snap.openshift_router(host_network=True), [route])
    assert [n.namespace for n in result.shadow.host_network] == ["openshift-ingress"]
    (warning,) = [w for w in result.warnings if w.startswith("host-network pods")]
    assert 'policy-group.network.openshift.io/ingress: ""' in warning and "extraPolicies" in warning


def test_a_route_in_another_namespace_is_not_gims():
    route = snap.openshift_route("team-a", "shop", "nginx", 80)
    result = analysis(snap.openshift_router(host_network=False), [route])
    assert "openshift-ingress" not in needs(result)


# -- Traefik -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["traefik.io", "traefik.containo.us"])
def test_an_ingress_route_of_either_api_group_is_served_by_traefik(group):
    route = snap.ingress_route(GIM, "gim", [("nginx", 443)], group=group)
    result = analysis(snap.traefik(), [route])
    (evidence,) = needs(result)["traefik"]
    assert (
        f"IngressRoute ({group}/v1alpha1) gitguardian/gim routes to Service gitguardian/nginx port 443"
        in evidence
    )
    assert "Traefik pod traefik/traefik-5f8d6c7b9-qwert (--providers.kubernetescrd)" in evidence
    assert targets(result, "traefik") == {(NGINX_POD, 8443)}


def test_traefik_limited_to_another_ingress_class_is_not_taken():
    args = (*snap.TRAEFIK_ARGS, "--providers.kubernetescrd.ingressclass=internal")
    route = snap.ingress_route(
        GIM, "gim", [("nginx", 443)], annotations={"kubernetes.io/ingress.class": "public"}
    )
    result = analysis(snap.traefik(args), [route])
    assert "traefik" not in needs(result)
    assert any("no Traefik pod runs the Kubernetes CRD provider" in w for w in result.warnings)
    matching = snap.ingress_route(
        GIM, "gim", [("nginx", 443)], annotations={"kubernetes.io/ingress.class": "internal"}
    )
    assert "traefik" in needs(analysis(snap.traefik(args), [matching]))


# -- Prometheus without the operator, and Google Managed Prometheus --------------------------------------


def prometheus_server(ns="metrics"):
    labels = {
        "app.kubernetes.io/name": "prometheus",
        "app.kubernetes.io/component": "server",
        "app.kubernetes.io/instance": "prometheus",
    }
    return [snap.namespace(ns), snap.pod(ns, "prometheus-server-6b8f7-m2n4p", labels, [(9090, "web")])]


def annotated_exporter():
    workloads = snap.gim_workloads()
    exporter = next(
        o for o in workloads if o["kind"] == "Pod" and o["metadata"]["name"].startswith("app-exporter")
    )
    return snap.annotated(exporter, {"prometheus.io/scrape": "true", "prometheus.io/port": "9808"})


def test_a_scrape_annotated_gim_pod_is_scraped_by_the_charts_prometheus_server():
    objects = [o for o in snap.gim_workloads() if not o["metadata"]["name"].startswith("app-exporter-55f")]
    objects += [annotated_exporter(), *snap.unrelated(), *snap.policies("enforce", []), *prometheus_server()]
    view = view_from_objects([("snap.yaml", o) for o in objects], source="snap.yaml")
    result = analyse(view, GIM)
    (evidence,) = needs(result)["metrics"]
    assert "pod gitguardian/app-exporter-55f-zz9 annotated prometheus.io/scrape=true" in evidence
    assert "Prometheus server pod metrics/prometheus-server-6b8f7-m2n4p" in evidence
    assert targets(result, "metrics") == {("gitguardian/app-exporter-55f-zz9", 9808)}
    assert "metrics" in result.would_block


def test_annotations_without_a_server_and_servers_without_annotations():
    # an operator-managed Prometheus does not count as an annotation scraper
    operator_prometheus = snap.monitoring()[:2]
    objects = [o for o in snap.gim_workloads() if not o["metadata"]["name"].startswith("app-exporter-55f")]
    objects += [annotated_exporter(), *snap.unrelated(), *snap.policies("enforce", []), *operator_prometheus]
    view = view_from_objects([("snap.yaml", o) for o in objects], source="snap.yaml")
    result = analyse(view, GIM)
    assert "monitoring" not in needs(result)
    assert any(
        "annotated prometheus.io/scrape=true, but no Prometheus server pod" in w for w in result.warnings
    )
    assert "metrics" not in needs(analysis(prometheus_server()))  # nothing of GIM is annotated


def test_a_gmp_pod_monitoring_is_scraped_by_the_gmp_collectors():
    monitoring = snap.pod_monitoring(
        GIM, "gim-exporter", {"matchLabels": {snap.COMPONENT: "app-exporter"}}, "metrics"
    )
    result = analysis(snap.gmp_collectors(), [monitoring])
    (evidence,) = needs(result)["gmp-system"]
    assert "PodMonitoring gitguardian/gim-exporter selects GIM pods" in evidence
    assert "gmp-system/collector-00000" in evidence
    assert targets(result, "gmp-system") == {("gitguardian/app-exporter-55f-zz9", 9808)}
    assert "gmp-system" in result.would_block


def test_a_pod_monitoring_in_another_namespace_does_not_select_gim():
    monitoring = snap.pod_monitoring(
        "team-a", "shop", {"matchLabels": {snap.COMPONENT: "app-exporter"}}, "metrics"
    )
    result = analysis(snap.gmp_collectors(), [monitoring])
    assert "gmp-system" not in needs(result)


def test_istio_and_gateway_api_gateways_of_the_same_name_are_told_apart_by_api_group():
    # an Istio Gateway named like the route's parent is not the Gateway API Gateway it names
    route = snap.gateway_route("HTTPRoute", GIM, "gim", [("nginx", 443)], ("edge", "public"))
    istio_namesake = snap.istio_gateway("edge", "public", {"istio": "ingressgateway"})
    result = analysis([snap.namespace("edge"), istio_namesake], [route])
    assert any("through Gateway edge/public, which is not in the input" in w for w in result.warnings)


def test_a_route_its_gateway_refused_carries_no_traffic():
    route = snap.gateway_route("HTTPRoute", GIM, "gim", [("nginx", 443)], ("edge", "public"))
    route["status"] = {
        "parents": [
            {
                "parentRef": {"name": "public", "namespace": "edge"},
                "controllerName": ENVOY_GATEWAY[0],
                "conditions": [
                    {"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners"},
                    {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs"},
                ],
            }
        ]
    }
    result = analysis(gateway_setup(*ENVOY_GATEWAY), [route])
    assert "envoy-gateway-system" not in needs(result)
    assert any("has not accepted it (NotAllowedByListeners)" in n for n in result.notes)
    route["status"]["parents"][0]["conditions"][0] = {
        "type": "Accepted",
        "status": "True",
        "reason": "Accepted",
    }
    assert "envoy-gateway-system" in needs(analysis(gateway_setup(*ENVOY_GATEWAY), [route]))
