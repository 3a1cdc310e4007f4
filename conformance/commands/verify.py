"""``gim-netpol verify --gim-namespace NS (--snapshot FILE... | [--kubeconfig F] [--context C])``.

Infers the GIM values the cluster's policies implement, computes the expected verdict of every flow
into GIM, finds the namespaces that need GIM and would be blocked under enforce, and writes evidence.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from conformance.api_errors import status_message
from conformance.backends.base import BackendUnavailable, Forbidden
from conformance.errors import UserError
from conformance.suite.probe_namespaces import DEFAULT_PROBE_NAMESPACES, DNS_LABEL, ProbeNamespaces
from conformance.verify.analysis import Analysis, analyse
from conformance.verify.discovery import load_view
from conformance.verify.flowlogs import FORMATS, read_flow_logs
from conformance.verify.own import leave_out_own_namespaces
from conformance.verify.rbac import missing_rule
from conformance.verify.report_html import to_html
from conformance.verify.report_json import dumps
from conformance.verify.report_junit import to_junit
from conformance.verify.report_text import render_text

REPORT_FILES = ("verify-report.json", "verify-junit.xml", "verify-report.html")

EPILOG = """\
exit status:
  0  the cluster conforms: the policies implement the documented contract of the values they encode,
     no namespace that the API shows needing GIM (the evidence below) would be blocked under enforce,
     and (live) every probe observed the expected verdict and the CNI canary blocked
  1  it does not: the reasons are printed (and in the reports)
  2  usage, input, permission or API error (one line): nothing was judged

evidence of who needs GIM (each optional; live, a kind the cluster does not serve is a note):
  Ingress -> IngressClass controller pods     kubectl get ns,pods,svc,netpol,ingress,ingressclass -A -o yaml
  ServiceMonitor/PodMonitor -> Prometheus     kubectl get servicemonitors,podmonitors,prometheuses -A -o yaml
  Gateway API route -> Gateway -> data plane  kubectl get httproutes,grpcroutes,tlsroutes,tcproutes,
                                                gateways.gateway.networking.k8s.io,gatewayclasses -A -o yaml
  Istio VirtualService -> Gateway selector    kubectl get virtualservices,gateways.networking.istio.io
                                                -A -o yaml
  OpenShift Route -> openshift-ingress router kubectl get routes.route.openshift.io -A -o yaml
  Traefik IngressRoute -> Traefik pods        kubectl get ingressroutes.traefik.io -A -o yaml
  prometheus.io/scrape -> Prometheus server   (the pods and Services above)
  GMP PodMonitoring -> gmp-system collectors  kubectl get podmonitorings,clusterpodmonitorings -A -o yaml
  observed traffic (--flows)                  hubble observe --to-namespace NS -o jsonpb > flows.jsonpb;
                                                Calico flow logs (JSON lines); CSV src_namespace,src_pod,
                                                dst_namespace,dst_pod,dst_port,protocol
  Give each kubectl export its own file (kubectl stops at a type the server does not serve) and pass
  them all with --snapshot. A namespace seen only in flows is listed apart ("observed, no API evidence").
"""


def write_reports(analysis: Analysis, directory: str) -> list[Path]:
    """verify-report.json, verify-junit.xml and verify-report.html in ``directory`` (created)."""
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        outputs = (dumps(analysis), to_junit(analysis), to_html(analysis))
        paths = []
        for name, text in zip(REPORT_FILES, outputs, strict=True):
            path = folder / name
            path.write_text(text, encoding="utf-8")
            paths.append(path)
    except OSError as e:
        raise UserError(f"cannot write the reports: {e.strerror or e}", source="--report-dir") from None
    return paths


def judged(verify: Callable[[], Analysis]) -> Analysis:
    """``verify()``, with any error it did not foresee turned into one line and exit 2: exit 1 means
    "does not conform", which an unexpected error must never claim."""
    try:
        return verify()
    except (UserError, BackendUnavailable, KeyboardInterrupt):
        raise
    except Forbidden as exc:
        raise forbidden_error(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 (the one place every other failure is turned into a line)
        if getattr(exc, "status", None) == 403 and missing_rule(status_message(exc) or ""):
            raise forbidden_error(status_message(exc) or "") from None
        raise BackendUnavailable(
            f"verify stopped on an unexpected error, nothing was judged: {type(exc).__name__}: {exc}"
        ) from None


def forbidden_error(message: str) -> UserError:
    """An RBAC refusal as one line: the API server's message and the rule it shows missing."""
    rule = missing_rule(message)
    return UserError(
        f"{message}: {rule}" + ("; apply what `gim-netpol rbac` prints for this mode" if rule else ""),
        source="RBAC",
    )


def live_mode(args: argparse.Namespace) -> ProbeNamespaces | None:
    """The probe namespaces of a namespaced run, or None (cluster-wide, or read-only): bad combinations of
    --cluster-wide, --probe-namespaces and --no-probes are one line, before any cluster call."""
    if args.no_probes:
        for flag, given in (
            ("--cluster-wide", args.cluster_wide),
            ("--probe-namespaces", args.probe_namespaces),
            ("--probe-allowed-namespaces", args.probe_allowed_namespaces),
            ("--cni-features", args.cni_features == "all"),
        ):
            if given:
                raise UserError("probes, but --no-probes was given (read-only: nothing probed)", source=flag)
        return None
    if args.cluster_wide:
        if args.probe_namespaces:
            raise UserError(
                "names probe namespaces, but --cluster-wide creates its own", source="--probe-namespaces"
            )
        return None
    return ProbeNamespaces.parse(args.probe_namespaces)


def run(args: argparse.Namespace) -> int:
    namespace = args.gim_namespace
    if not DNS_LABEL.fullmatch(namespace):
        raise UserError(f"{namespace!r} is not a namespace name (DNS-1123 label)", source="--gim-namespace")
    if args.flows_format and not args.flows:
        raise UserError(
            "names the format of --flows files, but no --flows was given", source="--flows-format"
        )
    flow_logs = read_flow_logs(args.flows or (), args.flows_format)  # bad input: before any cluster call
    if args.snapshot:
        for flag in ("kubeconfig", "context"):
            if getattr(args, flag):
                raise UserError(f"--{flag} applies to a live cluster, not to --snapshot", source=f"--{flag}")
        if args.cni_features == "all":
            raise UserError(
                "CNI feature canaries need a live cluster, not a snapshot", source="--cni-features"
            )
        for flag in ("probe_allowed_namespaces", "cluster_wide", "no_probes", "probe_namespaces"):
            if getattr(args, flag):
                option = "--" + flag.replace("_", "-")
                raise UserError("applies to a live cluster, not to --snapshot", source=option)
        analysis = judged(
            lambda: analyse(leave_out_own_namespaces(load_view(args.snapshot)), namespace, flow_logs)
        )
    else:
        from conformance.verify.live import LiveOptions, verify_live  # the kubernetes client loads slowly

        probe_namespaces = live_mode(args)
        options = LiveOptions(
            kubeconfig=args.kubeconfig or os.environ.get("KUBECONFIG"),
            context=args.context,
            probe_allowed_namespaces=args.probe_allowed_namespaces,
            timeout_s=args.timeout,
            image=args.probe_image,
            deadline_s=args.deadline,
            cni_features=args.cni_features,
            probe_namespaces=probe_namespaces,
            probes=not args.no_probes,
        )
        analysis = judged(lambda: verify_live(namespace, options, flow_logs))
    if args.report_dir:
        for path in write_reports(analysis, args.report_dir):
            print(f"gim-netpol: wrote {path}", file=sys.stderr)
    sys.stdout.write(dumps(analysis) if args.output == "json" else render_text(analysis))
    return analysis.exit_status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="verify the NetworkPolicies of a running GIM (live, or from a snapshot)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--gim-namespace", required=True, metavar="NS", help="the namespace GIM runs in")
    parser.add_argument(
        "--snapshot",
        action="append",
        metavar="FILE",
        help="analyse this output of kubectl get -o yaml|json, not a live cluster ('-': stdin; repeatable)",
    )
    parser.add_argument(
        "--kubeconfig", metavar="FILE", help="kubeconfig of the live cluster (default: $KUBECONFIG)"
    )
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context of the live cluster")
    parser.add_argument(
        "--flows",
        action="append",
        metavar="FILE",
        help="observed traffic as evidence: `hubble observe -o jsonpb` output, Calico flow logs (JSON lines)"
        " or CSV src_namespace,src_pod,dst_namespace,dst_pod,dst_port,protocol (repeatable)",
    )
    parser.add_argument(
        "--flows-format",
        choices=FORMATS,
        help="the format of every --flows file (default: detected per file)",
    )
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table", help="output format")
    parser.add_argument("--report-dir", metavar="DIR", help="write JSON, JUnit XML and HTML reports there")
    parser.add_argument(
        "--probe-allowed-namespaces",
        action="store_true",
        help="live: also probe from one short-lived client pod in each allowed namespace (opt-in)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--probe-namespaces",
        metavar="SRV,CLI,TEAM,OTHER",
        help="live, namespaced (the default): the four probe namespaces created once, labelled as"
        " `gim-netpol rbac` prints them (default: " + ",".join(DEFAULT_PROBE_NAMESPACES) + ")",
    )
    mode.add_argument(
        "--cluster-wide",
        action="store_true",
        help="live: create and delete namespaces of the run's own (needs deploy/rbac-verify.yaml's rights)",
    )
    parser.add_argument(
        "--no-probes",
        action="store_true",
        help="live, read-only: list only, create nothing; inferred values, expected matrix, shadow diff",
    )
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="live: probe timeout")
    parser.add_argument(
        "--deadline",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="live: how long disagreeing probes are retried (and the canary's deny-all awaited)",
    )
    parser.add_argument(
        "--probe-image", default=None, metavar="IMAGE", help="live: agnhost image (for mirrors)"
    )
    parser.add_argument(
        "--cni-features",
        choices=("needed", "all", "none"),
        default="needed",
        help="live: CNI feature canaries for the NetworkPolicy features GIM's policies use (needed),"
        " all, or none",
    )
    parser.set_defaults(func=run)
