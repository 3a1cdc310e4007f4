"""What is built, at which version, with which Go toolchain, and what each image holds.

Each Go component has its build manifest in ``go/<name>/`` (go.mod pins the upstream module's version, go.sum
its checksums and those of everything it builds from). The toolchain is the one the component names: its
``.go-version`` or go.mod ``toolchain`` line, else the newest patch release of the Go minor its go.mod (or its
release Makefile) names that the module proxy serves here. ``GOTOOLCHAIN=goX.Y.Z`` makes the go command fetch
that toolchain from the module proxy (go.dev/doc/toolchain).
"""

from __future__ import annotations

from dataclasses import dataclass, field

KUBERNETES_VERSION = "v1.34.3"
ETCD_IMAGE_TAG = "3.6.5-0"  # kubeadm v1.34.3 cmd/kubeadm/app/constants: DefaultEtcdVersion
COREDNS_VERSION = "v1.12.1"  # kubeadm v1.34.3: CoreDNSVersion
PAUSE_VERSION = "3.10.1"  # kubeadm v1.34.3: PauseVersion
AGNHOST_VERSION = "2.56"  # k8s.io/kubernetes v1.34.3 test/images/agnhost/VERSION
KUBE_ROUTER_VERSION = "v2.1.0"
KUBE_NETWORK_POLICIES_VERSION = "v0.8.0"

_K = "k8s.io/component-base/version"
_C = "k8s.io/client-go/pkg/version"
# What hack/lib/version.sh stamps into every Kubernetes binary (kubeadm picks its defaults from it).
KUBERNETES_LDFLAGS = " ".join(
    f"-X {pkg}.{var}={value}"
    for pkg in (_K, _C)
    for var, value in (
        ("gitVersion", KUBERNETES_VERSION),
        ("gitMajor", "1"),
        ("gitMinor", "34"),
        ("gitTreeState", "clean"),
        ("buildDate", "2025-12-09T00:00:00Z"),
    )
)


@dataclass(frozen=True)
class GoComponent:
    name: str  # folder under go/
    toolchain: str
    packages: tuple[str, ...]
    ldflags: str = ""
    why_toolchain: str = ""

    @property
    def binaries(self) -> list[str]:
        """What ``go build -o DIR/`` writes: one binary a package, named as the go command names it."""
        return [BINARY_OF.get(p, p.rsplit("/", 1)[-1]) for p in self.packages]


GO_COMPONENTS = (
    GoComponent("kind", "go1.26.3", ("sigs.k8s.io/kind",), why_toolchain="kind v0.32.0 .go-version"),
    GoComponent(
        "kubernetes",
        "go1.24.11",
        tuple(
            f"k8s.io/kubernetes/{p}"
            for p in (
                "cmd/kubeadm",
                "cmd/kubelet",
                "cmd/kubectl",
                "cmd/kube-apiserver",
                "cmd/kube-controller-manager",
                "cmd/kube-scheduler",
                "cmd/kube-proxy",
                "test/images/agnhost",
            )
        ),
        KUBERNETES_LDFLAGS,
        "Kubernetes v1.34.3 .go-version",
    ),
    GoComponent(
        "etcd", "go1.24.7", ("go.etcd.io/etcd/server/v3",), why_toolchain="etcd v3.6.5 go.mod toolchain"
    ),
    GoComponent(
        "kube-router",
        "go1.21.13",
        ("github.com/cloudnativelabs/kube-router/v2/cmd/kube-router",),
        why_toolchain="kube-router v2.1.0 Makefile: golang 1.21",
    ),
    GoComponent(
        "kube-network-policies",
        "go1.23.12",
        ("sigs.k8s.io/kube-network-policies/cmd",),
        why_toolchain="kube-network-policies v0.8.0 Dockerfile: golang 1.23",
    ),
    GoComponent(
        "crictl", "go1.24.11", ("sigs.k8s.io/cri-tools/cmd/crictl",), why_toolchain="cri-tools go 1.24"
    ),
    GoComponent(
        "coredns", "go1.23.12", ("github.com/coredns/coredns",), why_toolchain="CoreDNS v1.12.1 go 1.23"
    ),
)

# go build names a binary after the last element of its package path.
BINARY_OF = {"sigs.k8s.io/kube-network-policies/cmd": "cmd", "go.etcd.io/etcd/server/v3": "server"}


@dataclass(frozen=True)
class Image:
    """An image made from files: a base root filesystem ('' for none, 'net' for the Debian one with the
    packet-filter tools) plus binaries at paths, with its entrypoint."""

    ref: str
    base: str
    files: dict[str, str] = field(default_factory=dict)  # path in the image -> binary name in bin/
    entrypoint: tuple[str, ...] = ()
    user: str = ""
    needs: tuple[str, ...] = ()  # commands the suite runs in it: checked in the image once it is built


R = "registry.k8s.io"
AGNHOST_IMAGE = f"{R}/e2e-test-images/agnhost:{AGNHOST_VERSION}"
NODE_IMAGE = f"gim-netpol.local/node:{KUBERNETES_VERSION}"
NODE_STAGE_IMAGE = f"gim-netpol.local/node-stage:{KUBERNETES_VERSION}"  # the node before its images
IMAGES = (
    # The control plane kubeadm v1.34.3 deploys, under the names it asks for (kubeadm config images list).
    Image(f"{R}/kube-apiserver:{KUBERNETES_VERSION}", "", {"usr/local/bin/kube-apiserver": "kube-apiserver"}),
    Image(
        f"{R}/kube-controller-manager:{KUBERNETES_VERSION}",
        "",
        {"usr/local/bin/kube-controller-manager": "kube-controller-manager"},
    ),
    Image(f"{R}/kube-scheduler:{KUBERNETES_VERSION}", "", {"usr/local/bin/kube-scheduler": "kube-scheduler"}),
    Image(f"{R}/kube-proxy:{KUBERNETES_VERSION}", "net", {"usr/local/bin/kube-proxy": "kube-proxy"}),
    Image(f"{R}/etcd:{ETCD_IMAGE_TAG}", "", {"usr/local/bin/etcd": "server"}),
    Image(f"{R}/coredns/coredns:{COREDNS_VERSION}", "", {"coredns": "coredns"}, ("/coredns",)),
    Image(f"{R}/pause:{PAUSE_VERSION}", "", {"pause": "pause"}, ("/pause",), "65535:65535"),
    # The suite's probe image: agnhost, with what the suite execs beside it in the probe pods (batched
    # probes: /bin/sh; the cluster DNS: cat /etc/resolv.conf; held connections: bash's /dev/tcp), as the
    # upstream image (Alpine with bash) has them.
    Image(
        AGNHOST_IMAGE,
        "net",
        {"agnhost": "agnhost"},
        ("/agnhost",),
        needs=("/bin/sh", "cat", "bash"),
    ),
    # The enforcers, under the names of their upstream manifests (images of the same released version).
    Image(
        f"docker.io/cloudnativelabs/kube-router:{KUBE_ROUTER_VERSION}",
        "net",
        {"usr/local/bin/kube-router": "kube-router"},
        ("/usr/local/bin/kube-router",),
    ),
    Image(
        f"{R}/networking/kube-network-policies:{KUBE_NETWORK_POLICIES_VERSION}",
        "",
        {"bin/netpol": "cmd"},  # no entrypoint: its DaemonSet's args start with /bin/netpol (upstream CMD)
    ),
)


# Debian bookworm packages (debootstrap --variant=minbase --include=...).
NODE_PACKAGES = (
    "systemd,systemd-sysv,dbus,conntrack,iptables,nftables,ipset,iproute2,ethtool,util-linux,mount,kmod,"
    "libseccomp2,bash,ca-certificates,procps,containerd,runc,containernetworking-plugins,socat,jq"
)
NET_PACKAGES = "iptables,nftables,ipset,iproute2,conntrack,kmod,procps"
