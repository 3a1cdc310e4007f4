"""The real chart's rendered output (--manifests / --chart) and the seeded chart defects."""

from __future__ import annotations

import stat
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conformance.errors import UserError
from conformance.gim.chart import HELM_MISSING, load_manifests, manifests_from_documents
from conformance.gim.workloads import COMPONENT_LABEL, GIM_CLIENT, PART_OF
from conformance.netpol.model import ContainerPort
from conformance.probes import agnhost
from conformance.suite.topology import Topology
from tests.chart_fixtures import (
    DEFECTS,
    DRYRUN_ALLOW_ALL,
    PROFILES,
    SAME_NAMESPACE_ALLOW,
    correct_documents,
    extra_policy_names,
    policies,
)

NS = "gim-prod"  # not the namespace the fixtures name anywhere: proves the argument is what is used


def load_text(tmp_path: Path, text: str, namespace: str = NS):
    path = tmp_path / "rendered.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_manifests(str(path), namespace), str(path)


def deployment(name: str, ports: list[dict] | None = None, kind: str = "Deployment", **pod_spec) -> dict:
    container: dict = {"name": "main", "image": "example/app:1"}
    if ports is not None:
        container["ports"] = ports
    template = {
        "metadata": {"labels": {**PART_OF, COMPONENT_LABEL: name}},
        "spec": {"containers": [container], **pod_spec},
    }
    if kind == "Pod":
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, **template["metadata"]},
            "spec": template["spec"],
        }
    if kind == "CronJob":
        spec: dict = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}
    else:
        spec = {"template": template}
    api = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec}


def netpol(name: str, namespace: str | None = None, **spec) -> dict:
    meta: dict = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], **spec},
    }


def from_docs(*docs: dict, namespace: str = NS):
    return manifests_from_documents(list(docs), namespace, "rendered.yaml")


# -- the correct chart ------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_fixture_policies_go_into_the_gim_namespace(profile):
    docs = correct_documents(profile)
    chart = load_manifests(str(PROFILES[profile].rendered), NS)
    # helm template leaves metadata.namespace out; the suite puts every policy in the GIM namespace
    assert all("namespace" not in p["metadata"] for p in policies(docs).values())
    assert [p["metadata"]["name"] for p in chart.policies] == list(policies(docs))
    assert {p["metadata"]["namespace"] for p in chart.policies} == {NS}
    for policy in chart.policies:
        original = policies(docs)[policy["metadata"]["name"]]
        assert policy["spec"] == original["spec"]
    assert chart.notes == ()


def test_fixture_workloads_mirror_every_pod_template_with_its_labels_and_ports():
    docs = correct_documents("enforce")
    chart = load_manifests(str(PROFILES["enforce"].rendered), NS)
    by_name = {w.name: w for w in chart.workloads}
    templates = {
        d["metadata"]["name"]: d["spec"]["jobTemplate"]["spec"]["template"]
        if d["kind"] == "CronJob"
        else d["spec"]["template"]
        for d in docs
        if d["kind"] in ("Deployment", "Job", "CronJob")
    }
    assert set(by_name) == set(templates)
    for name, template in templates.items():
        assert by_name[name].labels == template["metadata"]["labels"]
    assert by_name["nginx"].ports == (ContainerPort(8080, "TCP", "http"), ContainerPort(8443, "TCP", "https"))
    assert by_name["public-api"].ports == (ContainerPort(8001, "TCP", "http"),)
    assert by_name["app-exporter"].ports == (ContainerPort(9808, "TCP", "metrics"),)
    assert by_name["internal-api-long"].labels[COMPONENT_LABEL] == "internal-api-long"
    # workers, beat and the jobs only open connections
    for name in ("worker", "worker-long", "worker-scanners", "beat", "cleanup", "migrations"):
        assert not by_name[name].serves and by_name[name].ports == ()
    serving = {w.name for w in chart.workloads if w.serves}
    assert serving == {"nginx", "internal-api", "internal-api-long", "public-api", "hook", "app-exporter"}
    assert chart.client_workload is by_name["worker"]
    # the chart's pods carry the labels the suite's GIM-side client carries, so the chart's selectors see both
    assert all(w.labels.items() >= PART_OF.items() for w in chart.workloads)


def test_fixture_workloads_become_valid_stand_ins():
    chart = load_manifests(str(PROFILES["enforce"].rendered), NS)
    topology = Topology("run1", NS, ("ingress-nginx", "monitoring"), ("other",), workloads=chart.workloads)
    objects = topology.workload_objects()
    pods = [o for o in objects if o["kind"] == "Pod"]
    assert sorted(p["metadata"]["name"] for p in pods) == sorted(w.name for w in chart.workloads if w.serves)
    nginx = next(p for p in pods if p["metadata"]["name"] == "nginx")
    assert nginx["metadata"]["labels"][COMPONENT_LABEL] == "nginx"
    assert nginx["metadata"]["labels"][agnhost.RUN_LABEL] == "run1"
    assert [port["containerPort"] for port in nginx["spec"]["containers"][0]["ports"]] == [8080, 8443]


def test_values_profiles_match_their_rendered_output():
    for name, profile in PROFILES.items():
        values = yaml.safe_load(profile.values.read_text())["networkPolicy"]
        rendered = policies(correct_documents(name))
        assert values["mode"] == name
        assert (DRYRUN_ALLOW_ALL in rendered) == (name == "dryrun")
        for ns in values["allowedNamespaces"]:
            selector = rendered[f"gim-gitguardian-allow-ns-{ns}"]["spec"]["ingress"][0]["from"][0]
            assert selector["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": ns}
        for extra in values["extraPolicies"]:  # rendered exactly as given
            assert rendered[extra["metadata"]["name"]] == extra
    # the documentation's SMTP egress example is what the dryrun safety net must neutralise
    assert extra_policy_names("dryrun") == ["allow-external-smtp"]


# -- load_manifests: kinds, names, ports ------------------------------------------------------------------


def test_every_pod_template_kind_is_mirrored():
    chart = from_docs(
        deployment("d", [{"containerPort": 8000}]),
        deployment("s", [{"containerPort": 8001}], kind="StatefulSet"),
        deployment("ds", [{"containerPort": 8002}], kind="DaemonSet"),
        deployment("rs", [{"containerPort": 8003}], kind="ReplicaSet"),
        deployment("j", [{"containerPort": 8004}], kind="Job"),
        deployment("cj", [{"containerPort": 8005}], kind="CronJob"),
        deployment("p", [{"containerPort": 8006}], kind="Pod"),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "svc"},
            "spec": {"ports": [{"port": 80}]},
        },
    )
    assert [(w.name, w.ports[0].port) for w in chart.workloads] == [
        ("d", 8000),
        ("s", 8001),
        ("ds", 8002),
        ("rs", 8003),
        ("j", 8004),
        ("cj", 8005),
        ("p", 8006),
    ]
    assert all(w.labels[COMPONENT_LABEL] == w.name for w in chart.workloads)


def test_ports_default_to_tcp_merge_across_containers_and_include_native_sidecars():
    doc = deployment(
        "api", [{"containerPort": 8000, "name": "http"}, {"containerPort": 5353, "protocol": "UDP"}]
    )
    pod = doc["spec"]["template"]["spec"]
    pod["containers"].append({"name": "copy", "image": "x", "ports": [{"containerPort": 8000}]})
    pod["initContainers"] = [
        {"name": "proxy", "image": "x", "restartPolicy": "Always", "ports": [{"containerPort": 15001}]},
        {"name": "setup", "image": "x", "ports": [{"containerPort": 9999}]},  # runs to completion first
    ]
    (workload,) = from_docs(doc).workloads
    assert workload.ports == (
        ContainerPort(8000, "TCP", "http"),
        ContainerPort(5353, "UDP", None),
        ContainerPort(15001, "TCP", None),
    )


def test_workload_names_become_unique_service_names():
    long_name = "gim-gitguardian-" + "internal-api-" * 6  # 94 characters: fine for a Deployment
    chart = from_docs(
        deployment("api", [{"containerPort": 8000}]),
        deployment("api", [{"containerPort": 8001}], kind="StatefulSet"),
        deployment(long_name, [{"containerPort": 8002}]),
        deployment("gim.exporter", [{"containerPort": 9808}]),
        deployment("1st-api", [{"containerPort": 8003}]),
        deployment(GIM_CLIENT.name, [{"containerPort": 8004}]),  # would collide with the GIM-side client pod
        deployment(GIM_CLIENT.name + "-x", kind="Job"),
    )
    names = [w.name for w in chart.workloads]
    assert names[:2] == ["api", "api-2"]
    assert len(names[2]) <= 63 and long_name.startswith(names[2]) and not names[2].endswith("-")
    assert names[3] == "gim-exporter"
    assert names[4] == "w-1st-api"
    assert names[5] != GIM_CLIENT.name and names[5].startswith(GIM_CLIENT.name)
    assert len(set(names)) == len(names)
    for name in names:  # each one a valid Service name (DNS-1035 label)
        assert name[0].isalpha() and len(name) <= 63 and name.replace("-", "").isalnum() and name.islower()


def test_a_non_serving_workload_may_share_the_client_name():
    (workload,) = from_docs(deployment(GIM_CLIENT.name)).workloads
    assert workload.name == GIM_CLIENT.name and not workload.serves


def test_host_network_and_foreign_workloads_are_left_out_with_a_note():
    foreign = deployment("exporter", [{"containerPort": 9100}])
    foreign["metadata"]["namespace"] = "monitoring"
    chart = from_docs(
        deployment("agent", [{"containerPort": 9000}], kind="DaemonSet", hostNetwork=True),
        foreign,
        deployment("api", [{"containerPort": 8000}]),
    )
    assert [w.name for w in chart.workloads] == ["api"]
    assert chart.client_workload is None  # no worker-like workload in this chart
    assert any("DaemonSet/agent" in n and "hostNetwork" in n for n in chart.notes)
    assert any("Deployment/monitoring/exporter" in n for n in chart.notes)


def test_a_policy_that_names_the_gim_namespace_is_kept():
    chart = from_docs(netpol("deny", NS))
    assert chart.policies[0]["metadata"] == {"name": "deny", "namespace": NS}


def test_non_kubernetes_network_policies_are_left_out_with_a_note():
    calico = {**netpol("calico-deny"), "apiVersion": "projectcalico.org/v3"}
    chart = from_docs(calico, netpol("deny"))
    assert [p["metadata"]["name"] for p in chart.policies] == ["deny"]
    assert any("projectcalico.org/v3" in n and "calico-deny" in n for n in chart.notes)


def test_a_disabled_chart_loads_with_notes(tmp_path):
    chart, path = load_text(
        tmp_path,
        "---\n# Source: gitguardian/templates/configmap.yaml\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: env\n",
    )
    assert chart.policies == () and chart.workloads == ()
    assert any("no NetworkPolicy" in n for n in chart.notes)
    assert any("no workload" in n for n in chart.notes)
    only_workloads = from_docs(deployment("api", [{"containerPort": 8000}]))
    assert [n for n in only_workloads.notes if "no NetworkPolicy" in n]
    assert not [n for n in only_workloads.notes if "no workload" in n]


# -- load_manifests: errors -------------------------------------------------------------------------------


def test_a_policy_in_another_namespace_is_refused(tmp_path):
    with pytest.raises(UserError) as e:
        load_text(
            tmp_path,
            """\
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: allow-monitoring
              namespace: monitoring
            spec:
              podSelector: {}
            """,
        )
    err = e.value
    assert err.source == str(tmp_path / "rendered.yaml")
    assert err.key == "NetworkPolicy/monitoring/allow-monitoring"
    assert "metadata.namespace" in err.message and "monitoring" in err.message and NS in err.message
    assert "\n" not in str(err)


def test_an_invalid_policy_is_refused_naming_the_object_and_field(tmp_path):
    with pytest.raises(UserError) as e:
        load_text(
            tmp_path,
            """\
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: deny
            spec:
              podSelector: {}
              policyTypes: [Ingres]
            """,
        )
    assert e.value.source == str(tmp_path / "rendered.yaml")
    assert e.value.key.startswith("NetworkPolicy/deny") and "policyTypes" in e.value.key


def test_two_policies_of_one_name_are_refused():
    with pytest.raises(UserError, match="two NetworkPolicies") as e:
        from_docs(netpol("deny"), netpol("deny"))
    assert e.value.key == "NetworkPolicy/gim-prod/deny"


def test_bad_yaml_names_the_file_and_line(tmp_path):
    with pytest.raises(UserError) as e:
        load_text(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n")
    assert e.value.source == str(tmp_path / "rendered.yaml")
    assert "invalid YAML at line" in e.value.message


def test_a_missing_file_is_a_user_error(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="cannot read the manifests") as e:
        load_manifests(missing, NS)
    assert e.value.source == missing


def test_a_values_file_given_as_manifests_is_refused(tmp_path):
    with pytest.raises(UserError, match="helm template"):
        load_manifests(str(PROFILES["enforce"].values), NS)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["ports"][0].update(containerPort="8000"), r"containers\[0\]\.ports\[0\]\.containerPort"),
        (lambda c: c["ports"][0].update(containerPort=70000), r"containerPort must be a port number"),
        (lambda c: c["ports"][0].update(protocol="HTTP"), r"protocol must be one of TCP, UDP, SCTP"),
    ],
)
def test_bad_container_ports_are_refused(change, expected):
    doc = deployment("api", [{"containerPort": 8000}])
    change(doc["spec"]["template"]["spec"]["containers"][0])
    with pytest.raises(UserError, match=expected) as e:
        from_docs(doc)
    assert e.value.key == "Deployment/api" and e.value.source == "rendered.yaml"


def test_a_non_string_pod_label_is_refused():
    doc = deployment("api", [{"containerPort": 8000}])
    doc["spec"]["template"]["metadata"]["labels"]["version"] = 1.0
    with pytest.raises(UserError, match=r"spec\.template\.metadata\.labels\.version must be a string"):
        from_docs(doc)


def test_a_workload_without_pod_template_is_refused():
    doc = deployment("cleanup", kind="CronJob")
    del doc["spec"]["jobTemplate"]
    with pytest.raises(UserError, match=r"spec\.jobTemplate\.spec\.template must be a pod template") as e:
        from_docs(doc)
    assert e.value.key == "CronJob/cleanup"


# -- helm_template ----------------------------------------------------------------------------------------


FAKE_HELM = """\
#!{python}
import json, os, sys
with open(os.environ["FAKE_HELM_ARGV"], "w") as f:
    json.dump(sys.argv[1:], f)
if os.environ.get("FAKE_HELM_FAIL"):
    sys.stderr.write("walk.go:75: found symbolic link in path\\n")
    sys.stderr.write("Error: template: gitguardian/templates/x.yaml:3:7: nil pointer\\n\\n")
    sys.exit(1)
sys.stdout.write(open(os.environ["FAKE_HELM_OUTPUT"]).read())
"""


@pytest.fixture
def fake_helm(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helm = bin_dir / "helm"
    helm.write_text(FAKE_HELM.format(python=sys.executable))
    helm.chmod(helm.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_HELM_ARGV", str(tmp_path / "argv.json"))
    monkeypatch.setenv("FAKE_HELM_OUTPUT", str(PROFILES["enforce"].rendered))
    return tmp_path


def test_helm_template_runs_helm_and_writes_its_output(fake_helm):
    from conformance.gim.chart import helm_template

    out = helm_template(
        "./charts/gitguardian",
        ["base.yaml", "prod.yaml"],
        ["networkPolicy.mode=enforce", "a.b=c,d=e"],
        "gitguardian",
        out_dir=fake_helm / "out",
    )
    argv = yaml.safe_load((fake_helm / "argv.json").read_text())
    assert argv == [
        "template",
        "gim",
        "./charts/gitguardian",
        "--namespace",
        "gitguardian",
        "--values",
        "base.yaml",
        "--values",
        "prod.yaml",
        "--set",
        "networkPolicy.mode=enforce",
        "--set",
        "a.b=c,d=e",
    ]
    assert out.parent == fake_helm / "out"
    assert out.read_text() == PROFILES["enforce"].rendered.read_text()
    assert load_manifests(str(out), "gitguardian").policies


def test_helm_template_release_name(fake_helm):
    from conformance.gim.chart import helm_template

    helm_template("chart", [], [], "ns", release="gitguardian", out_dir=fake_helm)
    argv = yaml.safe_load((fake_helm / "argv.json").read_text())
    assert argv[:3] == ["template", "gitguardian", "chart"]


def test_helm_failure_reports_its_last_error_line(fake_helm, monkeypatch):
    from conformance.gim.chart import helm_template

    monkeypatch.setenv("FAKE_HELM_FAIL", "1")
    with pytest.raises(UserError) as e:
        helm_template("./chart", [], [], "gitguardian", out_dir=fake_helm)
    assert e.value.message == (
        "helm template failed: Error: template: gitguardian/templates/x.yaml:3:7: nil pointer"
    )
    assert e.value.source == "./chart"


def test_no_helm_on_path_says_how_to_fix_it(tmp_path, monkeypatch):
    from conformance.gim.chart import helm_template

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError) as e:
        helm_template("./chart", [], [], "gitguardian", out_dir=tmp_path)
    assert e.value.message == HELM_MISSING
    assert "https://helm.sh/docs/intro/install/" in str(e.value) and "--manifests" in str(e.value)
    assert str(e.value) == HELM_MISSING  # one line, naming --chart once
    assert not list(tmp_path.iterdir())


# -- the seeded defects: each differs from the correct chart in exactly the intended way ------------------


def _diff(defect_name: str) -> tuple[set[str], set[str], set[str]]:
    defect = DEFECTS[defect_name]
    good, bad = correct_documents(defect.profile), defect.documents()
    others = [d for d in good if d["kind"] != "NetworkPolicy"]
    assert [d for d in bad if d["kind"] != "NetworkPolicy"] == others, "only NetworkPolicies may differ"
    good_p, bad_p = policies(good), policies(bad)
    changed = {n for n in set(good_p) & set(bad_p) if good_p[n] != bad_p[n]}
    return set(good_p) - set(bad_p), set(bad_p) - set(good_p), changed


def test_every_required_defect_is_seeded():
    assert set(DEFECTS) >= {
        "dryrun-safety-net-ingress-only",
        "allowed-ns-wrong-label",
        "no-same-namespace-allow",
        "allow-all-left-under-enforce",
        "isolation-partial",
        "extra-policies-dropped",
    }
    for defect in DEFECTS.values():
        assert defect.profile in PROFILES and defect.promise


def test_safety_net_ingress_only():
    removed, added, changed = _diff("dryrun-safety-net-ingress-only")
    assert (removed, added, changed) == (set(), set(), {DRYRUN_ALLOW_ALL})
    spec = policies(DEFECTS["dryrun-safety-net-ingress-only"].documents())[DRYRUN_ALLOW_ALL]["spec"]
    assert spec["policyTypes"] == ["Ingress"] and "egress" not in spec and spec["ingress"] == [{}]
    # the profile it runs on has the egress extraPolicy that the safety net must neutralise
    assert "allow-external-smtp" in policies(correct_documents("dryrun"))


def test_allowed_namespace_wrong_label():
    removed, added, changed = _diff("allowed-ns-wrong-label")
    assert (removed, added, changed) == (set(), set(), {"gim-gitguardian-allow-ns-ingress-nginx"})
    policy = policies(DEFECTS["allowed-ns-wrong-label"].documents())["gim-gitguardian-allow-ns-ingress-nginx"]
    assert policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"] == {
        "matchLabels": {"name": "ingress-nginx"}
    }


def test_no_same_namespace_allow():
    assert _diff("no-same-namespace-allow") == ({SAME_NAMESPACE_ALLOW}, set(), set())


def test_allow_all_left_under_enforce():
    assert _diff("allow-all-left-under-enforce") == (set(), {DRYRUN_ALLOW_ALL}, set())
    left = policies(DEFECTS["allow-all-left-under-enforce"].documents())[DRYRUN_ALLOW_ALL]
    assert left == policies(correct_documents("dryrun"))[DRYRUN_ALLOW_ALL]


def test_isolation_partial():
    removed, added, changed = _diff("isolation-partial")
    good = policies(correct_documents("enforce"))
    assert not removed and not added
    # every chart policy selecting GIM's pods now selects nginx only; the extraPolicy is left as given
    assert changed == {n for n in good if n.startswith("gim-gitguardian-")}
    for name in changed:
        selector = policies(DEFECTS["isolation-partial"].documents())[name]["spec"]["podSelector"]
        assert selector["matchExpressions"] == [
            {"key": COMPONENT_LABEL, "operator": "In", "values": ["nginx"]}
        ]


def test_extra_policies_dropped():
    assert _diff("extra-policies-dropped") == (set(extra_policy_names("enforce")), set(), set())


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_defective_manifests_still_load(name, tmp_path):
    """Each defect is a chart that installs: it must be caught by the suite, not by loading."""
    path = DEFECTS[name].write(tmp_path)
    chart = load_manifests(str(path), NS)
    assert [p["metadata"]["name"] for p in chart.policies] == list(policies(DEFECTS[name].documents()))
    correct = load_manifests(str(PROFILES[DEFECTS[name].profile].rendered), NS)
    assert chart.workloads == correct.workloads
