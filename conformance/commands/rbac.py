"""``gim-netpol rbac [--mode namespaced|cluster-wide|read-only] [--values F]... [--set K=V]...
[--probe-namespaces A,B,C,D] [--probe-allowed-namespaces] [--cni-features all|needed|none]
[--service-account NS/NAME | --user NAME]``.

Prints the RBAC ``gim-netpol verify`` needs in a mode, for ``kubectl apply -f -`` by someone with cluster
rights: a ClusterRole (and binding) for what verify reads across the cluster, and a Role and RoleBinding
in each namespace it writes in. Namespaced, the probe namespaces come first, labelled as the canaries
need, and the rules are what the run creates there (``conformance.verify.placement.planned_objects``)
for every CNI canary it may run (``--cni-features all``, the default): verify picks its canaries from
the policies GIM has in the cluster, which the values given here (the reference rendering) need not
match, and in the tool's own probe namespaces a rule no canary of this cluster uses grants nothing
elsewhere. ``--cni-features needed`` prints only the canaries of the values' reference rendering (verify
then stops, before creating anything, when the cluster's policies need more).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from conformance.commands.render import add_values_arguments
from conformance.errors import UserError
from conformance.suite.probe_namespaces import (
    DEFAULT_PROBE_NAMESPACES,
    DNS_LABEL,
    ROLE_PURPOSE,
    ProbeNamespaces,
)
from conformance.verify.rbac import MODES

EXAMPLE_RUN_ID = "0123abcd"  # object names carry a run id; the rules do not depend on it
DEFAULT_SERVICE_ACCOUNT = "gim-netpol/gim-netpol-verify"
GRANTS = {
    "namespaced": [
        "Grants: list, cluster-wide, on the kinds verify reads and on DaemonSets (to name the CNI);",
        "in each probe namespace, create/delete of the probe pods, Services and NetworkPolicies the run",
        "creates there and exec in its client pods (--cni-features all: for every CNI canary verify may",
        "run, whichever GIM's policies in the cluster need); with --probe-allowed-namespaces,",
        "create/delete of one client pod and exec in each allowed namespace. No namespace is created or",
        "deleted; GIM's namespace is only listed. The probe namespaces below are created once, with",
        "these labels:",
        *(f"  {role}: {purpose}" for role, purpose in ROLE_PURPOSE.items()),
    ],
    "cluster-wide": [
        "Grants: list, cluster-wide, on the kinds verify reads and on DaemonSets; create and delete of",
        "namespaces (verify only ever deletes those carrying its run label: RBAC cannot restrict",
        "create/delete to labelled namespaces), create of pods, Services, NetworkPolicies and pods/exec in",
        "any namespace, delete of pods. Nothing is written in the GIM namespace, but this identity could.",
    ],
    "read-only": [
        "Grants: list, cluster-wide, on the kinds verify reads; nothing else (`verify --no-probes`).",
    ],
}


def service_account(text: str) -> tuple[str, str]:
    namespace, slash, name = text.partition("/")
    if (
        not slash
        or not DNS_LABEL.fullmatch(namespace)
        or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name)
    ):
        raise UserError(f"{text!r} is not NAMESPACE/NAME of a ServiceAccount", source="--service-account")
    return namespace, name


def command_line(args: argparse.Namespace) -> str:
    """The command that printed this, for the header (so it can be run again)."""
    parts = ["gim-netpol rbac", f"--mode {args.mode}"]
    parts += [f"--values {v}" for v in args.values] + [f"--set {s}" for s in args.sets]
    if args.mode == "namespaced":
        parts.append(f"--probe-namespaces {args.probe_namespaces}")
        parts += ["--probe-allowed-namespaces"] if args.probe_allowed_namespaces else []
        parts.append(f"--cni-features {args.cni_features}")
    return " ".join(parts)


def render_rbac(args: argparse.Namespace) -> str:
    """The YAML stream for these arguments (no cluster touched)."""
    from conformance.verify.rbac import required_permissions
    from conformance.verify.rbac_manifest import manifest, subject

    if args.user:
        who = subject(user=args.user)
    else:
        namespace, name = service_account(args.service_account)
        who = subject(service_account=f"{namespace}/{name}")
    if args.mode != "namespaced":
        for flag, given in (
            ("--probe-namespaces", args.probe_namespaces != ",".join(DEFAULT_PROBE_NAMESPACES)),
            ("--probe-allowed-namespaces", args.probe_allowed_namespaces),
        ):
            if given:
                raise UserError(f"applies to --mode namespaced, not {args.mode}", source=flag)
    probe = ProbeNamespaces.parse(args.probe_namespaces)
    objects: list = []
    namespaces: list = []
    if args.mode == "namespaced":
        objects = planned(args, probe)
        namespaces = probe.objects()
    header = [
        f"RBAC for `gim-netpol verify` in mode {args.mode}, printed by:",
        f"  {command_line(args)}",
        "",
        *GRANTS[args.mode],
        "",
        "Apply (cluster rights needed): <the command above> | kubectl apply -f -",
    ]
    return manifest(required_permissions(args.mode, objects=objects), who, header, namespaces)


def planned(args: argparse.Namespace, probe: ProbeNamespaces) -> list:
    """What a namespaced run creates: the CNI canaries ``--cni-features`` names (all of them by default;
    needed: those of the values' reference rendering, the documented example without values), and the
    clients in the values' allowed namespaces with ``--probe-allowed-namespaces``."""
    from conformance.backends.model import ModelBackend
    from conformance.gim.examples import DOC_ALLOWED_NAMESPACES
    from conformance.gim.render import render
    from conformance.gim.values import NetpolValues, load_values
    from conformance.suite.cni_features import chosen, needed_features
    from conformance.verify.placement import Placement, planned_objects

    if args.values or args.sets:
        values = load_values(args.values, args.sets)
    else:
        values = NetpolValues(enabled=True, mode="enforce", allowed_namespaces=DOC_ALLOWED_NAMESPACES)
    canaries = chosen(args.cni_features, needed_features(render(values, args.gim_namespace)))
    allowed = list(values.allowed_namespaces) if args.probe_allowed_namespaces else []
    return planned_objects(Placement(EXAMPLE_RUN_ID, probe=probe), canaries, allowed, ModelBackend())


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(render_rbac(args))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rbac",
        help="print the RBAC gim-netpol verify needs (for kubectl apply -f -)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="namespaced",
        help="namespaced (verify's default: writes only in the probe namespaces), cluster-wide"
        " (verify --cluster-wide), read-only (verify --no-probes)",
    )
    add_values_arguments(parser)
    parser.add_argument("--gim-namespace", default="gitguardian", metavar="NS", help="the GIM namespace")
    parser.add_argument(
        "--probe-namespaces",
        default=",".join(DEFAULT_PROBE_NAMESPACES),
        metavar="SRV,CLI,TEAM,OTHER",
        help="namespaced: the four probe namespaces (printed as Namespaces with their labels)",
    )
    parser.add_argument(
        "--probe-allowed-namespaces",
        action="store_true",
        help="namespaced: also a Role in each allowed namespace, for verify --probe-allowed-namespaces",
    )
    parser.add_argument(
        "--cni-features",
        choices=("all", "needed", "none"),
        default="all",
        help="namespaced: the CNI canaries the probe namespaces' Roles cover: all (default: whichever"
        " GIM's policies in the cluster need; nothing is granted outside the probe namespaces), needed"
        " (only those of the values' reference rendering), none (verify --cni-features none)",
    )
    who = parser.add_mutually_exclusive_group()
    who.add_argument(
        "--service-account",
        default=DEFAULT_SERVICE_ACCOUNT,
        metavar="NS/NAME",
        help=f"the ServiceAccount verify runs as (default {DEFAULT_SERVICE_ACCOUNT})",
    )
    who.add_argument("--user", metavar="NAME", help="bind a User instead of a ServiceAccount")
    parser.set_defaults(func=run)
