"""``gim-netpol plan [--values FILE]... [--set K=V]... [--manifests FILE] [--matrix] [--cni-features]``.

Prints every object one conformance run creates (namespaces, pods, services, policies) as a YAML
stream, without touching a cluster; ``--matrix`` prints the expected truth tables instead;
``--cni-features`` prints the CNI feature canaries instead (all, or those the policies need).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from conformance.commands.render import add_values_arguments, write_stream
from conformance.gim.examples import DOC_ALLOWED_NAMESPACES
from conformance.gim.values import NetpolValues, load_values
from conformance.gim.workloads import GIM_CLIENT, REFERENCE_WORKLOADS
from conformance.probes.agnhost import AGNHOST_IMAGE
from conformance.suite.topology import Topology

PLAN_RUN_ID = "plan"


def build(args: argparse.Namespace):
    """The scenario a run would deploy for these arguments, on an in-memory backend."""
    from conformance.backends.model import ModelBackend
    from conformance.suite.scenario import Scenario

    if args.manifests and not args.values:
        from conformance.errors import UserError

        raise UserError(
            "needs --values too: the values the chart was rendered with are the contract",
            source="--manifests",
        )
    if args.values or args.sets:
        values = load_values(args.values, args.sets)
    else:
        values = NetpolValues(enabled=True, mode="enforce", allowed_namespaces=DOC_ALLOWED_NAMESPACES)
    policies, workloads, gim_client = None, REFERENCE_WORKLOADS, GIM_CLIENT
    if args.manifests:
        from conformance.gim.chart import load_manifests

        chart = load_manifests(args.manifests, args.gim_namespace)
        policies, workloads = chart.policies, (chart.workloads or REFERENCE_WORKLOADS)
        gim_client = chart.client_workload or GIM_CLIENT
    topology = Topology(
        PLAN_RUN_ID,
        args.gim_namespace,
        values.allowed_namespaces,
        ("not-allowed",),
        tuple(workloads),
        args.probe_image,
        gim_client=gim_client,
    )
    scenario = Scenario.standalone(ModelBackend(), topology, values, manifests_policies=policies)
    return scenario


def run(args: argparse.Namespace) -> int:
    from conformance.suite.verdicts import expected_tables

    scenario = build(args)
    if args.cni_features:
        return _cni_features(args, scenario)
    if args.matrix:
        scenario.setup()
        scenario.deploy()
        mode = scenario.values.mode if scenario.values.enabled else "disabled"
        sys.stdout.write(expected_tables(scenario.flows(), f"expected under {mode}") + "\n")
        return 0
    write_stream(scenario.topology.objects() + scenario.policies_for(scenario.values), sys.stdout)
    return 0


def _cni_features(args: argparse.Namespace, scenario) -> int:
    """The canaries' objects (or, with --matrix, their expected truth tables), on an in-memory model."""
    from conformance.backends.model import ModelBackend
    from conformance.commands.render import YAML_DUMPER
    from conformance.suite import cni_features as cf
    from conformance.suite.verdicts import expected_tables

    needed = cf.needed_features(scenario.policies_for(scenario.values))
    canaries = cf.chosen(args.cni_features, needed)
    layout = cf.Layout(PLAN_RUN_ID)
    backend = ModelBackend()
    objects = cf.plan_objects(layout, canaries, args.probe_image, backend)
    state = backend.state(layout.state_namespaces(canaries))
    out = sys.stdout
    out.write(f"# {len(canaries)} CNI feature canaries ({args.cni_features}); pod IPs are examples\n")
    for canary in canaries:
        namespaces = set(layout.namespaces(canary))
        mine = [o for o in objects if (o["metadata"].get("namespace") or o["metadata"]["name"]) in namespaces]
        used = "; ".join(u.describe() for u in needed.get(canary.feature, [])[:3])
        out.write(f"# canary {canary.feature}: {canary.does}\n" + (f"# needed: {used}\n" if used else ""))
        if args.matrix:
            flows = cf.canary_flows(layout, canary, state, layout.policies(canary, state))
            out.write(expected_tables(flows, f"canary {canary.feature}, expected") + "\n")
        else:
            out.write(yaml.dump_all(mine, Dumper=YAML_DUMPER, sort_keys=False, explicit_start=True))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="print what a conformance run would create, or its expected truth tables",
        description="Print, as a YAML stream, every object one conformance run creates (namespaces, "
        "probe pods, Services, NetworkPolicies), without touching a cluster. Without --values: the "
        "documentation's enforce example (allowedNamespaces ingress-nginx, monitoring).",
    )
    add_values_arguments(parser)
    parser.add_argument("--manifests", metavar="FILE", help="helm template output of the real chart")
    parser.add_argument("--gim-namespace", default="gitguardian", metavar="NS", help="the GIM namespace")
    parser.add_argument("--probe-image", default=AGNHOST_IMAGE, metavar="IMAGE", help="agnhost image")
    parser.add_argument("--matrix", action="store_true", help="print the expected truth tables instead")
    parser.add_argument(
        "--cni-features",
        nargs="?",
        const="all",
        choices=("needed", "all"),
        help="print the CNI feature canaries instead: all (the default), or those the policies need",
    )
    parser.set_defaults(func=run)
