"""The NetworkPolicy enforcers the kind backend installs besides Calico: kube-router and
kube-network-policies, each from its own upstream manifest (kept verbatim in
``conformance/data/<enforcer>/``), with its image pinned to the released version the suite is tested with.

- kube-router v2.1.0, ``daemonset/kubeadm-kuberouter.yaml`` of its repository at that tag, as its
  docs/kubeadm.md says ("kube-router Providing Pod Networking and Network Policy": pod routing between nodes,
  NetworkPolicy; kube-proxy stays). It is the CNI too: it writes the bridge conflist of its ConfigMap on every
  node (init container ``install-cni``) and fills in the node's pod CIDR.
- kube-network-policies v0.8.0, ``install.yaml`` of its repository at that tag (the DaemonSet kindnet embeds;
  the file at v0.8.0 still names the v0.7.0 image, pinned here to v0.8.0). It enforces policies and nothing
  else, so the nodes need a plain CNI beside it: the one kindnet configures (sigs.k8s.io/kind
  pkg/build/nodeimage/const_cni.go and kindnetd): the ``ptp`` plugin with ``host-local`` IPAM on the node's
  pod CIDR, and on every node a route to each other node's pod CIDR through that node's address. Written
  straight into the nodes (``docker exec``): no daemon, so nothing but kube-network-policies filters.
  kindnet itself is not used: since kind v0.24 it embeds a kube-network-policies of its own, which would
  enforce the policies a second time, at another version.

Each upstream manifest pulls with ``imagePullPolicy: Always`` (kube-router) or a floating tag; both are set to
the pinned image with ``IfNotPresent``, so a node whose image holds it (or ``kind load``) needs no registry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml

from conformance.backends.base import BackendUnavailable

DATA = Path(__file__).resolve().parents[1] / "data"
ENFORCERS = ("calico", "kube-router", "kube-network-policies")
READY_TIMEOUT_S = 300.0
PTP_CONFLIST = "/etc/cni/net.d/10-gim-netpol-ptp.conflist"


class ClusterOps(Protocol):
    """What an enforcer needs of the kind cluster (conformance.backends.kind.KindCluster)."""

    name: str
    context: str

    def kubectl(
        self, *args: str, input_text: str | None = None, timeout_s: float = ..., hint: str = ""
    ) -> str: ...

    def docker(self, *args: str, input_text: str | None = None) -> str: ...

    def node_names(self) -> list[str]: ...

    def wait(self, what: str, timeout_s: float, check: Callable[[], tuple[bool, str]], hint: str) -> None: ...

    def create_objects(self, text: str, hint: str) -> None: ...


def pin_images(text: str, repository: str, image: str) -> str:
    """The manifest with every container of ``repository`` (any tag, or none) running ``image``, pulled only
    when absent."""
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    for doc in docs:
        spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
            if (
                str(container.get("image", "")).split("@")[0].rsplit(":", 1)[0] == repository
                or container.get("image") == repository
            ):
                container["image"] = image
                container["imagePullPolicy"] = "IfNotPresent"
    return yaml.safe_dump_all(docs, sort_keys=False)


def _daemonset_ready(cluster: ClusterOps, namespace: str, name: str) -> tuple[bool, str]:
    text = cluster.kubectl("get", "daemonset", name, "-n", namespace, "--ignore-not-found", "-o", "json")
    if not text.strip():
        return False, f"no daemonset {namespace}/{name} yet"
    status = json.loads(text).get("status") or {}
    want = int(status.get("desiredNumberScheduled") or 0)
    ready = int(status.get("numberReady") or 0)
    if want == 0 or ready < want:
        return False, f"daemonset {namespace}/{name}: {ready} of {want or '?'} pods Ready"
    return True, f"{ready} of {want} pods Ready"


@dataclass(frozen=True)
class NftExpression:
    """An nftables expression an enforcer's rules use, which the nodes' kernel must support (kind nodes
    share the host's kernel). Probed in a scratch table with a chain on no hook, so no packet meets it."""

    expression: str
    kernel_option: str
    used_for: str

    def refused_on(self, cluster: ClusterOps, node: str) -> str | None:
        """What the kernel said when refusing the expression on ``node``, None when it accepts it."""
        from conformance.backends.kind import CommandFailed

        table = "gim-netpol-probe"
        script = (
            f"nft add table inet {table} && nft add chain inet {table} probe && "
            f"nft add rule inet {table} probe {self.expression}; rc=$?; "
            f"nft delete table inet {table}; exit $rc"
        )
        try:
            cluster.docker("exec", node, "sh", "-c", script)
        except CommandFailed as exc:
            said = [ln.strip() for ln in exc.stderr.splitlines() if ln.strip().startswith("Error")]
            return (said or [exc.stderr_tail or "refused"])[0]
        return None


@dataclass(frozen=True)
class ManifestEnforcer:
    """An enforcer that is one upstream manifest with one DaemonSet."""

    name: str
    version: str
    manifest: Path
    repository: str
    namespace: str
    daemonset: str
    needs_plain_cni: bool = False
    kernel_needs: tuple[NftExpression, ...] = ()

    @property
    def image(self) -> str:
        return f"{self.repository}:{self.version}"

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.namespace,)

    def manifest_text(self) -> str:
        return pin_images(self.manifest.read_text(), self.repository, self.image)

    def installed(self, cluster: ClusterOps) -> bool:
        return bool(
            cluster.kubectl(
                "get", "daemonset", self.daemonset, "-n", self.namespace, "--ignore-not-found", "-o", "name"
            ).strip()
        )

    def check_kernel(self, cluster: ClusterOps) -> None:
        """Stops the run before anything is installed when the nodes' kernel cannot run the enforcer's
        rules: its pods would run Ready and enforce nothing."""
        nodes = cluster.node_names()
        for need in self.kernel_needs:
            said = need.refused_on(cluster, nodes[0]) if nodes else None
            if said:
                raise BackendUnavailable(
                    f"{self.name} {self.version} cannot enforce NetworkPolicies on this machine: "
                    f"{need.used_for}, and the kernel refuses it (node {nodes[0]}: `{need.expression}`: "
                    f"{said}); the kernel needs {need.kernel_option}. Use --cni kube-router or calico here, "
                    "or a kernel with it"
                )

    def install(self, cluster: ClusterOps) -> None:
        self.check_kernel(cluster)
        if self.needs_plain_cni:
            install_plain_cni(cluster)
        cluster.create_objects(self.manifest_text(), hint=f"{self.name} {self.version} from {self.manifest}")

    def wait(self, cluster: ClusterOps, timeout_s: float = READY_TIMEOUT_S) -> None:
        cluster.wait(
            f"{self.name} Ready on every node",
            timeout_s,
            lambda: _daemonset_ready(cluster, self.namespace, self.daemonset),
            f"`kubectl --context {cluster.context} get pods -n {self.namespace} -l k8s-app={self.daemonset}`",
        )

    def check(self, cluster: ClusterOps) -> None:
        done, state = _daemonset_ready(cluster, self.namespace, self.daemonset)
        if not done:
            raise BackendUnavailable(
                f"{self.name} is not running on every node of cluster {cluster.name!r}: {state}"
            )


KUBE_ROUTER = ManifestEnforcer(
    "kube-router",
    "v2.1.0",
    DATA / "kube-router" / "kubeadm-kuberouter.yaml",
    "docker.io/cloudnativelabs/kube-router",
    "kube-system",
    "kube-router",
)
KUBE_NETWORK_POLICIES = ManifestEnforcer(
    "kube-network-policies",
    "v0.8.0",
    DATA / "kube-network-policies" / "install.yaml",
    "registry.k8s.io/networking/kube-network-policies",
    "kube-system",
    "kube-network-policies",
    needs_plain_cni=True,
    # pkg/networkpolicy/controller.go (v0.8.0): the packets of pods that policies select are sent to
    # userspace with the nftables `queue` statement (the comments there: "queue flags bypass to 102").
    kernel_needs=(
        NftExpression(
            "queue num 98 bypass",
            "CONFIG_NFT_QUEUE (nft_queue)",
            "its nftables rules send the packets of pods that policies select to userspace with the "
            "`queue` statement (pkg/networkpolicy/controller.go)",
        ),
    ),
)
BY_NAME = {e.name: e for e in (KUBE_ROUTER, KUBE_NETWORK_POLICIES)}


def ptp_conflist(pod_cidr: str) -> str:
    """kindnet's CNI configuration for one node (ptp, host-local on the node's pod CIDR, portmap), without
    masquerading: nothing here may leave the machine."""
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "name": "gim-netpol-ptp",
            "plugins": [
                {
                    "type": "ptp",
                    "ipMasq": False,
                    "mtu": 1500,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": "/run/cni-ipam-state",
                        "ranges": [[{"subnet": pod_cidr}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )


def node_routes(cluster: ClusterOps) -> dict[str, tuple[str, str]]:
    """node name -> (pod CIDR, InternalIP), for every node registered; raises while one has no pod CIDR."""
    found: dict[str, tuple[str, str]] = {}
    for node in json.loads(cluster.kubectl("get", "nodes", "-o", "json"))["items"]:
        name = node["metadata"]["name"]
        cidr = (node.get("spec") or {}).get("podCIDR")
        ips = [
            a["address"]
            for a in (node.get("status") or {}).get("addresses") or ()
            if a["type"] == "InternalIP"
        ]
        if cidr and ips:
            found[name] = (cidr, ips[0])
    return found


def install_plain_cni(cluster: ClusterOps, timeout_s: float = 120.0) -> None:
    """The ptp CNI on every node, and the routes between nodes' pod CIDRs."""
    nodes = cluster.node_names()
    routes: dict[str, tuple[str, str]] = {}

    def every_node_has_a_cidr() -> tuple[bool, str]:
        routes.clear()
        routes.update(node_routes(cluster))
        missing = [n for n in nodes if n not in routes]
        return not missing, f"no pod CIDR yet for {', '.join(missing)}"

    cluster.wait(
        "a pod CIDR on every node",
        timeout_s,
        every_node_has_a_cidr,
        "kube-controller-manager allocates them (kubeadm podSubnet)",
    )
    for node in nodes:
        cidr, _ip = routes[node]
        cluster.docker("exec", "-i", node, "sh", "-c", f"cat > {PTP_CONFLIST}", input_text=ptp_conflist(cidr))
        for other, (other_cidr, other_ip) in routes.items():
            if other != node:
                cluster.docker("exec", node, "ip", "route", "replace", other_cidr, "via", other_ip)
