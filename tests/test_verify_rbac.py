"""verify's RBAC: what ``gim-netpol rbac`` prints against every API call verify makes, in each mode.

The calls are recorded where they are made: discovery and the access review through the real kubernetes
client against a fake API server on loopback that authorizes each request with the printed RBAC (as an
API server's RBAC authorizer does, ``backends/model_rbac``); probing (canary, CNI canaries, probes,
clean-up) on the model backend, which records each request as the live backend makes it and refuses it
with the API server's 403 when the printed RBAC does not allow it. The printed RBAC must allow every
call, and every rule it prints must be used by one.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from conformance.backends.kube import KubeBackend
from conformance.backends.model import ModelBackend, ModelCluster
from conformance.backends.model_rbac import ApiCall, Rbac, rule_allows
from conformance.commands.cli import error_line, main
from conformance.commands.verify import judged
from conformance.errors import UserError
from conformance.netpol.model import NAME_LABEL, ContainerPort
from conformance.probes.agnhost import RUN_LABEL, client_pod, server_pod, service
from conformance.suite.probe_namespaces import ProbeNamespaces
from conformance.verify import kinds
from conformance.verify.analysis import analyse
from conformance.verify.discovery import view_from_objects
from conformance.verify.live import LiveOptions, discover, probe_cluster, served_versions
from conformance.verify.own import leave_out_own_namespaces
from tests import verify_snapshots as snap
from tests.test_kube_backend import FakeApiServer
from tests.test_verify_discovery import DiscoveryApiServer, _api_client, _kubeconfig

USER = "system:serviceaccount:gim-netpol:gim-netpol-verify"
REFERENCE = [
    "--set",
    "networkPolicy.enabled=true",
    "--set",
    "networkPolicy.mode=enforce",
    "--set",
    "networkPolicy.allowedNamespaces={ingress-nginx,monitoring}",
]
ALL_GROUPS = {k.group: list(k.versions) for k in kinds.OPTIONAL} | {"apps": ["v1"]}
VERBS = {"GET": "get", "POST": "create", "DELETE": "delete", "PUT": "update", "PATCH": "patch"}


def printed(capsys, *args: str) -> list[dict]:
    assert main(["rbac", *args]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return [d for d in yaml.safe_load_all(out) if d]


def call_of(method: str, path: str) -> ApiCall | None:
    """The request a REST path is, as the authorizer sees it (None: a non-resource URL such as /apis)."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) > 2:
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) > 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    name = rest[1] if len(rest) > 1 else ""
    verb = "list" if method == "GET" and not name else VERBS[method]
    return ApiCall(verb, group, rest[0], rest[2] if len(rest) > 2 else "", namespace, name)


class RbacApiServer(DiscoveryApiServer):
    """The discovery fake, authorizing each request (and answering access reviews) with ``rbac``."""

    def __init__(self, objects, groups, rbac: Rbac) -> None:
        super().__init__(objects, groups)
        self.rbac = rbac
        self.calls: set[ApiCall] = set()

    def handle(self, method, raw_path, body):
        path = raw_path.split("?")[0].rstrip("/")
        if method == "POST" and path.endswith("/selfsubjectaccessreviews"):  # allowed to everyone
            a = body["spec"]["resourceAttributes"]
            asked = ApiCall(
                a["verb"], a["group"], a["resource"], a.get("subresource", ""), a.get("namespace", "")
            )
            return 201, {**body, "status": {"allowed": self.rbac.allows(asked)}}
        call = call_of(method, path)
        if call is not None:
            self.calls.add(call.anonymous())
            if not self.rbac.allows(call):
                return self.status(403, "Forbidden", call.forbidden_message(self.rbac.user))
        return super().handle(method, raw_path, body)


def discovery_calls(rules: list[dict], tmp_path) -> set[ApiCall]:
    """The calls of verify's live discovery (served groups, every kind listed) under ``rules``."""
    server = RbacApiServer(snap.cluster("enforce", ["ingress-nginx"]), ALL_GROUPS, Rbac(rules, USER))
    try:
        api = _api_client(server.url)
        discover(api, "fake", served_versions(api))
    finally:
        server.close()
    return server.calls


def model_run(
    rules,
    *,
    probe_namespaces,
    exec_verb="create",
    cni="needed",
    admin_objects=(),
    objects=None,
    probe_allowed_namespaces=True,
):
    """probe_cluster as verify runs it, on a model cluster where GIM runs (``objects``, by default GIM in
    enforce allowing ingress-nginx and monitoring; applied as an administrator) and verify's identity
    holds ``rules`` only. (analysis, recorded calls, the run's objects left)."""
    cluster = ModelCluster(exec_verb=exec_verb)
    backend = ModelBackend(cluster=cluster)
    if objects is None:
        objects = snap.cluster("enforce", ["ingress-nginx", "monitoring"])
    backend.apply([*objects, *admin_objects])
    cluster.rbac, cluster.calls = Rbac(rules, USER), set()
    held = backend.objects() + [
        o for o in objects if o["kind"] not in ("Namespace", "Pod", "Service", "NetworkPolicy")
    ]
    view = leave_out_own_namespaces(view_from_objects([("model", o) for o in held], source="model"))
    analysis = analyse(view, snap.GIM)
    options = LiveOptions(
        timeout_s=1,
        deadline_s=30,
        cni_features=cni,
        probe_namespaces=probe_namespaces,
        probe_allowed_namespaces=probe_allowed_namespaces,
    )
    try:
        probe_cluster(backend, analysis, view, options, "run1")
    finally:
        cluster.rbac = None
        backend.clock.sleep(30)  # namespaces terminate asynchronously
        left = [o for o in backend.objects() if (o["metadata"].get("labels") or {}).get(RUN_LABEL) == "run1"]
    return analysis, cluster.calls, left


def granted(rules: list[dict]) -> list[tuple[str, dict]]:
    """(namespace or "" for a ClusterRole, rule) of every printed rule."""
    out = []
    for doc in rules:
        if doc["kind"] in ("ClusterRole", "Role"):
            out += [(doc["metadata"].get("namespace", ""), r) for r in doc["rules"]]
    return out


def unused(rules: list[dict], calls: set[ApiCall]) -> list[str]:
    """Each (namespace, rule, verb, resource) the printed RBAC grants that no recorded call used."""
    out = []
    for namespace, rule in granted(rules):
        for verb in rule["verbs"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    name, _, sub = resource.partition("/")
                    used = any(
                        c.verb == verb
                        and c.group == group
                        and (c.resource, c.subresource) == (name, sub)
                        and (not namespace or c.namespace == namespace)
                        for c in calls
                    )
                    if not used:
                        out.append(f"{verb} {resource} ({group or 'core'}) {namespace or 'cluster-wide'}")
    return out


def test_namespaced_rbac_allows_every_call_verify_makes_and_nothing_else(capsys, tmp_path):
    rules = printed(capsys, *REFERENCE, "--probe-allowed-namespaces")
    probe = ProbeNamespaces()
    namespaces = [d for d in rules if d["kind"] == "Namespace"]
    rbac = Rbac(rules, USER)
    calls = discovery_calls(rules, tmp_path)
    # API servers from 1.31 authorize exec as create, older ones as get; the printed Roles cover every
    # canary verify may run (all), whichever the cluster's policies need (needed: the reference's here)
    for exec_verb, cni in itertools.product(("create", "get"), ("needed", "all")):
        analysis, made, left = model_run(
            rules, probe_namespaces=probe, exec_verb=exec_verb, cni=cni, admin_objects=namespaces
        )
        assert analysis.problems == [] and analysis.exit_status == 0
        statuses = {feature: r.status for feature, r in analysis.cni_features.results.items()}
        assert statuses.pop("node-traffic", "not checked") == "not checked"  # verify's are restricted
        assert set(statuses.values()) == {"enforced"}
        assert {p.client.split("/")[0] for p in analysis.probes} == {
            "gim-netpol-probe-cli",
            "ingress-nginx",
            "monitoring",
        }
        assert left == []  # everything the run created is gone; the probe namespaces stay
        calls |= made
    assert [c for c in calls if not rbac.allows(c)] == []
    assert unused(rules, calls) == []
    # what a security review checks: no namespace written, GIM's namespace only listed
    assert not [c for c in calls if c.resource == "namespaces" and c.verb != "list"]
    assert not [c for c in calls if c.namespace == snap.GIM and c.verb != "list"]
    writes = {c.namespace for c in calls if c.verb not in ("get", "list")}
    assert writes == {*probe.names, "ingress-nginx", "monitoring"}


NAMED_PORT_SCRAPE = {  # an extraPolicies entry naming a port: the named-port canary
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "allow-exporter-scrape"},
    "spec": {
        "podSelector": {"matchLabels": {snap.COMPONENT: "app-exporter"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "monitoring"}}}],
                "ports": [{"port": "metrics"}],
            }
        ],
    },
}


def gim_like_cluster() -> list[dict]:
    """Issue 21's cluster: GIM in dryrun allowing ingress-nginx, a ServiceMonitor (``snap.monitoring``) and
    a Gateway API route to GIM; its extraPolicies add an egress policy (SMTP through an ipBlock) and a
    named port. Its policies need canaries (default-deny-egress, ip-block, named-port, numbered-port)
    that the reference values (enforce, no extraPolicies) do not."""
    return [
        *snap.cluster("dryrun", ["ingress-nginx"], extra=[snap.SMTP_EGRESS, NAMED_PORT_SCRAPE]),
        snap.namespace("edge"),
        snap.gateway_class("public-class", "istio.io/gateway-controller"),
        snap.gateway("edge", "public", "public-class"),
        snap.pod(  # Istio's in-cluster gateway pod, labelled as GEP-1762 says
            "edge",
            "public-istio-7f9c-abcde",
            {"gateway.networking.k8s.io/gateway-name": "public", "istio.io/rev": "default"},
            [(10443, "https")],
        ),
        snap.gateway_route("HTTPRoute", snap.GIM, "gim", [("nginx", 443)], ("edge", "public")),
    ]


def test_the_default_rbac_covers_what_verify_needs_on_a_cluster_whose_policies_need_more_canaries(
    capsys, tmp_path
):
    """Issue 21: `gim-netpol rbac` with no values printed Roles for the canaries of the reference values
    only; on a cluster whose GIM policies need more (dryrun's egress safety net, an egress extraPolicy,
    a named port), verify as that identity refused itself: `RBAC: missing permissions: create
    networkpolicies.networking.k8s.io in namespace gim-netpol-probe-cli`."""
    rules = printed(capsys)  # the defaults, as applied in the issue
    rbac = Rbac(rules, USER)
    namespaces = [d for d in rules if d["kind"] == "Namespace"]
    objects = gim_like_cluster()
    # through the real kubernetes client, as a user runs it: the access reviews verify makes first
    status, out, err, server = _live_verify(capsys, tmp_path, rules, [*objects, *namespaces])
    assert "missing permissions" not in err and "RBAC" not in err, err
    assert "HTTPRoute/gitguardian/gim" in out and "edge" in out.split("Who needs to reach GIM")[1]
    # past the check, verify creates its canary (which this fake, serving no writes, answers with 404)
    assert ApiCall("create", "", "pods", namespace="gim-netpol-probe-srv") in server.calls
    assert [c for c in server.calls if not rbac.allows(c)] == []
    # then the whole run on the model, every call authorized by the printed RBAC
    calls = set(server.calls)
    for exec_verb in ("create", "get"):
        analysis, made, left = model_run(
            rules,
            probe_namespaces=ProbeNamespaces(),
            exec_verb=exec_verb,
            admin_objects=namespaces,
            objects=objects,
            probe_allowed_namespaces=False,  # verify's default, as in the issue
        )
        results = {feature: r.status for feature, r in analysis.cni_features.results.items()}
        assert results == dict.fromkeys(
            [
                "default-deny-ingress",
                "default-deny-egress",
                "pod-selector",
                "namespace-selector",
                "match-expressions",
                "numbered-port",
                "named-port",
                "ip-block",
                "service-ip",
            ],
            "enforced",
        )
        assert analysis.probes and all(p.agrees for p in analysis.probes)
        assert not [p for p in analysis.problems if "could not complete" in p or "forbidden" in p]
        assert left == []
        calls |= made
    assert [c for c in calls if not rbac.allows(c)] == []
    assert {c.namespace for c in calls if c.resource == "networkpolicies" and c.verb == "create"} == {
        "gim-netpol-probe-srv",
        "gim-netpol-probe-cli",
    }


def test_cluster_wide_rbac_is_the_deploy_file_and_every_rule_is_used(capsys, tmp_path):
    rules = printed(capsys, "--mode", "cluster-wide")
    with open(Path(__file__).resolve().parent.parent / "deploy" / "rbac-verify.yaml") as f:
        assert [d for d in yaml.safe_load_all(f) if d] == rules
    calls = discovery_calls(rules, tmp_path)
    for exec_verb in ("create", "get"):
        analysis, made, left = model_run(rules, probe_namespaces=None, exec_verb=exec_verb, cni="all")
        assert analysis.exit_status == 0 and left == []
        calls |= made
    assert [c for c in calls if not Rbac(rules, USER).allows(c)] == []
    assert unused(rules, calls) == []


def test_read_only_verify_lists_only_what_the_read_only_rbac_grants(capsys, tmp_path):
    rules = printed(capsys, "--mode", "read-only")
    assert {v for _, r in granted(rules) for v in r["verbs"]} == {"list"}
    earlier = snap.namespace("gim-netpol-verify-old1-probe", {RUN_LABEL: "old1"})
    earlier["status"]["phase"] = "Terminating"
    objects = [*snap.cluster("enforce", ["ingress-nginx", "monitoring"]), earlier]
    server = RbacApiServer(objects, ALL_GROUPS, Rbac(rules, USER))
    try:
        status = main(
            [
                "verify",
                "--gim-namespace",
                snap.GIM,
                "--kubeconfig",
                _kubeconfig(tmp_path, server.url),
                "--no-probes",
            ]
        )
    finally:
        server.close()
    out, err = capsys.readouterr()
    assert status == 0, out
    assert "nothing was probed and nothing created" in out
    assert "left out 1 namespace of this tool's own runs (1 still Terminating" in out
    assert "gim-netpol-verify-old1-probe" not in out.split("Notes")[0]
    assert {c.verb for c in server.calls} == {"list"}
    assert unused(rules, server.calls) == []


def test_a_rule_missing_from_the_rbac_stops_verify_with_one_line_naming_it(capsys):
    rules = printed(capsys, *REFERENCE)
    srv = next(
        d for d in rules if d["kind"] == "Role" and d["metadata"]["namespace"] == "gim-netpol-probe-srv"
    )
    core = next(r for r in srv["rules"] if "services" in r["resources"])
    core["resources"].remove("services")
    namespaces = [d for d in rules if d["kind"] == "Namespace"]
    with pytest.raises(UserError) as refused:
        judged(lambda: model_run(rules, probe_namespaces=ProbeNamespaces(), admin_objects=namespaces))
    line = error_line(refused.value)
    assert line == (
        'gim-netpol: error: RBAC: services "service-ip-run1-server" is forbidden: User'
        f' "{USER}" cannot create resource "services" in API group "" in the namespace'
        ' "gim-netpol-probe-srv": missing RBAC rule {apiGroups: [""], resources: [services], verbs: [create]}'
        f" in a Role in namespace gim-netpol-probe-srv for {USER}; apply what `gim-netpol rbac` prints for"
        " this mode"
    )


def test_a_refused_run_leaves_nothing_behind(capsys):
    rules = printed(capsys, *REFERENCE)
    srv = next(
        d for d in rules if d["kind"] == "Role" and d["metadata"]["namespace"] == "gim-netpol-probe-srv"
    )
    next(r for r in srv["rules"] if "services" in r["resources"])["resources"].remove("services")
    cluster = ModelCluster()
    backend = ModelBackend(cluster=cluster)
    objects = snap.cluster("enforce", ["ingress-nginx", "monitoring"])
    backend.apply([*objects, *(d for d in rules if d["kind"] == "Namespace")])
    cluster.rbac = Rbac(rules, USER)
    view = view_from_objects([("model", o) for o in objects], source="model")
    with pytest.raises(Exception, match="is forbidden"):
        probe_cluster(
            backend, analyse(view, snap.GIM), view, LiveOptions(probe_namespaces=ProbeNamespaces()), "r2"
        )
    cluster.rbac = None
    assert [o for o in backend.objects() if (o["metadata"].get("labels") or {}).get(RUN_LABEL) == "r2"] == []


def test_the_model_answers_a_refused_request_as_an_api_server_does():
    rbac = Rbac([], USER)
    assert ApiCall("list", "", "pods").forbidden_message(USER) == (
        f'pods is forbidden: User "{USER}" cannot list resource "pods" in API group "" at the cluster scope'
    )
    assert ApiCall("create", "", "pods", "exec", "ns", "x").forbidden_message(USER) == (
        f'pods "x" is forbidden: User "{USER}" cannot create resource "pods/exec" in API group "" in the'
        ' namespace "ns"'
    )
    assert (
        ApiCall("create", "networking.k8s.io", "networkpolicies", namespace="ns", name="p")
        .forbidden_message(USER)
        .startswith('networkpolicies.networking.k8s.io "p" is forbidden')
    )
    assert not rbac.allows(ApiCall("list", "", "pods"))


def test_policy_rules_match_as_the_rbac_authorizer_does():
    assert rule_allows(
        {"apiGroups": [""], "resources": ["*"], "verbs": ["*"]}, ApiCall("create", "", "pods", "exec")
    )
    assert rule_allows(
        {"apiGroups": [""], "resources": ["*/exec"], "verbs": ["get"]}, ApiCall("get", "", "pods", "exec")
    )
    assert not rule_allows(
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}, ApiCall("create", "", "pods", "exec")
    )
    named = {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"], "resourceNames": ["a"]}
    assert rule_allows(named, ApiCall("delete", "", "pods", namespace="n", name="a"))
    assert not rule_allows(named, ApiCall("delete", "", "pods", namespace="n", name="b"))
    assert not rule_allows(
        {"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["list"]}, ApiCall("list", "", "pods")
    )
    role = {
        "kind": "ClusterRole",
        "metadata": {"name": "r"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    }
    binding = {
        "kind": "RoleBinding",
        "metadata": {"name": "b", "namespace": "team"},
        "roleRef": {"kind": "ClusterRole", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "gim-netpol-verify", "namespace": "gim-netpol"}],
    }
    rbac = Rbac([role, binding], USER)
    assert rbac.allows(ApiCall("list", "", "pods", namespace="team"))
    assert not rbac.allows(
        ApiCall("list", "", "pods", namespace="other")
    )  # a RoleBinding: its namespace only
    assert not rbac.allows(ApiCall("list", "", "pods"))
    assert not Rbac([role, binding], "system:serviceaccount:gim-netpol:someone-else").allows(
        ApiCall("list", "", "pods", namespace="team")
    )


def _live_verify(capsys, tmp_path, rules, objects, *args):
    server = RbacApiServer(objects, ALL_GROUPS, Rbac(rules, USER))
    try:
        kubeconfig = _kubeconfig(tmp_path, server.url)
        status = main(["verify", "--gim-namespace", snap.GIM, "--kubeconfig", kubeconfig, *args])
    finally:
        server.close()
    out, err = capsys.readouterr()
    return status, out, err, server


def test_namespaced_verify_checks_its_permissions_before_creating_anything(capsys, tmp_path):
    rules = printed(capsys, *REFERENCE)
    namespaces = [d for d in rules if d["kind"] == "Namespace"]
    srv = next(
        d for d in rules if d["kind"] == "Role" and d["metadata"]["namespace"] == "gim-netpol-probe-srv"
    )
    next(r for r in srv["rules"] if "services" in r["resources"])["resources"].remove("services")
    objects = [*snap.cluster("enforce", ["ingress-nginx", "monitoring"]), *namespaces]
    status, out, err, server = _live_verify(capsys, tmp_path, rules, objects)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "missing permissions: create services in namespace gim-netpol-probe-srv" in err
    assert "delete services in namespace gim-netpol-probe-srv" in err
    assert "gim-netpol rbac --mode namespaced" in err
    assert {c.verb for c in server.calls} == {"list"}  # nothing was created


THE_OTHER_WAYS = (
    "have a cluster administrator create them once, with the Roles verify needs there, with `{rbac}`"
    " (NS/NAME: the ServiceAccount verify runs as, or --user NAME); or, as a cluster administrator, run"
    " verify --cluster-wide (namespaces of its own, deleted at the end); or run verify --no-probes"
    " (read-only: nothing created or probed, the CNI not checked)"
)


@pytest.mark.parametrize(
    ("args", "existing", "missing", "rbac"),
    [
        (
            [],
            [],
            "probe namespaces gim-netpol-probe-srv, gim-netpol-probe-cli, gim-netpol-probe-team,"
            " gim-netpol-probe-other do not exist",
            "gim-netpol rbac --service-account NS/NAME | kubectl apply -f -",
        ),
        (
            ["--probe-namespaces", "p-srv,p-cli,p-team,p-other"],
            ["p-srv", "p-cli", "p-other"],
            "probe namespace p-team does not exist",
            "gim-netpol rbac --probe-namespaces p-srv,p-cli,p-team,p-other --service-account NS/NAME"
            " | kubectl apply -f -",
        ),
    ],
    ids=["none-of-the-default-names", "one-of-four-named"],
)
def test_namespaced_verify_without_its_probe_namespaces_says_how_to_create_them_and_the_other_ways(
    capsys, tmp_path, args, existing, missing, rbac
):
    rules = printed(capsys, *REFERENCE)
    namespaces = [snap.namespace(n) for n in existing]
    objects = [*snap.cluster("enforce", ["ingress-nginx"]), *namespaces]
    status, out, err, server = _live_verify(capsys, tmp_path, rules, objects, *args)
    assert status == 2 and out == ""
    hint = THE_OTHER_WAYS.format(rbac=rbac)
    assert err == f"gim-netpol: error: --probe-namespaces: {missing}: {hint}\n"
    assert {c.verb for c in server.calls} == {"list"}


def test_probe_namespaces_without_the_canaries_labels_are_refused(capsys, tmp_path):
    rules = printed(capsys, *REFERENCE)
    namespaces = [d for d in rules if d["kind"] == "Namespace"]
    del namespaces[2]["metadata"]["labels"]["conformance.gitguardian.com/canary-team"]
    objects = [*snap.cluster("enforce", ["ingress-nginx"]), *namespaces]
    status, _, err, _ = _live_verify(capsys, tmp_path, rules, objects)
    assert status == 2 and err.count("\n") == 1
    assert (
        "probe namespace gim-netpol-probe-team (team) lacks the labels"
        " conformance.gitguardian.com/canary-team=allowed" in err
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--mode", "cluster-wide", "--probe-allowed-namespaces"],
            "--probe-allowed-namespaces: applies to --mode",
        ),
        (["--mode", "read-only", "--probe-namespaces", "a,b,c,d"], "--probe-namespaces: applies to --mode"),
        (["--probe-namespaces", "a,b,c"], "--probe-namespaces: needs 4 comma-separated namespaces"),
        (["--probe-namespaces", "a,b,a,d"], "--probe-namespaces: the four namespaces must differ"),
        (["--service-account", "no-slash"], "--service-account: 'no-slash' is not NAMESPACE/NAME"),
        (["--values", "/nonexistent/values.yaml"], "/nonexistent/values.yaml"),
    ],
)
def test_bad_rbac_arguments_are_one_line_and_exit_2(capsys, args, message):
    assert main(["rbac", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err and "Traceback" not in err


def _probe_namespace_objects() -> list[dict]:
    labels = {"app": "srv"}
    return [
        client_pod("p", "client", {}, run_id="r"),
        server_pod("p", "server", labels, [ContainerPort(8080, "TCP", "http")], run_id="r"),
        service("p", "server", labels, [ContainerPort(8080, "TCP", "http")], run_id="r"),
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny", "namespace": "p", "labels": {RUN_LABEL: "r"}},
            "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"]},
        },
    ]


def _backend_session(backend) -> None:
    """What verify does with a backend in a probe namespace: create, re-apply, wait, read, name the CNI,
    delete."""
    objects = _probe_namespace_objects()
    backend.apply(objects)
    backend.apply(objects[1:3])  # applied again: 409, read, then patched (a pod) or replaced
    backend.wait_ready(["p"], 30)
    backend.state(["p"])
    backend.detect_cni()
    backend.delete(list(reversed(objects)))


def test_the_model_records_the_requests_the_live_backend_sends(tmp_path):
    """The model's record of a call is what KubeBackend (the real kubernetes client) sends for it: the
    same session on both, compared request by request (verb, group, resource, namespace)."""
    server = FakeApiServer()
    try:
        server.objects[("namespaces", "", "p")] = {"metadata": {"name": "p", "resourceVersion": "1"}}
        live = KubeBackend(_kubeconfig(tmp_path, server.url), "fake")
        _backend_session(live)
        live.close()
    finally:
        server.close()
    sent = {c.anonymous() for c in (call_of(m, p) for m, p in server.requests) if c is not None}
    model = ModelBackend()
    model.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "p"}}])
    model.cluster.calls.clear()
    _backend_session(model)
    assert model.cluster.calls == sent
    assert {c.verb for c in sent} == {"create", "get", "update", "patch", "list", "delete"}
