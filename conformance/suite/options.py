"""The suite's options: each one a pytest option and an environment variable (the option wins)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.backends.enforcers import ENFORCERS
from conformance.backends.local_images import CHOICES as IMAGE_CHOICES
from conformance.errors import UserError

ENV_PREFIX = "GIM_NETPOL_"
BACKENDS = ("kind", "existing", "model")


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    default: Any = None
    kind: str = "str"  # str | float | int | flag | list
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return "netpol_" + self.flag.lstrip("-").replace("-", "_")

    @property
    def metavar(self) -> str:
        return self.flag.lstrip("-").replace("-", "_").upper()

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.flag.lstrip("-").replace("-", "_").upper()


def _defaults() -> dict[str, Any]:
    # Imported lazily: the live modules pull in the kubernetes client.
    from conformance.backends.kind import CALICO_VERSION
    from conformance.probes.agnhost import AGNHOST_IMAGE

    return {"calico": CALICO_VERSION, "image": AGNHOST_IMAGE}


def options() -> tuple[Option, ...]:
    d = _defaults()
    return (
        Option(
            "--backend",
            "where to run: kind (create a kind+Calico cluster), existing (a kubeconfig), "
            "model (the simulator, no cluster)",
            "kind",
            choices=BACKENDS,
        ),
        Option(
            "--kubeconfig", "kubeconfig file for --backend existing (default: $KUBECONFIG or ~/.kube/config)"
        ),
        Option("--context", "kubeconfig context for --backend existing (default: the current context)"),
        Option("--cluster-name", "kind cluster name", "gim-netpol"),
        Option(
            "--reuse-cluster",
            "use the kind cluster of that name if it exists (it is then left in place); "
            "if it does not, one is created and deleted at the end unless --keep-cluster",
            False,
            "flag",
        ),
        Option("--keep-cluster", "do not delete the kind cluster the run created", False, "flag"),
        Option("--calico-version", "Calico release installed on kind", d["calico"]),
        Option(
            "--calico-manifests",
            "folder holding operator-crds.yaml (Calico >= v3.30), tigera-operator.yaml and "
            "custom-resources.yaml (air-gapped)",
        ),
        Option(
            "--cni",
            "NetworkPolicy enforcer the kind backend installs: calico (the default), kube-router "
            "(v2.1.0: CNI and enforcer) or kube-network-policies (v0.8.0, beside a plain ptp CNI)",
            "calico",
            choices=ENFORCERS,
        ),
        Option(
            "--images",
            "kind node and probe images: upstream (pulled), local (built by images/build.py), or auto: local "
            "when the upstream node image is not in docker and a local build is",
            "auto",
            choices=IMAGE_CHOICES,
        ),
        Option(
            "--node-memory",
            "memory limit of each kind node the run creates (docker update --memory): a runaway pod stops "
            "there, not at the machine's",
            "3g",
        ),
        Option(
            "--no-download",
            "fetch nothing (air-gapped): kind and kubectl must be on PATH (a missing or unfit one is an "
            "error naming what was found and what is needed), and --calico-manifests is required",
            False,
            "flag",
        ),
        Option("--probe-image", "agnhost image of the probe pods (for mirrors)", d["image"]),
        Option("--probe-timeout", "seconds before a connect counts as blocked", 2.0, "float"),
        Option(
            "--converge-timeout",
            "seconds to wait for observed verdicts to match the expected ones",
            30.0,
            "float",
        ),
        Option("--ready-timeout", "seconds to wait for probe pods to be Ready", 180.0, "float"),
        Option("--probe-workers", "execs run at once (one per client pod with --probe-batch on)", 16, "int"),
        Option(
            "--probe-batch",
            "on: one exec per client pod per round, its connects run at once inside it (needs /bin/sh in "
            "the probe image; a pod without one falls back by itself); off: one exec per probe",
            "on",
            choices=("on", "off"),
        ),
        Option(
            "--api-retry-timeout",
            "seconds to retry transient API errors (refused, reset, 429, 5xx) before an infrastructure error",
            60.0,
            "float",
        ),
        Option(
            "--model-cni",
            "CNI quirks of the model backend, comma-separated: drops (Calico), rejects (kube-router), "
            "ignores-named-ports, ignores-endport, node-unfiltered, weave-npc (the three weave-npc quirks)",
            "drops",
        ),
        Option(
            "--model-faults",
            "faults of the model backend, comma-separated: api-down@START+SECONDS, not-served=KIND, no-dns, "
            "openshift-dns, no-sctp (SCTP servers crash-loop), no-image=IMAGE (the image cannot be pulled), "
            "enforcer-crash (Calico's pods never get Ready: the backend cannot start), "
            "cordoned=NODE@START+SECONDS (a node cordoned for a while: pods created then avoid it)",
            "",
        ),
        Option(
            "--model-nodes",
            "nodes of the model backend's kind cluster: a control plane tainted NoSchedule and N-1 workers "
            "(kind-worker, kind-worker2...); 1: a single untainted node, as kind makes it",
            3,
            "int",
        ),
        Option(
            "--model-latencies",
            "latencies of the model backend on its virtual clock: realistic (namespace Terminating 10-20 s, "
            "pod Ready 2-5 s, policy enforced 1-2 s after its change) or instant",
            "realistic",
            choices=("realistic", "instant"),
        ),
        Option(
            "--model-pace",
            "real seconds the model backend spends per simulated second; auto: 0.01 under xdist (so that "
            "xdist splits the tests between workers as on a live cluster), 0 otherwise",
            "auto",
        ),
        Option("--values", "GIM values file to test (repeatable; later files win, as helm -f)", [], "list"),
        Option("--set", "value override in helm --set syntax (repeatable)", [], "list"),
        Option(
            "--manifests", "helm template output of the real chart: its policies and workloads are deployed"
        ),
        Option("--chart", "chart path: run helm template with --values and test its output"),
        Option("--gim-namespace", "GIM namespace when the values name real namespaces", "gitguardian"),
        Option(
            "--keep-namespaces",
            "leave each test's namespaces and policies in the cluster (debugging; implies --fleet test)",
            False,
            "flag",
        ),
        Option(
            "--fleet",
            "session: probe namespaces and pods created once and reused by every test (fast); "
            "test: fresh ones for every test (slow, for comparison)",
            "session",
            choices=("session", "test"),
        ),
        Option("--report-dir", "write a JSON report of every check here"),
        Option(
            "--cni-features",
            "CNI feature canaries run before the tests: needed (the NetworkPolicy features the policies "
            "under test use), all, or none; a needed feature the CNI does not enforce fails the run",
            "needed",
            choices=("needed", "all", "none"),
        ),
        Option(
            "--verify-namespace",
            "verify the cluster GIM already runs in, in this namespace "
            "(conformance/test_verify_cluster.py; live with --backend existing)",
        ),
        Option(
            "--verify-snapshot",
            "verify from this kubectl snapshot instead of a live cluster (repeatable)",
            [],
            "list",
        ),
        Option(
            "--verify-mode",
            "live verify's rights, as gim-netpol verify's: namespaced (probes only in the probe namespaces), "
            "cluster-wide (namespaces of the run's own), read-only (nothing created, nothing probed)",
            "namespaced",
            choices=("namespaced", "cluster-wide", "read-only"),
        ),
        Option(
            "--verify-probe-namespaces",
            "namespaced live verify: the four probe namespaces srv,cli,team,other (created once with the "
            "labels `gim-netpol rbac` prints; default gim-netpol-probe-srv,...)",
            "",
        ),
    )


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("gim-netpol", "GIM NetworkPolicy conformance (each option also from its env var)")
    for opt in options():
        help_text = f"{opt.help} [env {opt.env}]"
        if opt.kind == "flag":
            group.addoption(opt.flag, action="store_true", default=None, dest=opt.dest, help=help_text)
        elif opt.kind == "list":
            group.addoption(
                opt.flag, action="append", default=None, dest=opt.dest, metavar=opt.metavar, help=help_text
            )
        else:
            # choices are checked in _typed, so that a bad value gets the suite's one-line error
            group.addoption(opt.flag, default=None, dest=opt.dest, metavar=opt.metavar, help=help_text)


def _from_env(opt: Option, raw: str) -> Any:
    if opt.kind == "flag":
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        raise UserError(f"expected true or false, got {raw!r}", source=opt.env)
    if opt.kind == "list":
        return [v for v in raw.split(os.pathsep if opt.flag == "--values" else ";") if v]
    return raw


def _typed(opt: Option, value: Any, source: str) -> Any:
    try:
        if opt.kind == "float":
            value = float(value)
            if value <= 0:
                raise ValueError
        elif opt.kind == "int":
            value = int(value)
            if value <= 0:
                raise ValueError
    except (TypeError, ValueError):
        raise UserError(f"expected a positive number, got {value!r}", source=source) from None
    if opt.choices and value not in opt.choices:
        raise UserError(f"expected one of {', '.join(opt.choices)}, got {value!r}", source=source)
    if opt.flag == "--model-cni":
        from conformance.backends.cni_profiles import parse_profile

        parse_profile(value, source)
    elif opt.flag == "--model-faults":
        from conformance.backends.model_faults import parse_faults

        parse_faults(value, source)
    return value


def resolve(config: pytest.Config) -> dict[str, Any]:
    """Every option's value: command line, else environment, else default. Raises UserError."""
    values: dict[str, Any] = {}
    for opt in options():
        given = config.getoption(opt.dest)
        source = opt.flag
        if given is None and opt.env in os.environ:
            given, source = _from_env(opt, os.environ[opt.env]), opt.env
        if given is None:
            given = opt.default
        values[opt.flag.lstrip("-").replace("-", "_")] = _typed(opt, given, source)
    return values


def markdown_table() -> str:
    """The options as a Markdown table, for the README."""
    rows = ["| option | environment | default | meaning |", "|---|---|---|---|"]
    for opt in options():
        default = "" if opt.default in (None, [], False, "") else f"`{opt.default}`"
        rows.append(f"| `{opt.flag}` | `{opt.env}` | {default} | {opt.help} |")
    return "\n".join(rows)
