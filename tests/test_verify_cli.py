"""``gim-netpol verify --snapshot`` and ``cleanup`` as a user runs them: output, files, exit status."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from conformance.backends.cni_profiles import parse_profile
from conformance.backends.model import ModelBackend
from conformance.backends.model_icmp import BURST, IcmpRateLimit
from conformance.commands.cleanup import leftovers
from conformance.commands.cli import main
from conformance.netpol.probing import Observation, Outcome, Probe
from conformance.probes.agnhost import RUN_LABEL
from conformance.suite.verdicts import settled
from conformance.verify.analysis import analyse
from conformance.verify.discovery import view_from_objects
from conformance.verify.live import (
    LiveOptions,
    admission_advice,
    as_documents,
    canary_problem,
    probe_cluster,
)
from conformance.verify.placement import Placement
from conformance.verify.rbac import cluster_role, granted_by_rules, missing_permissions, required_permissions
from conformance.verify.report_junit import to_junit
from tests import verify_snapshots as snap


def verify(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["verify", "--gim-namespace", snap.GIM, *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_output_is_one_object_and_exit_1_when_enforce_would_block(tmp_path, capsys):
    path = snap.write(tmp_path / "snap.yaml", snap.cluster("dryrun", ["ingress-nginx"]))
    status, out, _ = verify(capsys, "--snapshot", str(path), "-o", "json")
    doc = json.loads(out)
    assert status == 1
    assert doc["mode"] == "dryrun"
    assert doc["allowedNamespaces"] == ["ingress-nginx"]
    assert doc["wouldBlock"] == ["monitoring"]
    assert doc["suggestedAllowedNamespaces"] == ["ingress-nginx", "monitoring"]
    assert {n["namespace"] for n in doc["needsAccess"]} == {"ingress-nginx", "monitoring"}
    assert doc["flows"] and all("reason" in f for f in doc["flows"])


def test_conforming_cluster_exits_0(tmp_path, capsys):
    path = snap.write(tmp_path / "snap.yaml", snap.cluster("enforce", ["ingress-nginx", "monitoring"]))
    status, out, _ = verify(capsys, "--snapshot", str(path))
    assert status == 0
    assert "CONFORMS" in out and "mode:              enforce" in out


def test_json_snapshot_split_over_two_files_and_stdin(tmp_path, capsys, monkeypatch):
    objects = snap.cluster("enforce", ["ingress-nginx", "monitoring"])
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    rest = [o for o in objects if o["kind"] != "NetworkPolicy"]
    first = tmp_path / "state.json"
    first.write_text(json.dumps(snap.as_list(rest)))
    monkeypatch.setattr(sys, "stdin", io.StringIO(yaml.safe_dump_all(policies)))
    status, out, _ = verify(capsys, "--snapshot", str(first), "--snapshot", "-", "-o", "json")
    assert status == 0
    assert json.loads(out)["mode"] == "enforce"


def test_report_dir_gets_json_junit_and_html(tmp_path, capsys):
    path = snap.write(tmp_path / "snap.yaml", snap.cluster("dryrun", ["ingress-nginx"]))
    reports = tmp_path / "evidence" / "run-1"
    status, out, err = verify(capsys, "--snapshot", str(path), "--report-dir", str(reports))
    assert status == 1
    assert sorted(p.name for p in reports.iterdir()) == [
        "verify-junit.xml",
        "verify-report.html",
        "verify-report.json",
    ]
    assert json.loads((reports / "verify-report.json").read_text())["wouldBlock"] == ["monitoring"]
    assert ET.parse(reports / "verify-junit.xml").getroot().get("failures") == "1"
    assert "<table" in (reports / "verify-report.html").read_text()
    assert "wrote" in err and "Values to paste" in out


def test_disabled_install(tmp_path, capsys):
    path = snap.write(tmp_path / "snap.yaml", snap.cluster(None))
    status, out, _ = verify(capsys, "--snapshot", str(path), "-o", "json")
    doc = json.loads(out)
    assert doc["mode"] == "disabled" and doc["allowedNamespaces"] == []
    assert doc["wouldBlock"] == ["ingress-nginx", "monitoring"]
    assert status == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gim-namespace", "nope", "--snapshot", "{snap}"], "namespace 'nope' is not in the input"),
        (["--gim-namespace", "Not_A_Name", "--snapshot", "{snap}"], "is not a namespace name"),
        (["--gim-namespace", snap.GIM, "--snapshot", "{missing}"], "cannot read the snapshot"),
        (["--gim-namespace", snap.GIM, "--snapshot", "{bad}"], "invalid YAML"),
        (
            ["--gim-namespace", snap.GIM, "--snapshot", "{snap}", "--context", "prod"],
            "--context applies to a live",
        ),
        (
            ["--gim-namespace", snap.GIM, "--snapshot", "{snap}", "--probe-allowed-namespaces"],
            "--probe-allowed-namespaces: applies to a live cluster",
        ),
        (
            ["--gim-namespace", snap.GIM, "--snapshot", "{snap}", "--no-probes"],
            "--no-probes: applies to a live cluster",
        ),
        (
            ["--gim-namespace", snap.GIM, "--no-probes", "--cluster-wide"],
            "--cluster-wide: probes, but --no-probes was given",
        ),
        (
            ["--gim-namespace", snap.GIM, "--probe-namespaces", "a,b"],
            "--probe-namespaces: needs 4 comma-separated namespaces",
        ),
        (
            ["--gim-namespace", snap.GIM, "--probe-namespaces", "a,b,c,Bad_Name"],
            "--probe-namespaces: 'Bad_Name' is not a namespace name",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    good = snap.write(tmp_path / "snap.yaml", snap.cluster("dryrun", ["ingress-nginx"]))
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: List\nitems: [\n")
    paths = {"snap": str(good), "missing": str(tmp_path / "missing.yaml"), "bad": str(bad)}
    status = main(["verify", *(a.format(**paths) for a in args)])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_report_dir_that_cannot_be_created_is_a_usage_error(tmp_path, capsys):
    path = snap.write(tmp_path / "snap.yaml", snap.cluster("dryrun", ["ingress-nginx"]))
    blocker = tmp_path / "file"
    blocker.write_text("")
    status, _, err = verify(capsys, "--snapshot", str(path), "--report-dir", str(blocker / "sub"))
    assert status == 2 and "--report-dir" in err


def test_console_script_runs_end_to_end(tmp_path):
    path = snap.write(tmp_path / "snap.yaml", snap.cluster("enforce", ["ingress-nginx", "monitoring"]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "verify",
            "--gim-namespace",
            snap.GIM,
            "--snapshot",
            str(path),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["conforms"] is True


def _ns(name, run=None):
    labels = {RUN_LABEL: run} if run else {}
    return {"metadata": {"name": name, "labels": labels}}


def _pod(ns, name, run=None):
    labels = {RUN_LABEL: run} if run else {}
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}}


def test_cleanup_deletes_labelled_namespaces_and_stray_labelled_pods_only():
    namespaces = [_ns("verify-abc", "abc"), _ns("verify-def", "def"), _ns("gitguardian"), _ns("monitoring")]
    pods = [
        _pod("verify-abc", "client", "abc"),
        _pod("monitoring", "verify-client-abc", "abc"),
        _pod("monitoring", "prom"),
    ]
    found = [str(x) for x in leftovers(namespaces, pods)]
    assert found == [
        "Namespace verify-abc (run abc)",
        "Namespace verify-def (run def)",
        "Pod monitoring/verify-client-abc (run abc)",
    ]
    only_def = [str(x) for x in leftovers(namespaces, pods, run_id="def")]
    assert only_def == ["Namespace verify-def (run def)"]


def test_cleanup_deletes_what_a_killed_namespaced_run_left_in_the_probe_namespaces():
    namespaces = [_ns("gim-netpol-probe-srv"), _ns("gim-netpol-probe-cli")]
    objects = [
        {**_pod("gim-netpol-probe-srv", "service-ip-abc-server", "abc"), "kind": "Pod"},
        {**_pod("gim-netpol-probe-srv", "service-ip-abc-server", "abc"), "kind": "Service"},
        {**_pod("gim-netpol-probe-srv", "named-port-abc-canary", "abc"), "kind": "NetworkPolicy"},
        {**_pod("gim-netpol-probe-cli", "someone-elses", None), "kind": "Service"},
    ]
    assert [str(x) for x in leftovers(namespaces, objects)] == [
        "NetworkPolicy gim-netpol-probe-srv/named-port-abc-canary (run abc)",
        "Pod gim-netpol-probe-srv/service-ip-abc-server (run abc)",
        "Service gim-netpol-probe-srv/service-ip-abc-server (run abc)",
    ]


# -- least privilege --------------------------------------------------------------------------------

RBAC = Path(__file__).resolve().parent.parent / "deploy" / "rbac-verify.yaml"


def test_rbac_manifest_grants_exactly_what_verify_checks_for():
    docs = list(yaml.safe_load_all(RBAC.read_text()))
    role = cluster_role(docs)
    granted = granted_by_rules(role["rules"])
    required = {p.key for p in required_permissions("cluster-wide")}
    assert granted == required
    assert not any("*" in part for key in granted for part in key)
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "gim-netpol-verify",
    }
    assert binding["subjects"][0]["kind"] == "ServiceAccount"


def test_rbac_writes_nothing_but_what_probing_needs():
    writes = {p.key[:4] for p in required_permissions("cluster-wide") if p.verb not in ("get", "list")}
    assert writes == {
        ("create", "", "namespaces", ""),
        ("delete", "", "namespaces", ""),
        ("create", "", "pods", ""),
        ("delete", "", "pods", ""),
        ("create", "", "services", ""),
        ("create", "", "pods", "exec"),
        ("create", "networking.k8s.io", "networkpolicies", ""),
    }
    assert {p.verb for p in required_permissions("read-only")} == {"list"}


def test_missing_permissions_are_listed_from_access_reviews():
    asked = []

    def review(body):  # stands in for the API server's SelfSubjectAccessReview
        asked.append(body)
        attrs = body["spec"]["resourceAttributes"]
        return attrs["resource"] != "ingressclasses" and attrs.get("subresource") != "exec"

    missing = missing_permissions(review, required_permissions("cluster-wide", groups=set()))
    assert [str(p).split(" (")[0] for p in missing] == [
        "list ingressclasses.networking.k8s.io",
        "create pods/exec",
        "get pods/exec",
    ]
    assert asked[0]["kind"] == "SelfSubjectAccessReview"
    assert asked[0]["spec"]["resourceAttributes"] == {"verb": "list", "group": "", "resource": "namespaces"}


# -- live path: the parts that need no cluster --------------------------------------------------------


def test_typed_api_objects_go_through_the_snapshot_pipeline():
    from kubernetes import client

    api = client.ApiClient()
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="ctrl", namespace="edge", labels={"app": "ctrl"}),
        spec=client.V1PodSpec(
            host_network=True,
            containers=[
                client.V1Container(name="c", args=["/nginx-ingress-controller", "--ingress-class=nginx"])
            ],
        ),
        status=client.V1PodStatus(phase="Running", pod_ip="172.18.0.2"),
    )
    ns = client.V1Namespace(metadata=client.V1ObjectMeta(name="edge", labels={"team": "net"}))
    docs = as_documents("Pod", "v1", [pod], api.sanitize_for_serialization)
    docs += as_documents("Namespace", "v1", [ns], api.sanitize_for_serialization)
    assert docs[0]["kind"] == "Pod" and docs[0]["spec"]["hostNetwork"] is True
    assert docs[0]["spec"]["containers"][0]["args"][1] == "--ingress-class=nginx"
    view = view_from_objects([("live", d) for d in docs], source="live", listed_kinds=["Ingress"])
    (parsed,) = view.cluster.pods
    assert parsed.host_network and parsed.ip == "172.18.0.2"
    assert view.cluster.namespaces["edge"].labels["team"] == "net"
    assert view.has_kind("Ingress") and view.objects("Ingress") == []


def _obs(outcome, detail=""):
    return Observation(Probe("c/client", "c/server", "10.0.0.1", 8080), outcome, detail)


def test_canary_that_passes_traffic_names_the_cni():
    problem = canary_problem(
        _obs(Outcome.CONNECTED), [_obs(Outcome.CONNECTED)], "kindnet (kube-system/kindnet)"
    )
    assert problem == (
        "policies deployed but not enforced: this cluster's CNI does not enforce NetworkPolicy"
        " (detected: kindnet (kube-system/kindnet))"
    )
    assert canary_problem(_obs(Outcome.CONNECTED), [_obs(Outcome.BLOCKED)] * 2, "Calico") is None
    assert "before any policy" in canary_problem(_obs(Outcome.ERROR, "ImagePullBackOff"), [], "Calico")


def test_admission_rejection_says_which_level_and_what_to_do():
    message = (
        'pods "client" is forbidden: violates PodSecurity "restricted:v1.24": seccompProfile '
        '(pod or container "client" must set securityContext.seccompProfile.type to "RuntimeDefault")'
    )
    advice = admission_advice(message, "client", "monitoring")
    assert "Pod Security admission" in advice and "level 'restricted' (version v1.24)" in advice
    assert "seccompProfile" in advice and "exempt" in advice
    webhook = admission_advice(
        'admission webhook "validate.kyverno.svc" denied the request: image not allowed',
        "client",
        "monitoring",
    )
    assert "validate.kyverno.svc" in webhook and "--probe-image" in webhook


def test_scratch_namespaces_carry_the_run_label_and_restricted_pod_security():
    ns = Placement("ab12cd34").probe_client()[0]
    assert ns["metadata"]["name"] == "gim-netpol-verify-ab12cd34-probe"
    assert ns["metadata"]["labels"] == {
        RUN_LABEL: "ab12cd34",
        "pod-security.kubernetes.io/enforce": "restricted",
    }


def test_blocked_needs_two_timeouts_in_a_row():
    assert not settled(False, [_obs(Outcome.BLOCKED)])
    assert settled(False, [_obs(Outcome.CONNECTED), _obs(Outcome.BLOCKED), _obs(Outcome.BLOCKED)])
    assert not settled(False, [_obs(Outcome.BLOCKED), _obs(Outcome.ERROR)])
    assert settled(True, [_obs(Outcome.BLOCKED), _obs(Outcome.CONNECTED)])
    assert not settled(True, [_obs(Outcome.REFUSED)])


class ModelCluster(ModelBackend):
    """The model backend (in-memory API + simulator as CNI) with what a live run also asks of a cluster."""

    def __init__(self, enforcing: bool = True) -> None:
        super().__init__()
        self.enforcing = enforcing

    def detect_cni(self) -> str:
        return "Calico (calico-system/calico-node)" if self.enforcing else "kindnet (kube-system/kindnet)"

    def delete_run(self, run_id: str) -> list[str]:
        doomed = [
            n
            for n in self.objects("Namespace")
            if (n["metadata"].get("labels") or {}).get(RUN_LABEL) == run_id
        ]
        self.delete(doomed)
        return [n["metadata"]["name"] for n in doomed]

    def answer(self, probes, timeout_s):
        observed = super().answer(probes, timeout_s)
        if self.enforcing:
            return observed
        return [Observation(o.probe, Outcome.CONNECTED, "no policy enforcement") for o in observed]


def _live_run(objects, *, enforcing=True, allowed_probes=False, cni="drops", icmp_burst=BURST):
    backend = ModelCluster(enforcing)
    backend.cluster.cni = parse_profile(cni)
    backend.cluster.icmp = IcmpRateLimit(burst=icmp_burst)
    backend.apply(objects)
    view = view_from_objects(
        [
            ("model", o)
            for o in backend.objects()
            + [o for o in objects if o["kind"] not in ("Namespace", "Pod", "Service", "NetworkPolicy")]
        ],
        source="model",
    )
    result = analyse(view, snap.GIM)
    probe_cluster(
        backend,
        result,
        view,
        LiveOptions(probe_allowed_namespaces=allowed_probes, timeout_s=1, deadline_s=30),
        "run1",
    )
    backend.clock.sleep(30)  # namespace deletion is asynchronous: Terminating for 10-20 s
    leftovers_after = [o for o in backend.objects() if RUN_LABEL in (o["metadata"].get("labels") or {})]
    return result, leftovers_after


def test_live_run_on_an_enforcing_cluster_probes_and_cleans_up():
    result, left = _live_run(snap.cluster("enforce", ["ingress-nginx", "monitoring"]), allowed_probes=True)
    assert left == []
    assert result.live and result.problems == [] and result.exit_status == 0
    by_client = {}
    for p in result.probes:
        by_client.setdefault(p.client.split("/")[0], set()).add((p.expected_allowed, p.outcome))
    assert by_client["gim-netpol-verify-run1-probe"] == {(False, "blocked")}
    assert by_client["ingress-nginx"] == {(True, "connected")}
    assert {p.via for p in result.probes} == {"pod", "service"}
    assert all(p.repro.startswith("kubectl exec") for p in result.probes)
    root = ET.fromstring(to_junit(result))
    assert len(root.findall("testsuite")[-1].findall("testcase")) == len(result.probes)


def test_live_run_on_a_cni_that_rejects_trusts_the_canary_and_reports_refusals_as_unknown():
    """kube-router answers a denied connection with a refusal. The canary server is known to listen (the
    baseline connected), so its refusal is a reject; whether GIM's own pods listen is not known, so a
    refused probe is reported 'unknown', never allowed and never a failure of the chart."""
    # nodes that answer every reject (net.ipv4.icmp_ratelimit=0): every denied connect is refused
    result, left = _live_run(
        snap.cluster("enforce", ["ingress-nginx", "monitoring"]), cni="rejects", icmp_burst=10**6
    )
    assert left == []
    assert not any("not enforced" in p for p in result.problems), result.problems
    blocked = [p for p in result.probes if not p.expected_allowed]
    assert blocked and {p.outcome for p in blocked} == {"unknown"}
    assert all("unknown: refused" in p.detail for p in blocked)
    assert any("refused, not checked" in n for n in result.notes)
    assert result.problems == [] and result.exit_status == 0
    cases = ET.fromstring(to_junit(result)).findall("testsuite")[-1].findall("testcase")
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert len(skipped) == len(blocked) and not [c for c in cases if c.find("failure") is not None]


def test_live_run_on_a_cni_that_rejects_past_the_icmp_rate_limit_sees_timeouts_as_blocks():
    """With the kernel's default limit (6 answers, then one a second, per node and client), most of
    verify's denied connects from one client time out: blocked, never allowed, never a failure."""
    result, left = _live_run(snap.cluster("enforce", ["ingress-nginx", "monitoring"]), cni="rejects")
    assert left == [] and result.problems == [] and result.exit_status == 0
    blocked = [p for p in result.probes if not p.expected_allowed]
    assert blocked and {p.outcome for p in blocked} <= {"unknown", "blocked"}
    timed_out = [p for p in blocked if p.outcome == "blocked"]
    assert timed_out and all("ICMP rate limit" in p.detail for p in timed_out)


def test_live_run_on_a_cluster_that_does_not_enforce_fails_on_the_canary():
    result, left = _live_run(snap.cluster("enforce", ["ingress-nginx", "monitoring"]), enforcing=False)
    assert left == []
    assert result.exit_status == 1
    assert result.problems[0].startswith("policies deployed but not enforced")
    assert "kindnet" in result.problems[0]
    assert result.probes == []


def test_live_run_without_a_usable_kubeconfig_exits_2_pointing_at_snapshots(tmp_path, capsys):
    status, out, err = verify(capsys, "--kubeconfig", str(tmp_path / "nope"), "--deadline", "5")
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "cannot load kubeconfig" in err and "--snapshot" in err


def test_help_and_readme_name_every_evidence_source_with_its_export_command(capsys):
    from conformance.verify.kinds import OPTIONAL

    assert main(["verify", "--help"]) == 0
    help_text = capsys.readouterr().out
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for text in (help_text, readme):
        for kind in OPTIONAL:
            plural = kind.plural if kind.kind != "Gateway" else f"gateways.{kind.group}"
            assert plural in text, f"{kind.shown} is read by verify but its export is not documented"
        assert "hubble observe" in text and "--to-namespace" in text
        assert "src_namespace,src_pod" in text.replace("\n", "").replace(" ", "")


def test_the_report_leaves_out_namespaces_of_this_tools_runs_and_says_how_many(tmp_path, capsys):
    """A second run's matrix must not list the first run's namespaces (still Terminating) as sources."""
    old = []
    for role in ("canary", "probe"):
        ns = snap.namespace(f"gim-netpol-verify-old1-{role}", {RUN_LABEL: "old1"})
        ns["status"]["phase"] = "Terminating"
        old += [ns, snap.pod(ns["metadata"]["name"], "client", {}, [])]
    probe_ns = snap.namespace("gim-netpol-probe-cli", {"conformance.gitguardian.com/probe-namespace": "cli"})
    objects = [*snap.cluster("enforce", ["ingress-nginx", "monitoring"]), *old, probe_ns]
    path = snap.write(tmp_path / "snap.yaml", objects)
    status, out, _ = verify(capsys, "--snapshot", str(path), "-o", "json")
    doc = json.loads(out)
    assert status == 0
    sources = {f["sourceNamespace"] for f in doc["flows"]}
    assert sources and not {n for n in sources if n.startswith("gim-netpol-")}
    note = next(n for n in doc["notes"] if n.startswith("left out"))
    assert note.startswith("left out 3 namespaces of this tool's own runs (2 still Terminating;")
    assert "gim-netpol-verify-old1-canary" in note


def test_the_pytest_entry_point_refuses_bad_probe_namespaces_before_the_session_starts():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "conformance/test_verify_cluster.py",
            "--backend",
            "model",
            "--verify-namespace",
            "gitguardian",
            "--verify-probe-namespaces",
            "a,b,B_ad,d",
        ],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "gim-netpol: error: --verify-probe-namespaces: 'B_ad' is not a namespace name (DNS-1123 label)"
    ]
