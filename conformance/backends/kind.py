"""A kind cluster with Calico as the NetworkPolicy enforcer: create (or reuse), verify, delete.

Upstream procedures followed, to the letter:
- kind (kind.sigs.k8s.io, "Quick Start" and "Configuration"; CLI of kind v0.2x):
  ``kind create cluster --name N --config F --image I --kubeconfig K`` (``--image`` replaces the image
  of every node of the config: pkg/cluster/internal/create/create.go, fixupOptions; a node image not in
  docker is pulled: pkg/cluster/internal/providers/docker/images.go, pullIfNotPresent),
  ``kind get clusters`` (one name a line), ``kind get kubeconfig --name N`` (printed, not written),
  ``kind export kubeconfig --name N --kubeconfig K``, ``kind delete cluster --name N --kubeconfig K``;
  the kubeconfig context of cluster N is ``kind-N`` (sigs.k8s.io/kind/pkg/cluster/internal/kubeconfig,
  ContextForCluster). ``--wait`` is NOT used: without a CNI the nodes never get Ready, and the
  suite waits itself, with explicit deadlines.
- Calico "Kind multi-node install" quickstart (docs.tigera.io, Calico v3.31, operator tab):
  ``kubectl create -f <manifestsUrl>/manifests/operator-crds.yaml``, then ``.../tigera-operator.yaml``,
  then ``.../custom-resources.yaml`` after setting its IPPool cidr to the cluster's pod CIDR ("if you
  have replaced pod-network-cidr you must change it in this file as well"). Of custom-resources.yaml
  only the ``Installation`` is created (see ``calico_custom_resources``). manifestsUrl is
  ``https://raw.githubusercontent.com/projectcalico/calico/<version>`` (tigera/docs
  calico_versioned_docs/version-3.31/variables.js). Before v3.30 the CRDs were inside
  tigera-operator.yaml and operator-crds.yaml did not exist. The quickstart's check is calico-node
  pods running (``kubectl get pods -l k8s-app=calico-node -A``); the operator also reports
  ``tigerastatus/calico`` with an ``Available`` condition.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from conformance.backends.base import BackendUnavailable
from conformance.backends.enforcer_pods import CALICO_NAMESPACES, EnforcerCannotStart, EnforcerPods, read_pods
from conformance.backends.tools import ApiServer
from conformance.errors import UserError
from conformance.netpol import yaml_guard

# Latest release confirmed in Calico's versioned docs (tigera/docs calico_versioned_docs/version-3.31
# releases.json: v3.31.2, tigera-operator v1.40.2).
CALICO_VERSION = "v3.31.2"
CALICO_MANIFESTS_URL = "https://raw.githubusercontent.com/projectcalico/calico/{version}/manifests"

REPO_CONFIG = Path(__file__).resolve().parents[2] / "clusters" / "kind-calico.yaml"

# The node image of every node of clusters/kind-calico.yaml. kind v0.32.0 defaults to Kubernetes v1.36.1
# (pkg/apis/config/defaults/image.go at tag v0.32.0), outside the range Calico v3.31 is tested on
# (docs.tigera.io, Calico 3.31 "System requirements": Kubernetes 1.32-1.34). Node images are built per kind
# release and must be used with their digest; this is the v1.34 image listed for kind v0.32.0. The release
# notes page itself (github.com/kubernetes-sigs/kind/releases/tag/v0.32.0) was not in the material read:
# the tag@digest pair is the one several independent public repositories quote from those notes.
NODE_IMAGE = "kindest/node:v1.34.8@sha256:02722c2dedddcfc00febf5d27fbeb9b7b2c14294c82109ff4a85d89ac9ba3256"
CALICO_TESTED_KUBERNETES = ((1, 32), (1, 34))  # Calico v3.31 system requirements

# Who created a cluster, recorded on the cluster itself (kube-system/gim-netpol-owner).
OWNER_CONFIGMAP = "gim-netpol-owner"
# kind's own refusal to create over an existing cluster (pkg/cluster/internal/create/create.go,
# alreadyExists): it fails before any node is started, so there is nothing of this run to delete.
KIND_ALREADY_EXISTS = "already exist for a cluster with the name"
INOTIFY_HINT = (
    'kind known issue "Pod errors due to too many open files": raise the inotify limits '
    "(sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512)"
)

# kind's error when a node image is neither in docker nor pullable (pkg/cluster/internal/providers/docker/
# images.go, pull: `failed to pull image %q`, after `docker inspect --type=image` found nothing locally).
KIND_PULL_FAILED = re.compile(r'failed to pull image "([^"]+)"')
AIR_GAPPED_DOC = 'README.md, section "Air-gapped"'
DOCKER_TIMEOUT_S = 30.0

CREATE_TIMEOUT_S = 600.0  # pulling kindest/node on a cold CI runner
NODES_READY_TIMEOUT_S = 300.0
CALICO_AVAILABLE_TIMEOUT_S = 420.0
KUBECTL_TIMEOUT_S = 120.0


class CommandFailed(RuntimeError):
    """An external command failed: names it, shows the end of its stderr, and says what to try."""

    def __init__(self, argv: Sequence[str], problem: str, stderr: str = "", hint: str = "") -> None:
        self.argv = list(argv)
        self.problem = problem
        self.stderr = stderr.decode(errors="replace") if isinstance(stderr, bytes) else (stderr or "")
        self.stderr_tail = _tail(stderr)
        text = f"`{' '.join(argv)}` {problem}"
        if self.stderr_tail:
            text += f": {self.stderr_tail}"
        if hint:
            text += f" (hint: {hint})"
        super().__init__(text)


def _tail(text: str | bytes | None, lines: int = 5) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    kept = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return " | ".join(kept[-lines:])


def run(
    argv: Sequence[str],
    *,
    timeout_s: float,
    input_text: str | None = None,
    hint: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run one external command (found on PATH at call time), raising CommandFailed unless it exits 0."""
    exe = shutil.which(argv[0])
    argv = [Path(argv[0]).name, *argv[1:]]  # messages name the tool, not the folder it was fetched into
    if exe is None:
        raise BackendUnavailable(f"{argv[0]} not found on PATH (needed for `{' '.join(argv)}`)")
    try:
        result = subprocess.run(
            [exe, *argv[1:]],
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(argv, f"did not finish within {timeout_s:g}s", exc.stderr or "", hint) from None
    if result.returncode != 0:
        raise CommandFailed(argv, f"exited {result.returncode}", result.stderr or result.stdout, hint)
    return result


# --- the kind config and Calico's custom resources -------------------------------------------------


def read_kind_config(path: str | Path) -> dict:
    """The kind Cluster config, checked for what the suite relies on (no kindnet, a pod subnet)."""
    source = str(path)
    try:
        config = yaml_guard.load_first(Path(path).read_text(), source)
    except OSError as exc:
        raise UserError(f"cannot read the kind config ({exc.strerror})", source=source) from None
    except yaml.YAMLError as exc:
        raise UserError(f"invalid YAML ({exc})", source=source) from None
    if not isinstance(config, dict) or config.get("kind") != "Cluster":
        raise UserError("not a kind config (kind: Cluster expected)", source=source)
    if config.get("apiVersion") != "kind.x-k8s.io/v1alpha4":
        raise UserError("apiVersion must be kind.x-k8s.io/v1alpha4", source=source, key="apiVersion")
    networking = config.get("networking") or {}
    if networking.get("disableDefaultCNI") is not True:
        raise UserError(
            "kindnet would be installed and enforce NetworkPolicies itself (kind >= v0.24): "
            "set networking.disableDefaultCNI: true so Calico is the enforcer",
            source=source,
            key="networking.disableDefaultCNI",
        )
    if not networking.get("podSubnet"):
        raise UserError("networking.podSubnet is required (Calico's IPPool uses it)", source=source)
    return config


def pod_subnet(config: dict) -> str:
    return str(config["networking"]["podSubnet"])


def node_count(config: dict) -> int:
    return len(config.get("nodes") or [{"role": "control-plane"}])


def calico_manifest_names(version: str) -> list[str]:
    """The quickstart's manifests, in order (operator-crds.yaml exists from v3.30 on)."""
    m = re.match(r"^v?(\d+)\.(\d+)", version)
    if m is None:
        raise UserError(
            f"not a Calico version: {version!r} (e.g. {CALICO_VERSION})", source="--calico-version"
        )
    crds = ["operator-crds.yaml"] if (int(m[1]), int(m[2])) >= (3, 30) else []
    return [*crds, "tigera-operator.yaml", "custom-resources.yaml"]


def check_calico_source(version: str, manifests_dir: str | Path | None, *, no_download: bool) -> list[str]:
    """The Calico manifests a run will install, checked before any cluster is touched: with
    ``--calico-manifests`` every file the version needs must be in the folder; without it they are fetched
    from the release, which ``--no-download`` forbids. Returns their names; raises UserError."""
    names = calico_manifest_names(version)
    if not manifests_dir:
        if no_download:
            url = CALICO_MANIFESTS_URL.format(version=version)
            raise UserError(
                f"the Calico {version} manifests ({', '.join(names)}) would be fetched from {url}: "
                "pass --calico-manifests DIR, a folder holding them (see conformance/data/calico/README.md)",
                source="--no-download",
            )
        return names
    missing = [n for n in names if not (Path(manifests_dir) / n).is_file()]
    if missing:
        raise UserError(
            f"missing {', '.join(missing)} for Calico {version} (see conformance/data/calico/README.md)",
            source=str(manifests_dir),
        )
    return names


def _family(cidr: str) -> int:
    return ipaddress.ip_network(cidr.strip(), strict=False).version


def calico_custom_resources(text: str, cidrs: str | Sequence[str]) -> str:
    """The ``Installation`` of Calico's custom-resources.yaml, each IPPool's cidr set to the pod CIDR of
    its IP family (``cidrs``: the cluster's podSubnet, comma-separated when dual-stack).

    Only the Installation is kept: it is all Kubernetes NetworkPolicy needs (calico-node, typha,
    kube-controllers, CNI). The v3.31 file also creates APIServer, Goldmane and Whisker: the
    APIServer registers the aggregated API projectcalico.org/v3, and until it serves, the namespace
    controller cannot finish deleting namespaces (it needs every aggregated API), so the suite's
    namespaces would stay Terminating; Goldmane and Whisker (flow logs, UI) are not used.
    """
    platform = [c.strip() for c in ([cidrs] if isinstance(cidrs, str) else cidrs) for c in c.split(",")]
    platform = [c for c in platform if c]
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise UserError(f"custom-resources.yaml is not valid YAML ({exc})") from None
    installations = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Installation"]
    pools = 0
    for doc in installations:
        network = doc.setdefault("spec", {}).setdefault("calicoNetwork", {})
        for pool in network.get("ipPools") or ():
            family = _family(str(pool.get("cidr") or "0.0.0.0/0"))
            same = [c for c in platform if _family(c) == family]
            if not same:
                # tigera/operator v1.40.2 pkg/controller/ippool/defaults.go refuses a pool outside the
                # platform's pod CIDRs ("IPPool ... is not within the platform's configured pod network").
                raise UserError(
                    f"IPPool {pool.get('name', '?')} is IPv{family} but the cluster's pod CIDRs "
                    f"({', '.join(platform)}) have no IPv{family} range",
                    source="custom-resources.yaml",
                )
            pool["cidr"] = same[0]
            pools += 1
    if not pools:
        raise UserError(
            "custom-resources.yaml has no Installation with calicoNetwork.ipPools to set the cidr of"
        )
    return yaml.safe_dump_all(installations, sort_keys=False)


def _plural(kind: str) -> str:
    """The plural of a lowercased kind, as the CRDs of operator-crds.yaml spell it (tigerastatuses,
    networkpolicies, installations)."""
    if kind.endswith("y") and kind[-2:-1] not in "aeiou":
        return kind[:-1] + "ies"
    if kind.endswith(("s", "x", "ch", "sh")):
        return kind + "es"
    return kind + "s"


def crd_names(manifest_text: str) -> list[str]:
    """The CRDs the objects of a manifest need, e.g. ``goldmanes.operator.tigera.io`` for a Goldmane.

    The operator's CRDs are named ``<lowercase kind + plural suffix>.<group>`` (installations,
    apiservers, goldmanes, whiskers, tigerastatuses: projectcalico/calico manifests/operator-crds.yaml).
    """
    names = ["tigerastatuses.operator.tigera.io"]  # what wait_calico_available reads
    for doc in yaml.safe_load_all(manifest_text):
        if not isinstance(doc, dict) or "/" not in str(doc.get("apiVersion") or ""):
            continue  # core kinds need no CRD
        group = str(doc["apiVersion"]).split("/", 1)[0]
        kind = str(doc.get("kind") or "").lower()
        name = f"{_plural(kind)}.{group}"
        if kind and name not in names:
            names.append(name)
    return sorted(names)


def read_manifest(source: str) -> str:
    """A manifest's text, from a local path or a URL."""
    if "://" in source:
        with urllib.request.urlopen(source, timeout=60) as resp:  # noqa: S310 (https or file only)
            return resp.read().decode()
    return Path(source).read_text()


# --- the node image --------------------------------------------------------------------------------


def docker_has_image(ref: str, timeout_s: float = DOCKER_TIMEOUT_S) -> bool:
    """Whether docker's image store has ``ref``: ``docker image inspect REF`` exits 0 (docker CLI
    reference), the question kind asks before it pulls a node image (``docker inspect --type=image``)."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        result = subprocess.run(
            [docker, "image", "inspect", ref],
            capture_output=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def tag_of(ref: str) -> str | None:
    """``kindest/node:v1.34.8`` of ``kindest/node:v1.34.8@sha256:...``; None unless ``ref`` has both."""
    name, at, _ = ref.partition("@")
    if not at or ":" not in name.rsplit("/", 1)[-1]:
        return None
    return name


def pull_failure_hint(image: str) -> str:
    """kind could not pull a node image: it is not in docker (by that reference) and no registry answered."""
    return (
        f"the node image {image} is not in docker and could not be pulled (no registry reachable?): "
        f"on a machine without access, `docker load` it first, see {AIR_GAPPED_DOC}"
    )


def kubernetes_of(image: str) -> ApiServer | None:
    """The Kubernetes a node image runs, from its tag (``kindest/node:v1.34.8@...``: kind tags its node
    images with the Kubernetes version); None for a tag that names none."""
    name = image.partition("@")[0]
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", tag)
    if m is None:
        return None
    return ApiServer(f"v{m[1]}.{m[2]}.{m[3]}", f"of the node image {name} of the cluster the run creates")


def server_to_reuse(name: str, kind_bin: str = "kind", timeout_s: float = 15.0) -> ApiServer | None:
    """The API server of kind cluster ``name`` when it exists (what kubectl will talk to when the run
    reuses it), else None: its ``/version`` (``gitVersion``), read with the kubeconfig kind prints
    (``kind get kubeconfig --name N``: nothing is written) through the kubernetes client. Raises
    BackendUnavailable when the cluster exists but does not answer."""
    from kubernetes import client, config

    from conformance.backends.api_retry import quiet_urllib3_retries

    quiet_urllib3_retries()  # urllib3's "Retrying ..." warnings: the one line below says it all
    try:
        if name not in run([kind_bin, "get", "clusters"], timeout_s=timeout_s).stdout.split():
            return None
        text = run([kind_bin, "get", "kubeconfig", "--name", name], timeout_s=timeout_s).stdout
        api = config.new_client_from_config_dict(
            yaml.safe_load(text), context=f"kind-{name}", persist_config=False
        )
        try:
            version = client.VersionApi(api).get_code(_request_timeout=timeout_s).git_version
        finally:
            api.close()
    except Exception as exc:  # CommandFailed, ConfigException, ApiException, urllib3's errors
        if getattr(exc, "status", None):  # ApiException: the HTTP status, not its headers and body
            why = f"HTTP {exc.status} {getattr(exc, 'reason', '')}".strip()  # type: ignore[attr-defined]
        else:  # urllib3's MaxRetryError says why in its reason (e.g. connection refused)
            why = " ".join(str(getattr(exc, "reason", None) or exc).split())[:300]
        raise BackendUnavailable(
            f"cannot read the Kubernetes version of kind cluster {name!r}, to be reused ({why}): are its "
            f"nodes running (`docker ps --filter label=io.x-k8s.kind.cluster={name}`)? Or delete it with "
            f"`kind delete cluster --name {name}`"
        ) from None
    return ApiServer(str(version), f"read from the API server of kind cluster {name!r}, to be reused")


# --- the cluster -----------------------------------------------------------------------------------


def _conditions(obj: dict) -> dict[str, dict]:
    return {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or ()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class RunOwner:
    """The run that created a cluster: recorded in the cluster (ConfigMap kube-system/gim-netpol-owner),
    so that another run, or this one after a SIGKILL, can tell whose it is."""

    run_id: str
    host: str = ""
    pid: int = 0
    keep: bool = False

    @classmethod
    def this_run(cls, run_id: str, keep: bool) -> RunOwner:
        # An xdist worker ends before its controller does: the controller's pid outlives the run's use.
        pid = os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()
        return cls(run_id, socket.gethostname(), pid, keep)

    @classmethod
    def from_data(cls, data: dict[str, str]) -> RunOwner:
        pid = str(data.get("pid") or "0")
        return cls(
            str(data.get("run") or "?"),
            str(data.get("host") or ""),
            int(pid) if pid.isdigit() else 0,
            str(data.get("keep")).lower() == "true",
        )

    def data(self) -> dict[str, str]:
        return {"run": self.run_id, "host": self.host, "pid": str(self.pid), "keep": str(self.keep).lower()}

    def abandoned(self) -> bool:
        """Created on this host by a run that is gone (killed) and was not asked to keep it."""
        return not self.keep and self.host == socket.gethostname() and not _pid_alive(self.pid)

    def describe(self) -> str:
        if self.keep:
            return f"kept by gim-netpol run {self.run_id} (--keep-cluster)"
        state = "gone" if self.host == socket.gethostname() and not _pid_alive(self.pid) else "running"
        return f"created by gim-netpol run {self.run_id} (pid {self.pid} on {self.host}, {state})"


class KindCluster:
    """One kind cluster running Calico. ``create()`` makes it usable or raises; ``delete()`` removes it."""

    def __init__(
        self,
        name: str,
        config_path: str | Path,
        calico_version: str = CALICO_VERSION,
        calico_manifests_dir: str | Path | None = None,
        kubeconfig_path: str | Path = "kubeconfig",
        reuse: bool = False,
        keep: bool = False,
        *,
        owner: RunOwner | None = None,
        no_download: bool = False,
        node_image: str = NODE_IMAGE,
        enforcer: str = "calico",
        node_memory: str | None = None,
        kind_bin: str = "kind",
        kubectl_bin: str = "kubectl",
        poll_s: float = 3.0,
        create_timeout_s: float = CREATE_TIMEOUT_S,
        nodes_timeout_s: float = NODES_READY_TIMEOUT_S,
        calico_timeout_s: float = CALICO_AVAILABLE_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.config_path = Path(config_path)
        self.config = read_kind_config(config_path)
        self.calico_version = calico_version
        self.calico_manifests_dir = Path(calico_manifests_dir) if calico_manifests_dir else None
        self.enforcer = enforcer_named(enforcer)
        self.manifest_names = (
            check_calico_source(calico_version, self.calico_manifests_dir, no_download=no_download)
            if self.enforcer is CALICO
            else []
        )
        self.node_image = node_image
        self.node_memory = node_memory
        self.kubeconfig_path = Path(kubeconfig_path)
        self.reuse = reuse
        self.keep = keep
        self.owner = owner or RunOwner.this_run("unknown", keep)
        self.kind_bin = kind_bin
        self.kubectl_bin = kubectl_bin
        self.poll_s = poll_s
        self.create_timeout_s = create_timeout_s
        self.nodes_timeout_s = nodes_timeout_s
        self.calico_timeout_s = calico_timeout_s
        self.created = False  # True once `kind create cluster` succeeded in this process
        self.notes: list[str] = []
        self.started = ""  # what create() did and what it took, for the session summary

    @property
    def context(self) -> str:
        return f"kind-{self.name}"

    # commands

    def kind(self, *args: str, timeout_s: float = KUBECTL_TIMEOUT_S, hint: str = "") -> str:
        return run([self.kind_bin, *args], timeout_s=timeout_s, hint=hint).stdout

    def kubectl(
        self, *args: str, input_text: str | None = None, timeout_s: float = KUBECTL_TIMEOUT_S, hint: str = ""
    ) -> str:
        argv = [self.kubectl_bin, "--kubeconfig", str(self.kubeconfig_path), "--context", self.context, *args]
        return run(argv, timeout_s=timeout_s, input_text=input_text, hint=hint).stdout

    def _kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def docker(self, *args: str, input_text: str | None = None) -> str:
        return run(["docker", *args], timeout_s=KUBECTL_TIMEOUT_S, input_text=input_text).stdout

    def node_names(self) -> list[str]:
        """The node containers of the cluster (``kind get nodes``: their names are the nodes' names)."""
        return self.kind("get", "nodes", "--name", self.name).split()

    def wait(self, what: str, timeout_s: float, check: Callable[[], tuple[bool, str]], hint: str) -> None:
        self._wait(what, timeout_s, check, hint)

    def create_objects(self, text: str, hint: str) -> None:
        self._create("-", input_text=text, hint=hint)

    def cap_node_memory(self, limit: str) -> None:
        """kind starts its nodes without a memory limit: one runaway pod can take the whole machine. Each
        node of the cluster this run created gets ``limit`` (``docker update --memory --memory-swap``: no
        swap beyond it); a process over it is killed inside its node."""
        for node in self.node_names():
            self.docker("update", "--memory", limit, "--memory-swap", limit, node)

    # lifecycle

    def exists(self) -> bool:
        return self.name in self.kind("get", "clusters").split()

    def create(self) -> None:
        """Create (or reuse) the cluster, install its enforcer if absent, and prove it runs everywhere.
        What it took is in ``started`` (the session summary prints it)."""
        start = time.monotonic()
        if self.exists():
            self.export_kubeconfig()
            if not self.reuse:
                owner = self.read_owner()
                if owner is None or not owner.abandoned():
                    whose = f" ({owner.describe()})" if owner else " (not created by this suite)"
                    raise BackendUnavailable(
                        f"a kind cluster named {self.name!r} already exists{whose}: pass --reuse-cluster to "
                        f"use it, delete it with `kind delete cluster --name {self.name}`, or give this run "
                        "another --cluster-name (concurrent runs need distinct names)"
                    )
                self.delete_cluster()  # left behind by a run that was killed
                self.notes.append(f"deleted kind cluster {self.name!r}, {owner.describe()}")
                self._create_cluster()
        else:
            self._create_cluster()
        created_s = time.monotonic() - start
        # The enforcer is checked before anything is installed: another one on a kindnet cluster never works.
        self.check_no_kindnet()
        if self.created and self.node_memory:
            self.cap_node_memory(self.node_memory)
        enforcer = self.enforcer
        if not enforcer.installed(self):
            enforcer.install(self)
        self.wait_nodes_ready()
        enforcer.wait(self)
        enforcer.check(self)
        ready_s = time.monotonic() - start - created_s
        how = f"created in {created_s:.0f} s" if self.created else "reused"
        self.started = (
            f"kind cluster {self.name} {how} ({node_count(self.config)} nodes, {self.node_image}); "
            f"{enforcer.name} Ready on every node {ready_s:.0f} s later"
        )

    def boot_image(self) -> str:
        """The image every node of a cluster this run creates boots, passed as ``kind create cluster
        --image``, which kind applies to every node of the config (pkg/cluster/internal/create/create.go,
        fixupOptions): ``node_image`` (the pinned NODE_IMAGE), except that a ``name:tag@sha256:...``
        docker has by its tag only is used by its tag. An image brought in with ``docker load`` has no
        repo digest in Docker's classic image store, so kind's lookup by digest (``docker inspect
        --type=image``) would miss it and try to pull it (README, Air-gapped)."""
        image = self.node_image
        tag = tag_of(image)
        if tag is None or docker_has_image(image) or not docker_has_image(tag):
            return image
        digest = image.partition("@")[2]
        self.notes.append(
            f"node image {tag} used by its tag: docker has it without its repo digest {digest} "
            "(as `docker load` leaves it), so that digest was not checked"
        )
        return tag

    def _create_cluster(self) -> None:
        self.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.kind(
                "create",
                "cluster",
                "--name",
                self.name,
                "--config",
                str(self.config_path),
                "--image",
                self.boot_image(),
                "--kubeconfig",
                str(self.kubeconfig_path),
                timeout_s=self.create_timeout_s,
                hint="is docker running with enough memory? `kind create cluster --retain` keeps the nodes "
                "for `kind export logs`",
            )
        except BaseException as exc:
            if isinstance(exc, CommandFailed) and KIND_ALREADY_EXISTS in exc.stderr:
                raise  # kind stopped before starting any node: the cluster is another run's
            failure = exc
            pulled = KIND_PULL_FAILED.search(exc.stderr) if isinstance(exc, CommandFailed) else None
            if isinstance(exc, CommandFailed) and pulled:  # not a memory problem: the hint says what it is
                failure = CommandFailed(exc.argv, exc.problem, exc.stderr, pull_failure_hint(pulled[1]))
            # kind deletes the nodes only in its own error path (pkg/cluster/internal/create/create.go);
            # after a timeout (SIGKILL) or an interrupt they stay, so this run deletes what it started.
            try:
                self.delete_cluster()
                left = "the nodes it started were deleted"
            except Exception:
                left = f"its nodes may be left: `kind delete cluster --name {self.name}` removes them"
            if isinstance(failure, Exception) and failure.args:
                failure.args = (f"{failure.args[0]}; {left}", *failure.args[1:])
            if failure is exc:
                raise
            raise failure from None
        self.created = True
        self.kubeconfig_path.chmod(0o600)  # cluster-admin credentials: the user's alone
        self.record_owner()

    def export_kubeconfig(self) -> None:
        self.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        self.kind("export", "kubeconfig", "--name", self.name, "--kubeconfig", str(self.kubeconfig_path))
        self.kubeconfig_path.chmod(0o600)

    def record_owner(self) -> None:
        literals = [f"--from-literal={k}={v}" for k, v in self.owner.data().items()]
        self.kubectl("create", "configmap", OWNER_CONFIGMAP, "-n", "kube-system", *literals)

    def read_owner(self) -> RunOwner | None:
        text = self.kubectl(
            "get", "configmap", OWNER_CONFIGMAP, "-n", "kube-system", "--ignore-not-found", "-o", "json"
        )
        if not text.strip():
            return None
        return RunOwner.from_data(json.loads(text).get("data") or {})

    def delete_cluster(self) -> None:
        self.kind(
            "delete",
            "cluster",
            "--name",
            self.name,
            "--kubeconfig",
            str(self.kubeconfig_path),
            timeout_s=self.create_timeout_s,
        )
        self.created = False

    def delete(self) -> None:
        if self.keep:
            return
        self.delete_cluster()

    # Calico

    def manifest_source(self, name: str) -> str:
        if self.calico_manifests_dir is not None:
            return str(self.calico_manifests_dir / name)
        return f"{CALICO_MANIFESTS_URL.format(version=self.calico_version)}/{name}"

    def calico_installed(self) -> bool:
        crd = self.kubectl(
            "get", "crd", "installations.operator.tigera.io", "--ignore-not-found", "-o", "name"
        )
        if not crd.strip():
            return False
        return bool(
            self.kubectl("get", "installation", "default", "--ignore-not-found", "-o", "name").strip()
        )

    def pod_subnets(self) -> list[str]:
        """The cluster's pod CIDRs, read where tigera/operator reads them to validate the IPPool: the
        ``podSubnet:`` line of ConfigMap kube-system/kubeadm-config (v1.40.2 pkg/controller/ippool/
        kubeadm.go, extractKubeadmCIDRs; comma-separated when dual-stack). Without that ConfigMap the
        operator checks nothing, and the kind config's podSubnet is used."""
        text = self.kubectl(
            "get", "configmap", "kubeadm-config", "-n", "kube-system", "--ignore-not-found", "-o", "json"
        )
        data = (json.loads(text).get("data") or {}) if text.strip() else {}
        for value in data.values():
            m = re.search(r"podSubnet: (.*)", str(value))
            if m:
                return [c.strip() for c in m.group(1).split(",") if c.strip()]
        return [c.strip() for c in pod_subnet(self.config).split(",")]

    def install_calico(self) -> None:
        hint = (
            f"Calico {self.calico_version} manifests from {self.manifest_source('')}; "
            "for air-gapped runs see conformance/data/calico/README.md"
        )
        *operator, custom = self.manifest_names
        try:
            text = read_manifest(self.manifest_source(custom))
        except OSError as exc:
            raise CommandFailed(["read", self.manifest_source(custom)], "failed", str(exc), hint) from None
        resources = calico_custom_resources(text, self.pod_subnets())
        for name in operator:
            self._create(self.manifest_source(name), hint=hint)
        # The Installation can be created only once its CRD is established: a CRD still pending makes
        # `kubectl create` fail ("no matches for kind").
        self.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=120s",
            *(f"crd/{name}" for name in crd_names(resources)),
            timeout_s=150,
            hint=hint,
        )
        self._create("-", input_text=resources, hint=hint)

    def _create(self, source: str, *, input_text: str | None = None, hint: str = "") -> None:
        """``kubectl create -f source``, where objects an earlier, interrupted install left are fine
        (a reused cluster): kubectl creates the others, and every line it prints on stderr, but for
        warnings, is an AlreadyExists error. Any other line (``no matches for kind``, ``ensure CRDs are
        installed first``, a timeout) is a real failure."""
        try:
            self.kubectl("create", "-f", source, input_text=input_text, hint=hint)
        except CommandFailed as exc:
            lines = [ln.strip() for ln in exc.stderr.splitlines() if ln.strip()]
            problems = [ln for ln in lines if not ln.startswith("Warning:")]
            if not problems or not all(ln.startswith("Error from server (AlreadyExists)") for ln in problems):
                raise

    # waiting, with explicit deadlines

    def _wait(self, what: str, timeout_s: float, check: Callable[[], tuple[bool, str]], hint: str) -> None:
        """Poll ``check`` until done. Meanwhile the enforcer's pods are read (``enforcer_pods.read_pods``):
        one that can never be Ready stops the wait at once, naming it and why; at the deadline, the pods
        not Ready and their state are named rather than the generic ``hint``."""
        deadline = time.monotonic() + timeout_s
        state = "not checked yet"
        while True:
            try:
                done, state = check()
            except CommandFailed as exc:
                done, state = False, str(exc)
            if done:
                return
            pods = self.enforcer_pods()
            if pods is not None and pods.stuck:
                raise EnforcerCannotStart(what, pods, self._pods_hint(pods))
            if time.monotonic() >= deadline:
                if pods is not None and pods.waiting:
                    why = self._pods_hint(pods)
                    raise BackendUnavailable(
                        f"{what} not reached within {timeout_s:g}s: {state}; {pods.not_ready_line()}"
                        + (f" ({why})" if why else "")
                    )
                raise BackendUnavailable(f"{what} not reached within {timeout_s:g}s: {state} (hint: {hint})")
            time.sleep(self.poll_s)

    def enforcer_pods(self) -> EnforcerPods | None:
        """The enforcer's pods (and kube-system's) that are not Ready (None when they cannot be read yet)."""

        def last_log(namespace: str, pod: str, container: str) -> str:
            return self.kubectl("logs", "-n", namespace, pod, "-c", container, "--previous", "--tail=5")

        try:
            namespaces = tuple(dict.fromkeys([*self.enforcer.namespaces, "kube-system"]))
            return read_pods(namespaces, self._kubectl_json, last_log=last_log)
        except (CommandFailed, ValueError):
            return None

    def _pods_hint(self, pods: EnforcerPods) -> str:
        hints = []
        if "too many open files" in pods.messages():
            hints.append(INOTIFY_HINT)
        if self.created and not self.keep:
            hints.append("the cluster is deleted when the run ends: --keep-cluster keeps it to inspect them")
        return "; ".join(hints)

    def wait_nodes_ready(self) -> None:
        expected = node_count(self.config)

        def check() -> tuple[bool, str]:
            nodes = self._kubectl_json("get", "nodes")["items"]
            not_ready = []
            for node in nodes:
                ready = _conditions(node).get("Ready", {})
                if ready.get("status") != "True":
                    why = ready.get("message") or ready.get("reason") or "no Ready condition"
                    not_ready.append(f"{node['metadata']['name']} NotReady ({why})")
            if len(nodes) < expected:
                not_ready.append(f"{len(nodes)} of {expected} nodes registered")
            return not not_ready, "; ".join(not_ready)

        self._wait(
            "all nodes Ready",
            self.nodes_timeout_s,
            check,
            "nodes stay NotReady until the CNI runs: "
            f'`kubectl --context {self.context} get pods -n calico-system`; if they fail with "too many '
            f'open files": {INOTIFY_HINT}',
        )

    def wait_calico_available(self) -> None:
        """Every TigeraStatus the operator created is Available (``calico`` among them), none Degraded."""

        def check() -> tuple[bool, str]:
            statuses = self._kubectl_json("get", "tigerastatus")["items"]
            names = [s["metadata"]["name"] for s in statuses]
            if "calico" not in names:
                return False, f"no tigerastatus/calico yet (have: {', '.join(names) or 'none'})"
            waiting = []
            for status in statuses:
                conds = _conditions(status)
                name = status["metadata"]["name"]
                degraded = conds.get("Degraded", {})
                if degraded.get("status") == "True":
                    waiting.append(f"{name} Degraded: {degraded.get('message') or degraded.get('reason')}")
                elif conds.get("Available", {}).get("status") != "True":
                    progressing = conds.get("Progressing", {})
                    why = progressing.get("message") or progressing.get("status", "?")
                    waiting.append(f"{name} Progressing: {why}")
            return not waiting, "; ".join(waiting)

        self._wait(
            "every tigerastatus Available",
            self.calico_timeout_s,
            check,
            f"`kubectl --context {self.context} get tigerastatus` and "
            f"`kubectl --context {self.context} get pods -n calico-system`: images not pulled yet, or pods "
            f'failing with "too many open files": {INOTIFY_HINT}',
        )

    def check_no_kindnet(self) -> None:
        """kindnet enforces NetworkPolicies itself since kind v0.24: with it, Calico is not what is tested
        (and on kindnet's pod CIDR the operator goes Degraded)."""
        daemonsets = self._kubectl_json("get", "daemonsets", "--all-namespaces")["items"]
        kindnet = [d["metadata"]["name"] for d in daemonsets if d["metadata"]["name"].startswith("kindnet")]
        if kindnet:
            raise BackendUnavailable(
                f"kindnet is installed in cluster {self.name!r} ({', '.join(kindnet)}): it enforces "
                "NetworkPolicies itself since kind v0.24, so Calico would not be what is tested. "
                "Recreate the cluster with networking.disableDefaultCNI: true (clusters/kind-calico.yaml)"
            )

    def check_enforcer(self) -> None:
        """calico-node runs on every node, and kindnet (which would enforce policies too) is absent."""
        self.check_no_kindnet()
        pods = self._kubectl_json("get", "pods", "--all-namespaces", "-l", "k8s-app=calico-node")["items"]
        running = [
            p
            for p in pods
            if (p.get("status") or {}).get("phase") == "Running"
            and _conditions(p).get("Ready", {}).get("status") == "True"
        ]
        expected = node_count(self.config)
        if len(running) < expected:
            raise BackendUnavailable(
                f"calico-node is running and Ready on {len(running)} of {expected} nodes "
                f"of cluster {self.name!r}: "
                f"see `kubectl --context {self.context} get pods -A -l k8s-app=calico-node`"
            )


# --- the enforcers ---------------------------------------------------------------------------------


class _Calico:
    """Calico through its operator, as the quickstart installs it (the KindCluster methods above)."""

    name = "calico"
    namespaces = CALICO_NAMESPACES

    def installed(self, cluster: KindCluster) -> bool:
        return cluster.calico_installed()

    def install(self, cluster: KindCluster) -> None:
        cluster.install_calico()

    def wait(self, cluster: KindCluster) -> None:
        cluster.wait_calico_available()

    def check(self, cluster: KindCluster) -> None:
        cluster.check_enforcer()


CALICO = _Calico()


def enforcer_named(name: str):  # -> _Calico | enforcers.ManifestEnforcer
    from conformance.backends import enforcers

    if name == "calico":
        return CALICO
    if name not in enforcers.BY_NAME:
        raise UserError(f"expected one of {', '.join(enforcers.ENFORCERS)}, got {name!r}", source="--cni")
    return enforcers.BY_NAME[name]


# --- one cluster for all pytest-xdist workers of one run -------------------------------------------


def _read_state(path: Path, run_id: str) -> dict[str, Any]:
    fresh = {"run": run_id, "users": 0, "ready": False, "created": False, "error": None}
    if path.exists():
        state = json.loads(path.read_text())
        if state.get("run") == run_id:
            return state
    return fresh  # none yet, or left by another run: it says nothing about this one


def _write_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)


def private_kubeconfig(shared_dir: str | Path, name: str) -> Path:
    """Where a run keeps the kubeconfig of kind cluster ``name`` (cluster-admin credentials): in a folder
    of the run's state folder that only its user may enter (0700), written 0600, and deleted when the
    run leaves the cluster (``shared_cluster``)."""
    folder = Path(shared_dir) / "kubeconfig"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # mkdir's mode is filtered by the umask, and the folder may exist already
    return folder / f"kubeconfig-{name}"


def cluster_lock(shared_dir: str | Path, name: str) -> FileLock:
    """The lock the processes of one run take around the cluster's creation and state (one per cluster)."""
    shared = Path(shared_dir)
    shared.mkdir(parents=True, exist_ok=True)
    return FileLock(str(shared / f"kind-{name}.lock"))


def _forget_kubeconfig(cluster: KindCluster) -> None:
    """The run is done with the cluster: its kubeconfig (credentials) does not outlive it."""
    cluster.kubeconfig_path.unlink(missing_ok=True)


@contextlib.contextmanager
def shared_cluster(cluster: KindCluster, shared_dir: str | Path, run_id: str) -> Iterator[KindCluster]:
    """The cluster, created by the first process of run ``run_id`` that enters and deleted by the last
    that leaves.

    A cluster that existed before (``reuse``) is never deleted: the run did not make it.

    ``shared_dir`` must be the same for every worker of one run and new for each run
    (``factory.run_state_dir``). A failed creation is recorded there, so the other workers of the run
    fail at once with the same message instead of trying again; a state left there by another run
    (killed, or failed) is ignored.
    """
    shared = Path(shared_dir)
    lock = cluster_lock(shared, cluster.name)
    state_path = shared / f"kind-{cluster.name}.json"
    with lock:
        state = _read_state(state_path, run_id)
        if state["error"]:
            raise BackendUnavailable(state["error"])
        if not state["ready"]:
            try:
                cluster.create()
            except BaseException as exc:
                if isinstance(exc, Exception):
                    state["error"] = str(exc)
                    _write_state(state_path, state)
                if cluster.created:
                    with contextlib.suppress(Exception):
                        cluster.delete()
                if not state["users"]:
                    _forget_kubeconfig(cluster)
                raise
            state["ready"] = True
            state["created"] = cluster.created
        state["users"] += 1
        _write_state(state_path, state)
    try:
        yield cluster
    finally:
        with lock:
            state = _read_state(state_path, run_id)
            state["users"] = max(0, state["users"] - 1)
            last = state["users"] == 0
            created = bool(state.get("created"))
            if last:
                state["ready"] = False
                state["created"] = False
            _write_state(state_path, state)
            try:
                if last and created:
                    cluster.delete()
            finally:
                if last:
                    _forget_kubeconfig(cluster)
