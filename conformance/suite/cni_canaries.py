"""The catalog of CNI feature canaries: one small scenario per NetworkPolicy feature.

Each canary names its namespaces by role ("srv", "cli", "team"...), its server and client pods, the
policies it applies once the pods run (a builder: the ipBlock canary needs pod IPs), and its probes. The
expected verdict of every probe comes from the simulator, never from this file; each truth table mixes
connections that must get through and connections that must be blocked, so that a feature ignored and a
feature over-applied both show. ``conformance.suite.cni_features`` runs them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from conformance.netpol.features import FEATURES
from conformance.netpol.model import NAME_LABEL, Cluster, ContainerPort, K8sObject

DNS_SERVICE_ROLE = "dns/service"  # stands for the cluster DNS Service ("namespace/name"), found at run time
TEAM = "conformance.gitguardian.com/canary-team"  # the namespace label the selector canaries match
PRIVILEGED = {"pod-security.kubernetes.io/enforce": "privileged"}  # a host-network pod needs it
SERVER = {"app": "server"}
FRIEND, STRANGER = {"role": "friend"}, {"role": "stranger"}


# -- what a canary is ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Server:
    where: str  # "role/name": the namespace role and the pod name
    labels: Mapping[str, str]
    ports: tuple[ContainerPort, ...] = (ContainerPort(8080),)
    service: bool = False


@dataclass(frozen=True)
class Client:
    where: str
    labels: Mapping[str, str]
    host_network: bool = False


@dataclass(frozen=True)
class Check:
    client: str  # "role/name"
    target: str  # "role/name" of a server pod, or of a Service when via == "service"
    port: int
    protocol: str = "TCP"
    via: str = "pod"


Names = Callable[[str], str]  # namespace role -> the namespace's name in this run; "role/name" -> its key
PolicyBuilder = Callable[[Names, Cluster], list[K8sObject]]


@dataclass(frozen=True)
class Canary:
    feature: str
    does: str  # what the canary deploys and expects, for the README and the reports
    namespaces: Mapping[str, Mapping[str, str]]  # role -> extra labels
    servers: tuple[Server, ...]
    clients: tuple[Client, ...]
    policies: PolicyBuilder
    checks: tuple[Check, ...]
    unavailable: str = ""  # what a baseline that does not connect usually means
    cannot_run: str = ""  # what a server that keeps exiting means; {error}: its last error
    needs: str = ""  # what the cluster must offer beyond ordinary pods, for the README


def _policy(namespace: str, name: str, spec: dict) -> K8sObject:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _ingress(role: str, rules: list[dict], selector: dict | None = None) -> PolicyBuilder:
    """A policy in namespace ``role`` isolating the servers for ingress with ``rules``."""
    spec = {"podSelector": selector or {"matchLabels": SERVER}, "policyTypes": ["Ingress"], "ingress": rules}
    return lambda ns, state: [_policy(ns(role), "canary", spec)]


def _team(value: str) -> dict:
    return {TEAM: value}


def _ip_block(ns: Names, state: Cluster) -> list[K8sObject]:
    """Egress to everything except server b's pod IP: known only once the pods run."""
    b_ip = ipaddress.ip_address(state.pod(ns("srv/b")).ip or "")
    everything, one = ("0.0.0.0/0", 32) if b_ip.version == 4 else ("::/0", 128)
    spec = {
        "podSelector": {"matchLabels": {"app": "client"}},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": everything, "except": [f"{b_ip}/{one}"]}}]}],
    }
    return [_policy(ns("cli"), "canary", spec)]


def _egress_dns(ns: Names, state: Cluster) -> list[K8sObject]:
    """Egress to the cluster DNS pods on the ports its Service's port 53 lands on (53 on kind, EKS, GKE,
    AKS; 5353 on OpenShift): a policy applies after the Service's DNAT."""
    dns = next(s for s in state.services if s.key == ns(DNS_SERVICE_ROLE))
    endpoints = [p for p in state.pods if dns.selects(p) and p.ip]
    ports = []
    for sp in dns.ports:
        for pod in endpoints if sp.port == 53 else []:
            named = pod.named_port(sp.target_port, sp.protocol) if isinstance(sp.target_port, str) else None
            port = named.port if named else sp.target_port
            if {"protocol": sp.protocol, "port": port} not in ports:
                ports.append({"protocol": sp.protocol, "port": port})
    peer = {
        "namespaceSelector": {"matchLabels": {NAME_LABEL: dns.namespace}},
        "podSelector": {"matchLabels": dict(dns.selector)},
    }
    spec = {
        "podSelector": {"matchLabels": {"app": "client"}},
        "policyTypes": ["Egress"],
        "egress": [{"to": [peer], "ports": ports}],
    }
    return [_policy(ns("cli"), "canary", spec)]


def _egress_deny(ns: Names, state: Cluster) -> list[K8sObject]:
    spec = {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]}
    return [_policy(ns("cli"), "canary", spec)]


def _port_canary(
    feature: str,
    does: str,
    ports: tuple[ContainerPort, ...],
    allowed: dict,
    probes: tuple[tuple[int, str], ...],
    **more: str,
) -> Canary:
    """A server listening on ``ports``, ingress allowed on the ``allowed`` port entry only, probed from a
    client of another namespace on each of ``probes``."""
    return Canary(
        feature,
        does,
        _SRV_CLI,
        (Server("srv/server", SERVER, ports),),
        _ONE_CLIENT,
        _ingress("srv", [{"ports": [allowed]}]),
        tuple(Check("cli/client", "srv/server", port, protocol) for port, protocol in probes),
        **more,
    )


_TWO_TEAMS = {"srv": {}, "team": _team("allowed"), "other": _team("other")}
_SRV_CLI: dict[str, dict] = {"srv": {}, "cli": {}}
_ONE_SERVER = (Server("srv/server", SERVER),)
_ONE_CLIENT = (Client("cli/client", {"app": "client"}),)
P = ContainerPort

CANARIES: tuple[Canary, ...] = (
    Canary(
        "default-deny-ingress",
        "a policy with no ingress rule isolates server; open (not selected) stays reachable",
        _SRV_CLI,
        (Server("srv/server", SERVER), Server("srv/open", {"app": "open"})),
        _ONE_CLIENT,
        _ingress("srv", []),
        (Check("cli/client", "srv/server", 8080), Check("cli/client", "srv/open", 8080)),
    ),
    Canary(
        "default-deny-egress",
        "a policy with no egress rule isolates client; free (not selected) still connects",
        _SRV_CLI,
        _ONE_SERVER,
        (Client("cli/client", {"app": "client"}), Client("cli/free", {"app": "free"})),
        _egress_deny,
        (Check("cli/client", "srv/server", 8080), Check("cli/free", "srv/server", 8080)),
    ),
    Canary(
        "pod-selector",
        "ingress from podSelector role=friend: the friend of the same namespace connects, a stranger"
        " and a friend of another namespace do not",
        _SRV_CLI,
        _ONE_SERVER,
        (Client("srv/friend", FRIEND), Client("srv/stranger", STRANGER), Client("cli/friend", FRIEND)),
        _ingress("srv", [{"from": [{"podSelector": {"matchLabels": FRIEND}}]}]),
        (
            Check("srv/friend", "srv/server", 8080),
            Check("srv/stranger", "srv/server", 8080),
            Check("cli/friend", "srv/server", 8080),
        ),
    ),
    Canary(
        "namespace-selector",
        "ingress from namespaceSelector team=allowed: a client of that namespace connects, one of a"
        " team=other namespace does not",
        _TWO_TEAMS,
        _ONE_SERVER,
        (Client("team/client", {}), Client("other/client", {})),
        _ingress("srv", [{"from": [{"namespaceSelector": {"matchLabels": _team("allowed")}}]}]),
        (Check("team/client", "srv/server", 8080), Check("other/client", "srv/server", 8080)),
    ),
    Canary(
        "pod-and-namespace-selector",
        "one peer with namespaceSelector team=allowed AND podSelector role=friend: only the friend of the"
        " allowed namespace connects",
        _TWO_TEAMS,
        _ONE_SERVER,
        (Client("team/friend", FRIEND), Client("team/stranger", STRANGER), Client("other/friend", FRIEND)),
        _ingress(
            "srv",
            [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": _team("allowed")},
                            "podSelector": {"matchLabels": FRIEND},
                        }
                    ]
                }
            ],
        ),
        (
            Check("team/friend", "srv/server", 8080),
            Check("team/stranger", "srv/server", 8080),
            Check("other/friend", "srv/server", 8080),
        ),
    ),
    Canary(
        "multiple-peers",
        "two peers (OR), namespaceSelector team=allowed and podSelector role=friend: any pod of the"
        " allowed namespace and the friend of the server's namespace connect; a stranger of the server's"
        " namespace and a friend elsewhere do not",
        _TWO_TEAMS,
        _ONE_SERVER,
        (
            Client("team/stranger", STRANGER),
            Client("srv/friend", FRIEND),
            Client("srv/stranger", STRANGER),
            Client("other/friend", FRIEND),
        ),
        _ingress(
            "srv",
            [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": _team("allowed")}},
                        {"podSelector": {"matchLabels": FRIEND}},
                    ]
                }
            ],
        ),
        (
            Check("team/stranger", "srv/server", 8080),
            Check("srv/friend", "srv/server", 8080),
            Check("srv/stranger", "srv/server", 8080),
            Check("other/friend", "srv/server", 8080),
        ),
    ),
    Canary(
        "match-expressions",
        "podSelector app In [server] and namespaceSelector team In [allowed] (matchExpressions): the"
        " allowed namespace reaches server, the other does not, and open (not selected) stays reachable",
        _TWO_TEAMS,
        (Server("srv/server", SERVER), Server("srv/open", {"app": "open"})),
        (Client("team/client", {}), Client("other/client", {})),
        _ingress(
            "srv",
            [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchExpressions": [{"key": TEAM, "operator": "In", "values": ["allowed"]}]
                            }
                        }
                    ]
                }
            ],
            selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["server"]}]},
        ),
        (
            Check("team/client", "srv/server", 8080),
            Check("other/client", "srv/server", 8080),
            Check("other/client", "srv/open", 8080),
        ),
    ),
    _port_canary(
        "numbered-port",
        "ingress allowed on port 8080 only: 8080 connects, 8081 does not",
        (P(8080), P(8081)),
        {"protocol": "TCP", "port": 8080},
        ((8080, "TCP"), (8081, "TCP")),
    ),
    _port_canary(
        "named-port",
        "ingress allowed on port name http (8080): 8080 connects, 8081 (named metrics) does not",
        (P(8080, "TCP", "http"), P(8081, "TCP", "metrics")),
        {"protocol": "TCP", "port": "http"},
        ((8080, "TCP"), (8081, "TCP")),
    ),
    _port_canary(
        "end-port",
        "ingress allowed on 8000-8080 (endPort): 8000 and 8080 connect, 8081 does not",
        (P(8000), P(8080), P(8081)),
        {"protocol": "TCP", "port": 8000, "endPort": 8080},
        ((8000, "TCP"), (8080, "TCP"), (8081, "TCP")),
    ),
    _port_canary(
        "udp",
        "ingress allowed on UDP 8081 only: UDP 8081 answers, UDP 8082 and TCP 8080 do not",
        (P(8080), P(8081, "UDP"), P(8082, "UDP")),
        {"protocol": "UDP", "port": 8081},
        ((8081, "UDP"), (8082, "UDP"), (8080, "TCP")),
    ),
    _port_canary(
        "sctp",
        "ingress allowed on SCTP 8081 only: SCTP 8081 connects, SCTP 8082 and TCP 8080 do not",
        (P(8080), P(8081, "SCTP"), P(8082, "SCTP")),
        {"protocol": "SCTP", "port": 8081},
        ((8081, "SCTP"), (8082, "SCTP"), (8080, "TCP")),
        unavailable="SCTP is not available: the nodes need the sctp kernel module (modprobe sctp) and a CNI"
        " that carries SCTP",
        cannot_run="the SCTP server cannot listen: {error}; the nodes need the sctp kernel module",
        needs="the sctp kernel module on the nodes",
    ),
    Canary(
        "ip-block",
        "client's egress allowed to ipBlock 0.0.0.0/0 except server b's pod IP: a connects, b does not",
        _SRV_CLI,
        (Server("srv/a", SERVER), Server("srv/b", SERVER)),
        _ONE_CLIENT,
        _ip_block,
        (Check("cli/client", "srv/a", 8080), Check("cli/client", "srv/b", 8080)),
    ),
    Canary(
        "service-ip",
        "ingress from podSelector role=friend, probed through the Service's ClusterIP: the friend connects,"
        " the stranger does not",
        {"srv": {}},
        (Server("srv/server", SERVER, service=True),),
        (Client("srv/friend", FRIEND), Client("srv/stranger", STRANGER)),
        _ingress("srv", [{"from": [{"podSelector": {"matchLabels": FRIEND}}]}]),
        (
            Check("srv/friend", "srv/server", 8080, via="service"),
            Check("srv/stranger", "srv/server", 8080, via="service"),
        ),
    ),
    Canary(
        "egress-dns",
        "client's egress allowed only to the cluster DNS pods (the Service of its resolv.conf nameserver,"
        " e.g. kube-system/kube-dns) on the ports behind Service port 53: the DNS Service answers on TCP 53,"
        " a server of the run does not",
        _SRV_CLI,
        _ONE_SERVER,
        _ONE_CLIENT,
        _egress_dns,
        (
            Check("cli/client", DNS_SERVICE_ROLE, 53, via="service"),
            Check("cli/client", "srv/server", 8080),
        ),
        needs="a Service for the nameserver of the client's resolv.conf, with ready endpoints (a node-local"
        " DNS cache on a link-local address has none: not checked there)",
    ),
    Canary(
        "node-traffic",
        "a host-network client on another node than the servers: a server with a no-rule ingress policy"
        " blocks it, open (not selected) does not",
        {"srv": {}, "host": PRIVILEGED},
        (Server("srv/a", SERVER), Server("srv/b", SERVER), Server("srv/open", {"app": "open"})),
        (Client("host/client", {"app": "host-client"}, host_network=True),),
        _ingress("srv", []),
        (
            Check("host/client", "srv/a", 8080),
            Check("host/client", "srv/b", 8080),
            Check("host/client", "srv/open", 8080),
        ),
        needs="a host-network client pod (a privileged namespace: verify's are 'restricted', so verify never"
        " checks it) on another node than a server",
    ),
)
BY_FEATURE = {c.feature: c for c in CANARIES}
assert set(BY_FEATURE) == set(FEATURES), "one canary per feature"


def markdown_table() -> str:
    """The canaries as a Markdown table, for the README."""
    rows = ["| feature | a policy uses it with | the canary | needs |", "|---|---|---|---|"]
    for c in CANARIES:
        rows.append(f"| `{c.feature}` | {FEATURES[c.feature]} | {c.does} | {c.needs or 'pods only'} |")
    return "\n".join(rows)
