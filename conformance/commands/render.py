"""``gim-netpol render --values FILE [--values FILE]... [--set K=V]... --namespace NS``.

Prints the NetworkPolicies the reference renderer makes of the values, as a YAML stream that
``kubectl apply -f -`` takes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import IO, Any

import yaml

from conformance.netpol.model import K8sObject

YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
DISABLED_COMMENT = "# networkPolicy.enabled is false: no NetworkPolicy is rendered\n"


def write_stream(documents: Sequence[K8sObject], out: IO[str]) -> None:
    """The documents as a YAML stream, ``---`` between them; a comment alone when there are none."""
    if not documents:
        out.write(DISABLED_COMMENT)
        return
    out.write(yaml.dump_all(documents, Dumper=YAML_DUMPER, sort_keys=False, default_flow_style=False))


def run(args: argparse.Namespace) -> int:
    from conformance.gim.render import render
    from conformance.gim.values import load_values

    values = load_values(args.values, args.sets)
    write_stream(render(values, args.namespace), sys.stdout)
    return 0


def add_values_arguments(parser: argparse.ArgumentParser) -> None:
    """``--values FILE`` (repeatable) and ``--set K=V`` (repeatable), as helm takes them."""
    parser.add_argument(
        "--values",
        "-f",
        action="append",
        default=[],
        metavar="FILE",
        help="a Helm values file (repeatable; later files override earlier ones)",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="K=V",
        help="a Helm-style override, e.g. networkPolicy.mode=enforce or"
        " networkPolicy.allowedNamespaces={ingress-nginx,monitoring} (repeatable)",
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render",
        help="print the NetworkPolicies that GIM's networkPolicy values render",
        description=(
            "Render the networkPolicy.* Helm values of GitGuardian self-hosted into NetworkPolicies for the"
            " GIM namespace, as a YAML stream. Values files merge as `helm -f a.yaml -f b.yaml` does;"
            " --set takes Helm's syntax."
        ),
    )
    add_values_arguments(parser)
    parser.add_argument(
        "--namespace", "-n", required=True, metavar="NS", help="the GIM namespace the policies go in"
    )
    parser.set_defaults(func=run)
