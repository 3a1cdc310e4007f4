"""Probe pod manifests, the probe command, and how agnhost connect's outcomes are read."""

from __future__ import annotations

import pytest

from conformance.errors import UserError
from conformance.netpol.model import ContainerPort, ServicePort
from conformance.netpol.probing import Outcome
from conformance.probes import agnhost
from conformance.probes.agnhost import RUN_LABEL, classify, client_pod, connect_command, server_pod, service

RUN = "r-1234"


def _restricted_violations(pod: dict) -> list[str]:
    """What Pod Security "restricted" (v1.25+) would reject in this pod, checked field by field."""
    problems = []
    spec = pod["spec"]
    psc = spec.get("securityContext", {})
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        name = c["name"]
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            problems.append(f"{name}: capabilities")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot")
        uid = sc.get("runAsUser", psc.get("runAsUser"))
        if not isinstance(uid, int) or uid == 0:
            problems.append(f"{name}: runAsUser")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem")
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        for port in c.get("ports", []):
            if "hostPort" in port:
                problems.append(f"{name}: hostPort")
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        problems.append("host namespaces")
    if spec.get("volumes"):
        problems.append("volumes")
    return problems


def _server():
    return server_pod(
        "gim",
        "internal-api",
        {"app": "internal-api"},
        [ContainerPort(8080, "TCP", "http"), ContainerPort(9090), ContainerPort(5353, "UDP", "dns")],
        run_id=RUN,
    )


def test_server_pod_meets_restricted_pod_security():
    assert _restricted_violations(_server()) == []


def test_client_pod_meets_restricted_pod_security():
    assert _restricted_violations(client_pod("ingress-nginx", "client", {"app": "c"}, run_id=RUN)) == []


def test_server_serves_every_tcp_port_with_porter_and_udp_with_serve_hostname():
    pod = _server()
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    porter = containers["server"]
    assert porter["command"] == ["/agnhost", "porter"]
    env_names = {e["name"] for e in porter["env"]}
    assert env_names == {"SERVE_PORT_8080", "SERVE_PORT_9090"}
    assert [(p["containerPort"], p["protocol"], p.get("name")) for p in porter["ports"]] == [
        (8080, "TCP", "http"),
        (9090, "TCP", None),
    ]
    udp = containers["udp-5353"]
    assert udp["command"][:3] == ["/agnhost", "serve-hostname", "--udp"]
    assert "--port=5353" in udp["command"]
    assert udp["ports"] == [{"containerPort": 5353, "protocol": "UDP", "name": "dns"}]


def test_server_is_ready_only_once_listening():
    probe = _server()["spec"]["containers"][0]["readinessProbe"]
    assert probe["tcpSocket"]["port"] == 8080


def test_pods_keep_the_workload_labels_and_carry_the_run_label():
    pod = _server()
    assert pod["metadata"]["labels"] == {"app": "internal-api", RUN_LABEL: RUN}
    assert pod["metadata"]["namespace"] == "gim"
    svc = service("gim", "internal-api", {"app": "internal-api"}, [ContainerPort(8080)], RUN)
    assert svc["metadata"]["labels"][RUN_LABEL] == RUN


def test_pods_spread_over_nodes_without_blocking_scheduling():
    for pod in (_server(), client_pod("x", "c", {}, run_id=RUN)):
        (constraint,) = pod["spec"]["topologySpreadConstraints"]
        assert constraint["topologyKey"] == "kubernetes.io/hostname"
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
        assert constraint["labelSelector"]["matchLabels"] == {RUN_LABEL: RUN}
        assert pod["spec"]["terminationGracePeriodSeconds"] in (0, 1)


def test_client_pauses_and_uses_the_given_image():
    pod = client_pod(
        "monitoring", "client", {"role": "client"}, image="mirror.local/agnhost:2.52", run_id=RUN
    )
    (c,) = pod["spec"]["containers"]
    assert c["command"] == ["/agnhost", "pause"]
    assert c["image"] == "mirror.local/agnhost:2.52"
    assert agnhost.AGNHOST_IMAGE.startswith("registry.k8s.io/e2e-test-images/agnhost:")


@pytest.mark.parametrize("port", [80, 443, 0, 70000])
def test_privileged_or_invalid_ports_are_refused(port):
    with pytest.raises(UserError, match=str(port)):
        server_pod("gim", "nginx", {}, [ContainerPort(port)], run_id=RUN)


def test_duplicate_ports_and_bad_names_are_refused():
    with pytest.raises(UserError, match="twice"):
        server_pod("gim", "a", {}, [ContainerPort(8080), ContainerPort(8080)], run_id=RUN)
    with pytest.raises(UserError, match="port name"):
        server_pod("gim", "a", {}, [ContainerPort(8080, name="a-very-long-port-name")], run_id=RUN)


@pytest.mark.parametrize("name", ["8080", "http--alt", "-http", "HTTP"])
def test_port_names_the_api_server_would_refuse_are_refused(name):
    with pytest.raises(UserError, match="port name"):
        server_pod("gim", "a", {}, [ContainerPort(8080, name=name)], run_id=RUN)


def test_one_name_for_two_tcp_ports_is_refused_but_tcp_and_udp_may_share_it():
    with pytest.raises(UserError, match="'http' used for two ports"):
        server_pod(
            "gim", "a", {}, [ContainerPort(8080, name="http"), ContainerPort(8081, name="http")], run_id=RUN
        )
    pod = server_pod(
        "gim", "dns", {}, [ContainerPort(5353, "TCP", "dns"), ContainerPort(5353, "UDP", "dns")], run_id=RUN
    )
    assert [c["ports"][0]["name"] for c in pod["spec"]["containers"]] == ["dns", "dns"]


def test_service_port_names_stay_unique_when_tcp_and_udp_share_a_container_port_name():
    svc = service(
        "kube-system",
        "kube-dns",
        {"k8s-app": "dns"},
        [ContainerPort(5353, "UDP", "dns"), ContainerPort(5353, "TCP", "dns")],
        RUN,
    )
    names = [p["name"] for p in svc["spec"]["ports"]]
    assert names == ["dns", "tcp-5353"]
    assert svc["metadata"]["name"] == "kube-dns"


def test_service_is_cluster_ip_with_named_ports():
    svc = service(
        "gim",
        "public-api",
        {"app": "public-api"},
        [ServicePort(80, 8080, "TCP", "http"), ContainerPort(9090)],
        RUN,
    )
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"] == {"app": "public-api"}
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "tcp-9090", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
    ]


def test_connect_command_matches_the_upstream_e2e_probe():
    assert connect_command("10.0.0.7", 8080, "TCP", 2) == [
        "/agnhost",
        "connect",
        "10.0.0.7:8080",
        "--timeout=2s",
        "--protocol=tcp",
    ]
    assert connect_command("fd00::7", 53, "UDP", 1.5)[2:] == [
        "[fd00::7]:53",
        "--timeout=1.5s",
        "--protocol=udp",
    ]
    with pytest.raises(ValueError):
        connect_command("10.0.0.7", 80, "ICMP", 1)


# The exact stderr lines of agnhost connect (test/images/agnhost/connect/connect.go).
@pytest.mark.parametrize(
    ("code", "stderr", "expected"),
    [
        (0, "", Outcome.CONNECTED),
        (1, "TIMEOUT\n", Outcome.BLOCKED),
        (1, "TIMEOUT: read udp 10.0.0.2:41234->10.0.0.7:5353: i/o timeout\n", Outcome.BLOCKED),
        (1, "REFUSED\n", Outcome.REFUSED),
        (1, "REFUSED: read udp 10.0.0.2:1->10.0.0.7:5353: read: connection refused\n", Outcome.REFUSED),
        (1, "DNS: lookup nope on 10.96.0.10:53: no such host\n", Outcome.ERROR),
        (1, "OTHER: dial tcp 10.0.0.7:8080: connect: no route to host\n", Outcome.ERROR),
        (1, "UNKNOWN: address 10.0.0.7: missing port in address\n", Outcome.ERROR),
        (1, "something else entirely\n", Outcome.ERROR),
        (126, "exec: permission denied", Outcome.ERROR),
        (137, "", Outcome.ERROR),
        (None, "", Outcome.ERROR),
    ],
)
def test_classify_reads_agnhost_connect_outputs(code, stderr, expected):
    outcome, detail = classify(code, "", stderr)
    assert outcome is expected
    if expected is Outcome.ERROR:
        assert detail  # an error always says why


def test_an_error_is_never_read_as_blocked_even_if_it_mentions_timeout():
    outcome, detail = classify(1, "", "OTHER: dial tcp: i/o TIMEOUT on something\n")
    assert outcome is Outcome.ERROR
    assert "OTHER" in detail
