"""The shadow diff: who needs GIM (with evidence from the API), and who enforce would block."""

from __future__ import annotations

import copy

from conformance.netpol.model import NAME_LABEL
from conformance.verify.analysis import analyse
from conformance.verify.discovery import view_from_objects
from tests import verify_snapshots as snap


def analysis(objects):
    view = view_from_objects([("snap.yaml", o) for o in objects], source="snap.yaml")
    return analyse(view, snap.GIM)


def needs(result) -> dict[str, list[str]]:
    return {n.namespace: n.evidence for n in result.shadow.needs}


def test_ingress_controller_and_prometheus_need_gim_with_evidence():
    result = analysis(snap.cluster("dryrun", []))
    found = needs(result)
    assert sorted(found) == ["ingress-nginx", "monitoring"]
    (ingress,) = found["ingress-nginx"]
    assert "Ingress/gitguardian/gim" in ingress
    assert "gitguardian/nginx port 80" in ingress and "gitguardian/public-api port http" in ingress
    assert "ingress-nginx/ingress-nginx-controller-7d9f-abcde" in ingress
    assert "--controller-class=k8s.io/ingress-nginx" in ingress
    (monitoring,) = found["monitoring"]
    assert "ServiceMonitor/monitoring/gitguardian-app-exporter" in monitoring
    assert "Prometheus/monitoring/k8s" in monitoring and "monitoring/prometheus-k8s-0" in monitoring


def test_dryrun_without_allowed_namespaces_would_block_both():
    result = analysis(snap.cluster("dryrun", []))
    assert sorted(result.would_block) == ["ingress-nginx", "monitoring"]
    assert [s.namespace for s in result.suggested] == ["ingress-nginx", "monitoring"]
    assert result.exit_status == 1
    # dryrun itself blocks nothing: the flows now are all allowed
    assert all(f.allowed for f in result.flows)


def test_targets_are_the_gim_pods_and_ports_behind_the_routes():
    result = analysis(snap.cluster("dryrun", []))
    targets = {(t.pod, t.port) for t in result.shadow.need("ingress-nginx").targets}
    assert targets == {("gitguardian/nginx-6c8d9-x2x4z", 8080), ("gitguardian/public-api-7c4d-q8w3e", 8001)}
    blocked = {b.target for b in result.would_block["monitoring"]}
    assert blocked == {"gitguardian/app-exporter-55f-zz9:9808/TCP"}


def test_dryrun_with_every_needed_namespace_allowed_conforms():
    result = analysis(snap.cluster("dryrun", ["ingress-nginx", "monitoring"]))
    assert result.would_block == {}
    assert result.problems == []
    assert result.exit_status == 0


def test_enforce_missing_monitoring_is_reported_blocked_now():
    result = analysis(snap.cluster("enforce", ["ingress-nginx"]))
    assert sorted(result.would_block) == ["monitoring"]
    assert any("monitoring needs GIM" in p for p in result.problems)
    assert [s.namespace for s in result.suggested] == ["ingress-nginx", "monitoring"]


def test_disabled_install_reports_what_enabling_enforce_would_block():
    result = analysis(snap.cluster(None))
    assert result.inference.mode == "disabled"
    assert sorted(result.would_block) == ["ingress-nginx", "monitoring"]
    assert all(f.allowed for f in result.flows)


def test_would_block_comes_from_the_simulator_not_from_the_list_of_names():
    # monitoring is admitted by a user policy on a team label, not by allowedNamespaces:
    # it is not in allowedNamespaces, yet enforce does not block it.
    objects = snap.cluster("enforce", ["ingress-nginx"])
    monitoring_ns = next(
        o for o in objects if o["kind"] == "Namespace" and o["metadata"]["name"] == "monitoring"
    )
    monitoring_ns["metadata"]["labels"]["team"] = "observability"
    objects.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-observability", "namespace": snap.GIM},
            "spec": {
                "podSelector": {},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "observability"}}}]}],
            },
        }
    )
    result = analysis(objects)
    assert "monitoring" not in result.inference.allowed_namespaces
    assert "monitoring" in needs(result)
    assert result.would_block == {}


def test_listed_namespace_still_blocked_by_its_own_egress_policy_is_reported():
    objects = snap.cluster("enforce", ["ingress-nginx", "monitoring"])
    objects.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny-egress", "namespace": "monitoring"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]},
        }
    )
    result = analysis(objects)
    assert sorted(result.would_block) == ["monitoring"]
    assert "egress" in result.would_block["monitoring"][0].reason


def test_ingress_class_from_the_deprecated_annotation():
    objects = snap.cluster("dryrun", ["monitoring"])
    for o in objects:
        if o["kind"] == "Ingress":
            del o["spec"]["ingressClassName"]
            o["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "nginx"}
    result = analysis(objects)
    assert "annotation kubernetes.io/ingress.class" in needs(result)["ingress-nginx"][0]
    assert sorted(result.would_block) == ["ingress-nginx"]


def test_ingress_without_class_uses_the_default_ingress_class():
    objects = snap.cluster("dryrun", ["monitoring"])
    for o in objects:
        if o["kind"] == "Ingress":
            del o["spec"]["ingressClassName"]
        if o["kind"] == "IngressClass":
            o["metadata"]["annotations"] = {"ingressclass.kubernetes.io/is-default-class": "true"}
    result = analysis(objects)
    assert "the default IngressClass" in needs(result)["ingress-nginx"][0]


def test_ingress_without_any_class_is_reported_unplaced():
    objects = snap.cluster("dryrun", ["monitoring"])
    for o in objects:
        if o["kind"] == "Ingress":
            del o["spec"]["ingressClassName"]
    result = analysis(objects)
    assert "ingress-nginx" not in needs(result)
    assert any("could not place" in w and "no IngressClass" in w for w in result.warnings)


def test_nginx_controller_without_class_flags_serves_the_documented_defaults():
    objects = (
        snap.gim_workloads()
        + snap.ingress_nginx(args=["/nginx-ingress-controller"])
        + snap.policies("dryrun")
    )
    result = analysis(objects)
    assert "default --controller-class=k8s.io/ingress-nginx" in needs(result)["ingress-nginx"][0]


def test_controller_serving_another_class_is_not_taken():
    args = [
        "/nginx-ingress-controller",
        "--controller-class=k8s.io/internal-nginx",
        "--ingress-class=internal",
    ]
    objects = snap.gim_workloads() + snap.ingress_nginx(args=args) + snap.policies("dryrun")
    result = analysis(objects)
    assert needs(result) == {}
    assert any("no pod's args name that class or controller" in w for w in result.warnings)


def test_controller_flag_in_two_tokens_is_read():
    args = ["/nginx-ingress-controller", "--controller-class", "k8s.io/ingress-nginx"]
    objects = snap.gim_workloads() + snap.ingress_nginx(args=args, ns="edge") + snap.policies("dryrun")
    result = analysis(objects)
    assert list(needs(result)) == ["edge"]


def test_host_network_controller_is_warned_about_not_listed():
    result = analysis(snap.cluster("dryrun", ["monitoring"], host_network_controller=True))
    assert "ingress-nginx" not in needs(result)
    (host,) = result.shadow.host_network
    assert host.namespace == "ingress-nginx"
    assert host.sources == ["ingress-nginx/ingress-nginx-controller-7d9f-abcde"]
    warning = next(w for w in result.warnings if "host-network" in w)
    assert "node's IP" in warning and "ipBlock" in warning
    assert "ingress-nginx" in result.host_network_blocked
    assert result.exit_status == 0  # a warning needs judgement; it does not fail the run


def test_prometheus_with_null_service_monitor_selector_selects_nothing():
    result = analysis(snap.cluster("dryrun", ["ingress-nginx"], sm_selector=None))
    assert "monitoring" not in needs(result)
    assert any("no Prometheus in the input selects it" in w for w in result.warnings)


def test_prometheus_namespace_selector_null_means_its_own_namespace_only():
    objects = snap.cluster("dryrun", ["ingress-nginx"], with_monitoring=False)
    objects += snap.monitoring(sm_ns_selector=None)  # the ServiceMonitor is in the Prometheus's namespace
    assert "monitoring" in needs(analysis(objects))
    elsewhere = snap.service_monitor(
        "team-a",
        "gim-too",
        {"matchLabels": {snap.COMPONENT: "app-exporter"}},
        namespace_selector={"any": True},
    )
    objects = [o for o in objects if o["kind"] != "ServiceMonitor"] + [elsewhere]
    assert "monitoring" not in needs(analysis(objects))


def test_prometheus_namespace_selector_by_label():
    monitor_ns = {"matchLabels": {NAME_LABEL: "team-a"}}
    objects = snap.cluster("dryrun", ["ingress-nginx"], with_monitoring=False)
    objects += [o for o in snap.monitoring(sm_ns_selector=monitor_ns) if o["kind"] != "ServiceMonitor"]
    objects.append(
        snap.service_monitor(
            "team-a",
            "gim",
            {"matchLabels": {snap.COMPONENT: "app-exporter"}},
            namespace_selector={"any": True},
        )
    )
    result = analysis(objects)
    assert "ServiceMonitor/team-a/gim" in needs(result)["monitoring"][0]


def test_service_monitor_not_selecting_gim_is_ignored():
    objects = snap.cluster("dryrun", ["ingress-nginx"], with_monitoring=False)
    monitoring = snap.monitoring()
    for o in monitoring:
        if o["kind"] == "ServiceMonitor":
            o["spec"]["namespaceSelector"] = {"matchNames": ["team-a"]}
    result = analysis(objects + monitoring)
    assert "monitoring" not in needs(result)


def test_pod_monitor_selecting_gim_pods():
    objects = snap.cluster("dryrun", ["ingress-nginx"], with_monitoring=False)
    monitoring = [o for o in snap.monitoring() if o["kind"] != "ServiceMonitor"]
    monitoring.append(
        snap.pod_monitor(
            "monitoring", "gim-pods", {"matchLabels": snap.PART_OF}, namespace_selector={"any": True}
        )
    )
    result = analysis(objects + monitoring)
    need = result.shadow.need("monitoring")
    assert "PodMonitor/monitoring/gim-pods" in need.evidence[0]
    assert {(t.pod, t.port) for t in need.targets} == {("gitguardian/app-exporter-55f-zz9", 9808)}
    assert sorted(result.would_block) == ["monitoring"]


def test_prometheus_without_pods_is_represented_by_a_synthetic_client():
    objects = [
        o
        for o in snap.cluster("dryrun", ["ingress-nginx"])
        if o["metadata"].get("name") != "prometheus-k8s-0"
    ]
    result = analysis(objects)
    need = result.shadow.need("monitoring")
    assert need.sources == []
    assert "no pod of it in the input" in need.evidence[0]
    assert result.would_block["monitoring"][0].source == "monitoring/verify-synthetic-client"


def test_snapshot_without_monitoring_objects_says_it_did_not_check(tmp_path):
    from conformance.verify.discovery import load_view

    path = snap.write(
        tmp_path / "snap.yaml", snap.cluster("dryrun", ["ingress-nginx"], with_monitoring=False)
    )
    result = analyse(load_view([str(path)]), snap.GIM)
    (note,) = [n for n in result.notes if n.startswith("not in the input, so not checked")]
    assert (
        "ServiceMonitors (monitoring.coreos.com)" in note and "HTTPRoutes (gateway.networking.k8s.io)" in note
    )
    assert "gim-netpol verify --help" in note
    with_all = snap.cluster("dryrun", ["ingress-nginx"])  # monitoring objects exported: not listed
    path = snap.write(tmp_path / "all.yaml", with_all)
    (note,) = [n for n in analyse(load_view([str(path)]), snap.GIM).notes if n.startswith("not in the input")]
    assert "ServiceMonitors" not in note


def test_gim_namespace_itself_is_never_a_need():
    objects = snap.cluster("dryrun", ["ingress-nginx", "monitoring"])
    objects += copy.deepcopy(snap.ingress_nginx(ns=snap.GIM)[1:2])  # a controller inside GIM's namespace
    objects[-1]["metadata"]["name"] = "gim-own-controller"
    assert snap.GIM not in needs(analysis(objects))


# -- expected flows and the documented contract ------------------------------------------------------


def flow_map(result):
    return {(f.source, f.destination, f.port): f for f in result.flows}


def test_every_namespace_reaches_every_declared_gim_port_in_the_flows():
    result = analysis(snap.cluster("enforce", ["ingress-nginx"]))
    sources = {f.source_namespace for f in result.flows}
    assert sources == {"gitguardian", "ingress-nginx", "kube-system", "monitoring", "sandbox", "team-a"}
    columns = {(f.destination, f.port) for f in result.flows}
    assert columns == {
        ("gitguardian/nginx-6c8d9-x2x4z", 8080),
        ("gitguardian/nginx-6c8d9-x2x4z", 8443),
        ("gitguardian/internal-api-5f7b-k9m2p", 8000),
        ("gitguardian/public-api-7c4d-q8w3e", 8001),
        ("gitguardian/app-exporter-55f-zz9", 9808),
    }
    flows = flow_map(result)
    assert flows[
        ("ingress-nginx/ingress-nginx-controller-7d9f-abcde", "gitguardian/nginx-6c8d9-x2x4z", 8080)
    ].allowed
    shop = flows[("team-a/shop-6d5f-aaaa1", "gitguardian/nginx-6c8d9-x2x4z", 8080)]
    assert not shop.allowed and "no rule matches" in shop.reason
    assert shop.promise == "namespaces not listed are blocked"
    # host-network pods are not sources; an empty namespace is a synthetic client
    assert not any(f.source == "kube-system/kube-proxy-ccc3" for f in result.flows)
    assert any(f.source == "sandbox/verify-synthetic-client" and f.synthetic for f in result.flows)
    assert any("sandbox" in n and "no pod" in n for n in result.notes)


def test_dryrun_flows_carry_the_verdict_enforce_would_give():
    result = analysis(snap.cluster("dryrun", ["ingress-nginx"]))
    shop = flow_map(result)[("team-a/shop-6d5f-aaaa1", "gitguardian/internal-api-5f7b-k9m2p", 8000)]
    assert shop.allowed and not shop.enforce_allowed
    assert "dryrun-allow-all" in shop.reason


def test_defaults_without_same_namespace_allow_break_the_contract():
    policies = [
        p
        for p in snap.policies("enforce", ["ingress-nginx", "monitoring"])
        if "same-namespace" not in p["metadata"]["name"]
    ]
    objects = [o for o in snap.cluster(None) if o["kind"] != "NetworkPolicy"] + policies
    result = analysis(objects)
    assert result.inference.mode == "enforce"
    broken = [f for f in result.violations if f.promise == "GIM pods reach each other"]
    assert broken and all(f.source_namespace == "gitguardian" for f in broken)
    assert result.exit_status == 1
    assert any("GIM pods reach each other" in p for p in result.problems)


def test_egress_extra_policy_under_an_ingress_only_safety_net_breaks_dryrun():
    policies = snap.policies("dryrun", ["ingress-nginx", "monitoring"], extra=[snap.SMTP_EGRESS])
    for p in policies:
        if p["metadata"]["name"] == "gim-netpol-dryrun-allow-all":
            p["spec"] = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}
    objects = [o for o in snap.cluster(None) if o["kind"] != "NetworkPolicy"] + policies
    result = analysis(objects)
    gim_to_gim = [f for f in result.violations if f.source_namespace == "gitguardian"]
    assert gim_to_gim and all(not f.allowed for f in gim_to_gim)
    assert result.exit_status == 1


def test_source_namespace_blocking_its_own_egress_is_a_note_not_a_violation():
    objects = snap.cluster("dryrun", ["ingress-nginx", "monitoring"])
    objects.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny-egress", "namespace": "team-a"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]},
        }
    )
    result = analysis(objects)
    shop = [f for f in result.flows if f.source_namespace == "team-a"]
    assert shop and all(not f.allowed and f.violation is None and "own egress" in f.note for f in shop)
    assert result.exit_status == 0


def test_a_finished_controller_pod_is_not_a_source():
    objects = snap.cluster("dryrun", ["ingress-nginx", "monitoring"])
    old = copy.deepcopy(snap.ingress_nginx()[1])
    old["metadata"]["name"] = "ingress-nginx-controller-old"
    old["status"]["phase"] = "Failed"
    result = analysis(objects + [old])
    assert result.shadow.need("ingress-nginx").sources == [
        "ingress-nginx/ingress-nginx-controller-7d9f-abcde"
    ]
