"""Synthetic, realistic cluster snapshots for the benchmarks.

Namespaces carry team/env/tier labels; each runs a few workloads (api, web, worker, db...) whose
replicas share their labels, plus the labels controllers add per pod set or per pod
(pod-template-hash, statefulset pod name) that no selector uses. Pods declare named ports (http 8080,
https 8443, metrics 9090, some dns 53/UDP). Policies mix what clusters hold: default-deny ingress,
same-namespace allows, namespaceSelector allows (ingress controller, monitoring on the metrics named
port), podSelector allows between workloads, matchExpressions, ipBlock with except, endPort ranges,
and egress lockdowns with DNS allowed.

The namespace ``gim`` holds exactly 30 pods and the policies GIM renders in enforce mode.

    python benchmarks/synth.py -o snap.json [--pods 5000 --namespaces 300 --policies 1000 --seed 0]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import zlib
from collections.abc import Callable
from typing import Any

from conformance.netpol.model import Cluster, ContainerPort, Namespace, Pod

K8sObject = dict[str, Any]
TEAMS = [f"team-{i}" for i in range(12)]
ENVS = ["prod", "staging", "dev"]
TIERS = ["frontend", "backend", "data"]
APPS = ["api", "web", "worker", "db", "cache", "queue", "auth", "search"]
GIM_NAMESPACE = "gim"
GIM_PODS = 30
POD_NETWORK = int(ipaddress.ip_address("10.244.0.0"))
PORTS = [
    {"name": "http", "containerPort": 8080, "protocol": "TCP"},
    {"name": "https", "containerPort": 8443, "protocol": "TCP"},
    {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
]
DNS_PORT = {"name": "dns", "containerPort": 53, "protocol": "UDP"}


def synthetic_objects(
    pods: int = 5000, namespaces: int = 300, policies: int = 1000, seed: int = 0
) -> list[K8sObject]:
    """Namespace, Pod and NetworkPolicy objects, as ``kubectl get ns,pods,netpol -A -o json`` lists them."""
    rnd = random.Random(seed)
    names = [GIM_NAMESPACE, "ingress-nginx", "monitoring", "kube-system"]
    names += [f"ns-{i:03d}" for i in range(namespaces - len(names))]
    objects: list[K8sObject] = [_namespace(n, rnd) for n in names]
    counts = _spread(pods - GIM_PODS, len(names) - 1, rnd)
    pod_objects: list[K8sObject] = []
    for ns, count in zip(names, [GIM_PODS, *counts], strict=True):
        pod_objects += _pods(ns, count, rnd, len(pod_objects))
    objects += pod_objects
    objects += _gim_policies()
    templates = _policy_templates()
    other = names[1:]
    for i in range(policies - 3):
        ns = other[i % len(other)]
        objects.append(_policy(f"np-{i:04d}", ns, templates[rnd.randrange(len(templates))](ns, rnd)))
    return objects


def synthetic_cluster(pods: int = 1000, namespaces: int = 60, policies: int = 200, seed: int = 0) -> Cluster:
    """The same, as a Cluster (for benchmarks of the engine alone)."""
    cluster = Cluster()
    for obj in synthetic_objects(pods, namespaces, policies, seed):
        kind, meta = obj["kind"], obj["metadata"]
        if kind == "Namespace":
            cluster.add_namespace(Namespace(meta["name"], meta["labels"]))
        elif kind == "Pod":
            ports = tuple(
                ContainerPort(p["containerPort"], p["protocol"], p["name"])
                for c in obj["spec"]["containers"]
                for p in c.get("ports", ())
            )
            cluster.pods.append(
                Pod(meta["namespace"], meta["name"], meta["labels"], obj["status"]["podIP"], ports)
            )
        else:
            cluster.policies.append(obj)
    return cluster


def _spread(total: int, buckets: int, rnd: random.Random) -> list[int]:
    """``total`` split into ``buckets`` uneven but non-empty parts."""
    weights = [rnd.uniform(0.3, 1.7) for _ in range(buckets)]
    scale = (total - buckets) / sum(weights)
    counts = [1 + int(w * scale) for w in weights]
    for i in range(total - sum(counts)):
        counts[i % buckets] += 1
    return counts


def _namespace(name: str, rnd: random.Random) -> K8sObject:
    labels = {
        "kubernetes.io/metadata.name": name,
        "team": rnd.choice(TEAMS),
        "env": rnd.choice(ENVS),
        "tier": rnd.choice(TIERS),
    }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _pods(namespace: str, count: int, rnd: random.Random, first_index: int) -> list[K8sObject]:
    apps = rnd.sample(APPS, k=min(len(APPS), max(1, count // 5)))
    out = []
    for i in range(count):
        app = apps[i % len(apps)]
        version = "v2" if rnd.random() < 0.3 else "v1"
        labels = {
            "app": app,
            "app.kubernetes.io/name": app,
            "version": version,
            "tier": rnd.choice(TIERS),
            "pod-template-hash": f"{zlib.crc32(f'{namespace}/{app}/{version}'.encode()):010d}",
        }
        if app == "db":
            labels["statefulset.kubernetes.io/pod-name"] = f"{app}-{i}"
        ports = [dict(p) for p in PORTS]
        if app in ("api", "auth"):
            ports.append(dict(DNS_PORT))
        ip = str(ipaddress.ip_address(POD_NETWORK + first_index + i + 1))
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{app}-{i:04d}", "namespace": namespace, "labels": labels},
                "spec": {"containers": [{"name": app, "image": f"example/{app}:1", "ports": ports}]},
                "status": {"phase": "Running", "podIP": ip},
            }
        )
    return out


def _policy(name: str, namespace: str, spec: dict[str, Any]) -> K8sObject:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _gim_policies() -> list[K8sObject]:
    allowed = ["ingress-nginx", "monitoring"]
    return [
        _policy("gim-netpol-default-deny", GIM_NAMESPACE, {"podSelector": {}, "policyTypes": ["Ingress"]}),
        _policy(
            "gim-netpol-allow-same-namespace",
            GIM_NAMESPACE,
            {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}]},
        ),
        _policy(
            "gim-netpol-allow-namespaces",
            GIM_NAMESPACE,
            {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                            for ns in allowed
                        ]
                    }
                ],
            },
        ),
    ]


Template = Callable[[str, random.Random], dict[str, Any]]


def _policy_templates() -> list[Template]:
    def default_deny(ns: str, rnd: random.Random) -> dict[str, Any]:
        return {"podSelector": {}, "policyTypes": ["Ingress"]}

    def same_namespace(ns: str, rnd: random.Random) -> dict[str, Any]:
        return {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}

    def from_ingress_controller(ns: str, rnd: random.Random) -> dict[str, Any]:
        peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
        return {
            "podSelector": {"matchLabels": {"app": rnd.choice(["web", "api"])}},
            "ingress": [{"from": [peer], "ports": [{"port": "http"}, {"port": 8443}]}],
        }

    def monitoring_metrics(ns: str, rnd: random.Random) -> dict[str, Any]:
        peer = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
        }
        return {"podSelector": {}, "ingress": [{"from": [peer], "ports": [{"port": "metrics"}]}]}

    def app_to_app(ns: str, rnd: random.Random) -> dict[str, Any]:
        dst, src = rnd.sample(APPS, 2)
        return {
            "podSelector": {"matchLabels": {"app": dst}},
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": src}}}], "ports": [{"port": 8080}]}
            ],
        }

    def team_expressions(ns: str, rnd: random.Random) -> dict[str, Any]:
        peer = {
            "namespaceSelector": {
                "matchLabels": {"team": rnd.choice(TEAMS)},
                "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}],
            },
            "podSelector": {
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend", "backend"]}]
            },
        }
        return {
            "podSelector": {
                "matchExpressions": [{"key": "version", "operator": "In", "values": ["v1", "v2"]}]
            },
            "ingress": [{"from": [peer]}],
        }

    def port_range(ns: str, rnd: random.Random) -> dict[str, Any]:
        return {
            "podSelector": {"matchLabels": {"tier": rnd.choice(TIERS)}},
            "ingress": [{"ports": [{"port": 8000, "endPort": 8999}, {"protocol": "UDP"}]}],
        }

    def ip_block_ingress(ns: str, rnd: random.Random) -> dict[str, Any]:
        block = {"cidr": "10.244.0.0/16", "except": [f"10.244.{rnd.randrange(0, 20)}.0/24"]}
        return {
            "podSelector": {"matchLabels": {"app": rnd.choice(APPS)}},
            "ingress": [{"from": [{"ipBlock": block}, {"ipBlock": {"cidr": "192.168.0.0/16"}}]}],
        }

    def egress_lockdown(ns: str, rnd: random.Random) -> dict[str, Any]:
        dns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
        return {
            "podSelector": {"matchLabels": {"app": rnd.choice(APPS)}},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [dns], "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}]},
                {"to": [{"podSelector": {}}]},
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "169.254.169.254/32"]}}]},
            ],
        }

    def egress_to_team(ns: str, rnd: random.Random) -> dict[str, Any]:
        peer = {
            "namespaceSelector": {
                "matchExpressions": [{"key": "team", "operator": "In", "values": rnd.sample(TEAMS, 3)}]
            }
        }
        return {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [peer], "ports": [{"port": "https"}]}],
        }

    return [
        default_deny,
        default_deny,
        same_namespace,
        same_namespace,
        from_ingress_controller,
        monitoring_metrics,
        app_to_app,
        team_expressions,
        port_range,
        ip_block_ingress,
        egress_lockdown,
        egress_to_team,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", required=True, help="the JSON snapshot to write")
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--namespaces", type=int, default=300)
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    objects = synthetic_objects(args.pods, args.namespaces, args.policies, args.seed)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": objects}, f)
    print(f"wrote {args.output}: {len(objects)} objects")


if __name__ == "__main__":
    main()
