"""``gim-netpol cleanup [--kubeconfig F] [--context C] [--run-id ID] [--dry-run]``.

Deletes what a crashed run left behind, found by the run label (``conformance.gitguardian.com/run``):
the namespaces a run created (which deletes everything in them), the short-lived client pods it
put in other namespaces (``verify --probe-allowed-namespaces``), and the pods, Services and
NetworkPolicies a namespaced verify put in its probe namespaces. Objects without the label are never
touched. Uses the kubernetes Python client (v29+): ``CoreV1Api.list_namespace`` /
``list_pod_for_all_namespaces`` / ``list_service_for_all_namespaces`` and
``NetworkingV1Api.list_network_policy_for_all_namespaces`` with ``label_selector``, ``delete_namespace``,
``delete_namespaced_pod``, ``delete_namespaced_service``, ``delete_namespaced_network_policy`` (docs:
github.com/kubernetes-client/python, docs/CoreV1Api.md, docs/NetworkingV1Api.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from conformance.errors import UserError
from conformance.probes.agnhost import RUN_LABEL


@dataclass(frozen=True, order=True)
class Leftover:
    kind: str  # "Namespace", "Pod", "Service" or "NetworkPolicy"
    namespace: str | None
    name: str
    run_id: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name} (run {self.run_id})"


def selector(run_id: str | None) -> str:
    return f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL


def leftovers(namespaces: Iterable[dict], pods: Iterable[dict], run_id: str | None = None) -> list[Leftover]:
    """What to delete among listed objects (API dicts): labelled namespaces, and labelled pods (or, with
    their ``kind`` set, Services and NetworkPolicies) that live outside them (those inside go with
    their namespace)."""
    out: list[Leftover] = []
    doomed: set[str] = set()
    for ns in namespaces:
        meta = ns.get("metadata") or {}
        run = (meta.get("labels") or {}).get(RUN_LABEL)
        if run is not None and (run_id is None or run == run_id):
            doomed.add(meta["name"])
            out.append(Leftover("Namespace", None, meta["name"], run))
    for pod in pods:
        meta = pod.get("metadata") or {}
        run = (meta.get("labels") or {}).get(RUN_LABEL)
        if run is not None and (run_id is None or run == run_id) and meta.get("namespace") not in doomed:
            out.append(Leftover(pod.get("kind") or "Pod", meta.get("namespace"), meta["name"], run))
    return sorted(out)


def run(args: argparse.Namespace) -> int:
    from kubernetes import client

    from conformance.verify.live import api_client  # the kubernetes client loads slowly

    api = api_client(args.kubeconfig or os.environ.get("KUBECONFIG"), args.context)
    core = client.CoreV1Api(api)
    label = selector(args.run_id)
    serialize = api.sanitize_for_serialization
    networking = client.NetworkingV1Api(api)
    listed = [
        ("Pod", core.list_pod_for_all_namespaces),
        ("Service", core.list_service_for_all_namespaces),
        ("NetworkPolicy", networking.list_network_policy_for_all_namespaces),
    ]
    found = leftovers(
        [serialize(n) for n in core.list_namespace(label_selector=label).items],
        [{**serialize(o), "kind": kind} for kind, call in listed for o in call(label_selector=label).items],
        args.run_id,
    )
    if not found:
        print(f"nothing to clean up (no object labelled {label})")
        return 0
    for item in found:
        if args.dry_run:
            print(f"would delete {item}")
            continue
        try:
            if item.kind == "Namespace":
                core.delete_namespace(item.name, propagation_policy="Background")
            elif item.kind == "Service":
                core.delete_namespaced_service(item.name, item.namespace)
            elif item.kind == "NetworkPolicy":
                networking.delete_namespaced_network_policy(item.name, item.namespace)
            else:
                core.delete_namespaced_pod(item.name, item.namespace, grace_period_seconds=0)
        except client.ApiException as e:
            if e.status == 404:
                continue
            if e.status == 403:
                raise UserError(
                    f"forbidden to delete {item}: apply what `gim-netpol rbac` prints", source="cleanup"
                ) from None
            raise
        print(f"deleted {item}")
    if not args.dry_run:
        print(
            "namespaces are deleted in the background; `kubectl get ns -l " + label + "` shows what remains"
        )
    sys.stdout.flush()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cleanup",
        help="delete what a crashed run left (found by the run label)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default: $KUBECONFIG)")
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context")
    parser.add_argument("--run-id", metavar="ID", help="only this run's objects (default: every run's)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    parser.set_defaults(func=run)
