"""The real chart's rendered output: the NetworkPolicies it deploys and the workloads the stand-ins mirror.

``--manifests`` takes what ``helm template`` prints: a multi-document YAML stream of any kinds, where
namespaced objects usually carry no ``metadata.namespace`` (helm fills it in at install time). The
NetworkPolicies go into the GIM namespace under test; every pod template (Deployments, StatefulSets,
DaemonSets, ReplicaSets, Jobs, CronJobs, bare Pods) becomes a ``Workload`` whose labels and container
ports the stand-in server pods copy, so the chart's own selectors meet pods that look like GIM's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.errors import UserError
from conformance.gim.workloads import GIM_CLIENT, Workload
from conformance.netpol.k8s_schema import validate_network_policy
from conformance.netpol.model import PROTOCOLS, ContainerPort, K8sObject, object_key
from conformance.netpol.snapshot import parse_documents

NETWORK_POLICY_API = "networking.k8s.io/v1"

# kind -> path from the object to its pod template
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
WORKLOAD_KINDS = (*POD_TEMPLATE_PATHS, "Pod")

HELM_MISSING = (
    "--chart needs helm on PATH: install it (https://helm.sh/docs/intro/install/) "
    "or render the chart yourself and pass --manifests"
)
HELM_TIMEOUT_S = 300.0  # a remote chart is downloaded first

MAX_NAME = 63  # a Service name (the stand-in's) is a DNS-1035 label
_NOT_NAME_CHAR = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class RenderedChart:
    source: str
    policies: tuple[K8sObject, ...]  # networking.k8s.io/v1 NetworkPolicies, in the GIM namespace
    workloads: tuple[Workload, ...]  # one per pod template, in the order of the manifests
    notes: tuple[str, ...] = ()  # what the user should know: nothing to test, objects left out

    @property
    def client_workload(self) -> Workload | None:
        """The chart's first workload that only opens connections (a worker): the GIM-side client stand-in
        should carry its labels, so the chart's same-namespace rules see a client that looks like GIM's."""
        return next((w for w in self.workloads if not w.serves), None)


def load_manifests(path: str, gim_namespace: str) -> RenderedChart:
    """The NetworkPolicies and workloads of a ``helm template`` output file, for the GIM namespace."""
    source = path
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise UserError(f"cannot read the manifests: {reason}", source=source) from None
    return manifests_from_documents(parse_documents(text, source), gim_namespace, source)


def manifests_from_documents(docs: Sequence[K8sObject], gim_namespace: str, source: str) -> RenderedChart:
    """``load_manifests`` on already parsed documents (``*List`` objects flattened)."""
    policies: list[K8sObject] = []
    policy_names: set[str] = set()
    workloads: list[Workload] = []
    names: set[str] = set()
    notes: list[str] = []

    for doc in docs:
        kind, api_version = doc.get("kind"), doc.get("apiVersion")
        if not isinstance(kind, str) or not kind or not isinstance(api_version, str) or not api_version:
            raise UserError(
                f"an object without apiVersion and kind (keys: {', '.join(map(str, list(doc)[:5]))}): "
                "--manifests takes the output of `helm template`, not a values file",
                source=source,
            )
        meta = doc.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
            raise UserError("metadata.name is required", source=source, key=object_key(doc))
        namespace = meta.get("namespace")
        if namespace is not None and not isinstance(namespace, str):
            raise UserError("metadata.namespace must be a string", source=source, key=object_key(doc))

        if kind == "NetworkPolicy":
            if api_version != NETWORK_POLICY_API:
                notes.append(
                    f"{api_version} {object_key(doc)} is not a Kubernetes NetworkPolicy "
                    f"({NETWORK_POLICY_API}): left out, the suite neither applies nor simulates it"
                )
                continue
            policy = _policy(doc, meta, gim_namespace, source)
            name = policy["metadata"]["name"]
            if name in policy_names:
                raise UserError(
                    "two NetworkPolicies of that name: helm would fail to install the chart",
                    source=source,
                    key=object_key(policy),
                )
            policy_names.add(name)
            policies.append(policy)
        elif kind in WORKLOAD_KINDS:
            if namespace not in (None, gim_namespace):
                notes.append(f"{object_key(doc)} is not in the GIM namespace {gim_namespace}: not mirrored")
                continue
            workload = _workload(doc, kind, source, names, notes)
            if workload is not None:
                names.add(workload.name)
                workloads.append(workload)

    if not policies:
        notes.append(f"{source}: no NetworkPolicy in the manifests (networkPolicy.enabled false?)")
    if not workloads:
        notes.append(f"{source}: no workload ({', '.join(WORKLOAD_KINDS)}) in the manifests")
    return RenderedChart(source, tuple(policies), tuple(workloads), tuple(notes))


def _policy(doc: K8sObject, meta: dict, gim_namespace: str, source: str) -> K8sObject:
    namespace = meta.get("namespace")
    key = object_key(doc)
    if namespace is not None and namespace != gim_namespace:
        raise UserError(
            f"metadata.namespace is {namespace!r}, not the GIM namespace {gim_namespace!r}: the suite only "
            "deploys the chart's policies in the GIM namespace (render with --namespace "
            f"{gim_namespace} or pass --gim-namespace {namespace})",
            source=source,
            key=key,
        )
    policy = {**doc, "metadata": {**meta, "namespace": gim_namespace}}
    validate_network_policy(policy, source, key)
    return policy


def _workload(doc: K8sObject, kind: str, source: str, taken: set[str], notes: list[str]) -> Workload | None:
    key = object_key(doc)
    path = POD_TEMPLATE_PATHS.get(kind, ())
    template: Any = doc
    for step in path:
        template = template.get(step) if isinstance(template, dict) else None
    if not isinstance(template, dict):
        raise UserError(f"{'.'.join(path)} must be a pod template (a mapping)", source=source, key=key)
    where = ".".join(path)
    prefix = f"{where}." if where else ""
    spec = template.get("spec")
    if not isinstance(spec, dict):
        raise UserError(f"{prefix}spec must be a mapping", source=source, key=key)
    if spec.get("hostNetwork"):
        notes.append(f"{key} uses hostNetwork: NetworkPolicies do not apply to its pods, not mirrored")
        return None
    labels = _labels(template.get("metadata"), f"{prefix}metadata.labels", source, key)
    ports = _ports(spec, f"{prefix}spec", source, key)
    # A serving workload becomes a stand-in pod, which must not take the name of the GIM-side client pod.
    reserved = {GIM_CLIENT.name} if ports else set()
    name = _unique(_dns1035_label(doc["metadata"]["name"]), taken | reserved)
    return Workload(name, labels, ports, serves=bool(ports))


def _labels(meta: Any, where: str, source: str, key: str) -> dict[str, str]:
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if not labels:
        return {}
    if not isinstance(labels, dict):
        raise UserError(f"{where} must be a mapping", source=source, key=key)
    for label, value in labels.items():
        if not isinstance(value, str):
            raise UserError(
                f"{where}.{label} must be a string (quote it in the template), got {value!r}",
                source=source,
                key=key,
            )
    return dict(labels)


def _ports(spec: dict, where: str, source: str, key: str) -> tuple[ContainerPort, ...]:
    containers = spec.get("containers") or []
    if not isinstance(containers, list):
        raise UserError(f"{where}.containers must be a list", source=source, key=key)
    # Native sidecars (init containers that keep running) serve too.
    init = spec.get("initContainers") or []
    listed = [(f"containers[{i}]", c) for i, c in enumerate(containers)]
    if isinstance(init, list):
        listed += [
            (f"initContainers[{i}]", c)
            for i, c in enumerate(init)
            if isinstance(c, dict) and c.get("restartPolicy") == "Always"
        ]
    ports: dict[tuple[int, str], ContainerPort] = {}
    for container_path, container in listed:
        if not isinstance(container, dict):
            raise UserError(f"{where}.{container_path} must be a mapping", source=source, key=key)
        entries = container.get("ports") or []
        if not isinstance(entries, list):
            raise UserError(f"{where}.{container_path}.ports must be a list", source=source, key=key)
        for i, entry in enumerate(entries):
            path = f"{where}.{container_path}.ports[{i}]"
            if not isinstance(entry, dict):
                raise UserError(f"{path} must be a mapping", source=source, key=key)
            number = entry.get("containerPort")
            if type(number) is not int or not 1 <= number <= 65535:
                raise UserError(
                    f"{path}.containerPort must be a port number from 1 to 65535, got {number!r}",
                    source=source,
                    key=key,
                )
            protocol = entry.get("protocol") or "TCP"
            if protocol not in PROTOCOLS:
                raise UserError(
                    f"{path}.protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}",
                    source=source,
                    key=key,
                )
            name = entry.get("name") or None
            if name is not None and not isinstance(name, str):
                raise UserError(f"{path}.name must be a string, got {name!r}", source=source, key=key)
            # The same port twice (two containers, or a duplicated entry) is one listening socket.
            ports.setdefault((number, protocol), ContainerPort(number, protocol, name))
    return tuple(ports.values())


def _dns1035_label(name: str) -> str:
    """``name`` as a Service name: lowercase letters, digits and '-', a letter first, at most 63 chars."""
    label = _NOT_NAME_CHAR.sub("-", name.lower()).strip("-")
    if not label or not label[0].isalpha():
        label = f"w-{label}".rstrip("-")
    return label[:MAX_NAME].rstrip("-")


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = name[: MAX_NAME - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            return candidate
        n += 1


def helm_command(
    chart: str, values_files: Sequence[str], sets: Sequence[str], namespace: str, release: str = "gim"
) -> list[str]:
    """The ``helm template`` argv (without the executable), as the Helm 3 reference gives its synopsis:
    ``helm template [NAME] [CHART] [flags]`` with ``-n/--namespace``, ``-f/--values`` (repeatable, the
    last file wins) and ``--set`` (repeatable). https://helm.sh/docs/helm/helm_template/ (Helm v3.19)."""
    argv = ["template", release, chart, "--namespace", namespace]
    for values_file in values_files:
        argv += ["--values", values_file]
    for expression in sets:
        argv += ["--set", expression]
    return argv


def helm_template(
    chart: str,
    values_files: Sequence[str],
    sets: Sequence[str],
    namespace: str,
    release: str = "gim",
    *,
    out_dir: Path,
) -> Path:
    """Render ``chart`` with ``helm template`` into ``out_dir`` and return the output file's path."""
    helm = shutil.which("helm")
    if helm is None:
        raise UserError(HELM_MISSING)  # the message names --chart itself
    argv = [helm, *helm_command(chart, values_files, sets, namespace, release)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=HELM_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise UserError(f"helm template did not finish within {HELM_TIMEOUT_S:.0f} s", source=chart) from None
    except OSError as e:
        raise UserError(f"cannot run {helm}: {e.strerror or e}", source="--chart") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {proc.returncode}, no message"
        raise UserError(f"helm template failed: {reason}", source=chart)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"helm-template-{release}.yaml"
    out.write_text(proc.stdout, encoding="utf-8")
    return out
