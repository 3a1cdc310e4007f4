#!/usr/bin/env python3
"""Builds everything kind needs, from Debian packages and the Go module proxy only: kind, a kind node image of
Kubernetes v1.34.3 with its control-plane images inside, agnhost, and the images of kube-router v2.1.0 and
kube-network-policies v0.8.0. Also makes this machine ready (a Docker engine able to start kind's privileged
nodes, walls that keep every container inside the machine) and checks the walls.

    python3 images/build.py            # build what is missing, print what to run next
    python3 images/build.py --check-walls-only

Idempotent: each step runs only when what it is built from changed (see steps.py); a warm run takes seconds.
Outputs: binaries in ``$GIM_NETPOL_CACHE_DIR/build/bin`` (default ``~/.cache/gim-netpol``), images in the
local Docker engine, and ``build/images.json`` naming them, which the suite's kind backend reads.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import components as c  # noqa: E402
import machine  # noqa: E402
from steps import BadInput, Log, Runner, Step, StepFailed, digest  # noqa: E402

HERE = Path(__file__).resolve().parent
GO_DIR = HERE / "go"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SUITE = "bookworm"


def cache_dir() -> Path:
    root = os.environ.get("GIM_NETPOL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "gim-netpol"
    )
    return Path(root) / "build"


def docker_image_exists(ref: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", ref], capture_output=True, stdin=subprocess.DEVNULL
        ).returncode
        == 0
    )


# --- Go binaries -----------------------------------------------------------------------------------------


def go_step(comp: c.GoComponent, bin_dir: Path) -> Step:
    out = bin_dir / comp.name
    manifest = GO_DIR / comp.name
    key = digest(manifest / "go.mod", manifest / "go.sum", comp.toolchain, *comp.packages, comp.ldflags)

    def build(log: Log) -> None:
        out.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "GOTOOLCHAIN": comp.toolchain,
            "CGO_ENABLED": "0",
            "GOFLAGS": "-mod=readonly",
        }
        log.run(
            [
                "go",
                "build",
                "-trimpath",
                "-ldflags",
                f"-s -w {comp.ldflags}".strip(),
                "-o",
                f"{out}/",
                *comp.packages,
            ],
            f"go:{comp.name}",
            cwd=manifest,
            env=env,
        )

    return Step(f"go:{comp.name}", key, lambda _k: all((out / n).is_file() for n in comp.binaries), build)


def module_dir(module: str, version: str, log: Log, step: str) -> Path:
    """Where the go command unpacked a module the Go steps downloaded."""
    out = log.run(["go", "env", "GOMODCACHE"], step).strip()
    path = Path(out) / f"{module}@{version}"
    if not path.is_dir():
        raise StepFailed(
            step, f"{module}@{version} is not in the module cache ({path}): run the go steps first"
        )
    return path


def pause_step(bin_dir: Path) -> Step:
    """The pause container's binary, compiled from build/pause/linux/pause.c of the Kubernetes module
    (its Makefile: a static C build with -DVERSION)."""
    out = bin_dir / "pause" / "pause"
    key = digest(GO_DIR / "kubernetes" / "go.sum", c.PAUSE_VERSION)

    def build(log: Log) -> None:
        src = (
            module_dir("k8s.io/kubernetes", c.KUBERNETES_VERSION, log, "pause") / "build/pause/linux/pause.c"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        log.run(
            [
                "gcc",
                "-Os",
                "-Wall",
                "-Werror",
                "-static",
                f"-DVERSION=v{c.PAUSE_VERSION}",
                "-o",
                str(out),
                str(src),
            ],
            "pause",
        )
        log.run(["strip", str(out)], "pause")

    return Step("pause", key, lambda _k: out.is_file(), build)


# --- Debian root filesystems ----------------------------------------------------------------------------


def rootfs_step(name: str, packages: str, root: Path) -> tuple[Step, Callable[[], Path]]:
    key = digest(DEBIAN_SUITE, DEBIAN_MIRROR, packages)
    target = root / f"{name}-{key}"

    def build(log: Log) -> None:
        if target.exists():
            shutil.rmtree(target)
        partial = target.with_name(target.name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)
        log.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={packages}",
                DEBIAN_SUITE,
                str(partial),
                DEBIAN_MIRROR,
            ],
            f"rootfs:{name}",
            timeout=1800,
        )
        # apt's caches are not part of an image
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for f in (partial / sub).glob("*"):
                if f.is_file():
                    f.unlink()
        partial.rename(target)

    return Step(f"rootfs:{name}", key, lambda _k: target.is_dir(), build), lambda: target.resolve()


# --- images ---------------------------------------------------------------------------------------------


class Layer:
    """A root filesystem as a tar stream: an optional base folder, then files, folders and links laid over it.
    A path laid over replaces the base's (the base's entry is left out: an image layer may not hold a path
    twice); a folder the base already has is kept as it is."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[tarfile.TarInfo, bytes | Path | None]] = {}

    def _info(self, path: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(path)
        info.type, info.mode, info.mtime = kind, mode, 0
        return info

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        info = self._info(path, tarfile.REGTYPE, mode)
        info.size = len(data)
        self.entries[path] = (info, data)

    def copy(self, path: str, src: Path, mode: int = 0o755) -> None:
        real = src.resolve()
        info = self._info(path, tarfile.REGTYPE, mode)
        info.size = real.stat().st_size
        self.entries[path] = (info, real)

    def dir(self, path: str, mode: int = 0o755) -> None:
        self.entries.setdefault(path, (self._info(path, tarfile.DIRTYPE, mode), None))

    def link(self, path: str, target: str) -> None:
        info = self._info(path, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.entries[path] = (info, None)

    def write(
        self, tar: tarfile.TarFile, base: Path | None = None, drop: Callable[[str], bool] = lambda _n: False
    ) -> None:
        written: set[str] = set()
        if base is not None:

            def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
                name = info.name.removeprefix("./").lstrip("/")
                laid = self.entries.get(name)
                if drop(name) or (laid is not None and not (laid[0].isdir() and info.isdir())):
                    return None
                written.add(name)
                return info

            tar.add(str(base), arcname=".", filter=keep)
        for name, (info, payload) in sorted(self.entries.items()):
            if name in written:
                continue
            if isinstance(payload, Path):
                with payload.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info, io.BytesIO(payload) if payload is not None else None)


MINIMAL_ETC = {
    "etc/passwd": b"root:x:0:0:root:/root:/sbin/nologin\n"
    b"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
    "etc/group": b"root:x:0:\nnobody:x:65534:\n",
    "etc/nsswitch.conf": b"hosts: files dns\n",
}


def docker_import(
    ref: str, changes: list[str], write: Callable[[tarfile.TarFile], None], log: Log, step: str
) -> None:
    """``docker import`` of a tar written on the fly."""
    argv = ["docker", "import", *(a for ch in changes for a in ("--change", ch)), "-", ref]
    with log.path.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=out)
        assert proc.stdin is not None
        try:
            with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
                write(tar)
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()
        code = proc.wait()
    if code != 0:
        raise StepFailed(step, f"`docker import` of {ref} exited {code}: {log.last_line()}")


def image_step(
    image: c.Image, bin_dir: Path, bin_keys: dict[str, str], net_root: Callable[[], Path], net_key: str
) -> Step:
    sources = {path: bin_dir / comp for path, comp in _binary_sources(image).items()}
    key = digest(
        repr(image),
        *(bin_keys[str(p.parent.name)] for p in sources.values()),
        net_key if image.base == "net" else "",
    )

    def build(log: Log) -> None:
        def write(tar: tarfile.TarFile) -> None:
            layer = Layer()
            if image.base != "net":
                for path, data in MINIMAL_ETC.items():
                    layer.file(path, data)
                layer.dir("etc")
                layer.dir("tmp", 0o1777)
            for path, src in sources.items():
                parts = Path(path).parts
                for i in range(1, len(parts)):
                    layer.dir("/".join(parts[:i]))
                layer.copy(path, src)
            layer.write(tar, net_root() if image.base == "net" else None)

        changes = []
        if image.entrypoint:
            changes.append(f"ENTRYPOINT {json.dumps(list(image.entrypoint))}")
        if image.user:
            changes.append(f"USER {image.user}")
        docker_import(image.ref, changes, write, log, f"image:{image.ref}")
        if image.needs:
            check = " && ".join(f"command -v {n} >/dev/null" for n in image.needs)
            log.run(
                [
                    "docker",
                    "run",
                    "--rm",
                    "--network=none",
                    "--entrypoint",
                    "/bin/sh",
                    image.ref,
                    "-c",
                    check,
                ],
                f"image:{image.ref}",
            )

    return Step(f"image:{image.ref}", key, lambda _k: docker_image_exists(image.ref), build)


def _binary_sources(image: c.Image) -> dict[str, Path]:
    """Each file of the image -> <component>/<binary> under bin/."""
    owner = {"pause": "pause/pause"}
    found = {}
    for path, binary in image.files.items():
        if binary in owner:
            found[path] = Path(owner[binary])
            continue
        for comp in c.GO_COMPONENTS:
            if binary in comp.binaries:
                found[path] = Path(comp.name) / binary
                break
        else:
            raise BadInput(f"image {image.ref}: no build step makes {binary!r}")
    return found


# --- the node image -------------------------------------------------------------------------------------

# kind v0.32.0 images/base/Dockerfile: the unit links removed after the packages are installed.
_NODE_DROP_PREFIXES = (
    "lib/systemd/system/multi-user.target.wants/",
    "lib/systemd/system/local-fs.target.wants/",
    "lib/systemd/system/basic.target.wants/",
    "usr/lib/systemd/system/multi-user.target.wants/",
    "usr/lib/systemd/system/local-fs.target.wants/",
    "usr/lib/systemd/system/basic.target.wants/",
)


def _node_drop(name: str) -> bool:
    name = name.lstrip("./")
    if name.startswith(_NODE_DROP_PREFIXES):
        return True
    if name.startswith("etc/systemd/system/") and ".wants/" in name:
        return True
    base = name.rsplit("/", 1)[-1]
    if "/sockets.target.wants/" in name and ("udev" in base or "initctl" in base):
        return True
    return name.endswith("sysinit.target.wants/systemd-tmpfiles-setup.service")


def node_stage_step(bin_dir: Path, node_root: Callable[[], Path], keys: dict[str, str]) -> Step:
    """The node's root filesystem: Debian bookworm with systemd and containerd, kind v0.32.0's base files
    (images/base/files of the sigs.k8s.io/kind module), the Kubernetes binaries and CNI plugins, set up as
    kind's base Dockerfile does (units enabled and masked, journald without kmsg)."""
    ref = c.NODE_STAGE_IMAGE
    key = digest(
        keys["rootfs:node"],
        keys["go:kubernetes"],
        keys["go:crictl"],
        keys["go:kind"],
        Path(__file__),
        Path(c.__file__),
    )

    def build(log: Log) -> None:
        kind_files = module_dir("sigs.k8s.io/kind", "v0.32.0", log, "node-stage") / "images/base/files"
        root = node_root()
        config = (kind_files / "etc/containerd/config.toml").read_text()
        # containerd inside a node whose sandbox forbids lowering oom_score_adj (kind sets the same for
        # rootless, entrypoint), and the pause image kubeadm v1.34.3 uses.
        config = config.replace("restrict_oom_score_adj = false", "restrict_oom_score_adj = true")
        config = config.replace(
            'sandbox_image = "registry.k8s.io/pause:3.10"',
            f'sandbox_image = "registry.k8s.io/pause:{c.PAUSE_VERSION}"',
        )
        spec = json.loads(log.run(["chroot", str(root), "ctr", "oci", "spec"], "node-stage"))
        spec.setdefault("hooks", {}).setdefault("createContainer", []).append(
            {"path": "/kind/bin/mount-product-files.sh"}
        )
        spec.get("process", {}).pop("rlimits", None)
        journald = (root / "etc/systemd/journald.conf").read_text() + "ReadKMsg=no\n"

        layer = Layer()
        for src in sorted(kind_files.rglob("*")):
            rel = src.relative_to(kind_files).as_posix()
            if rel.startswith("LICENSES"):
                continue
            if src.is_dir():
                layer.dir(rel)
            else:
                executable = rel.startswith(("usr/local/bin/", "kind/bin/"))
                layer.file(rel, src.read_bytes(), 0o755 if executable else 0o644)
        layer.file("etc/containerd/config.toml", config.encode())
        layer.file("etc/containerd/cri-base.json", json.dumps(spec, indent=2).encode())
        layer.file("etc/systemd/journald.conf", journald.encode())
        layer.file("kind/version", f"{c.KUBERNETES_VERSION}\n".encode())
        for folder in (
            "etc/kubernetes",
            "etc/kubernetes/manifests",
            "etc/systemd/system/multi-user.target.wants",
        ):
            layer.dir(folder)
        for unit in ("kubelet", "containerd", "undo-mount-hacks"):
            layer.link(
                f"etc/systemd/system/multi-user.target.wants/{unit}.service",
                f"/etc/systemd/system/{unit}.service",
            )
        layer.link("etc/systemd/system/systemd-binfmt.service", "/dev/null")
        # kind's units run containerd from /usr/local/bin; Debian installs it in /usr/bin.
        layer.link("usr/local/bin/containerd", "/usr/bin/containerd")
        for name in ("kubeadm", "kubelet", "kubectl"):
            layer.copy(f"usr/bin/{name}", bin_dir / "kubernetes" / name)
        layer.copy("usr/local/bin/crictl", bin_dir / "crictl" / "crictl")
        layer.dir("opt/cni")
        layer.dir("opt/cni/bin")
        for plugin in sorted((root / "usr/lib/cni").iterdir()):
            layer.link(f"opt/cni/bin/{plugin.name}", f"/usr/lib/cni/{plugin.name}")

        def write(tar: tarfile.TarFile) -> None:
            layer.write(tar, root, _node_drop)

        docker_import(ref, [], write, log, "node-stage")

    return Step("node-stage", key, lambda _k: docker_image_exists(ref), build)


def node_step(keys: dict[str, str]) -> Step:
    """The node image: the stage with every image of IMAGES in its containerd, imported as kind's
    ``kind build node-image`` imports them (pkg/build/nodeimage/imageimporter.go: ``ctr --namespace=k8s.io
    images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests -``), so
    that a cluster needs no registry and no ``kind load``."""
    key = digest(keys["node-stage"], *(keys[f"image:{i.ref}"] for i in c.IMAGES))
    container = "gim-netpol-build-node"

    def build(log: Log) -> None:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
        log.run(
            [
                "docker",
                "run",
                "-d",
                "--privileged",
                "--name",
                container,
                "--entrypoint",
                "/usr/bin/containerd",
                c.NODE_STAGE_IMAGE,
            ],
            "node",
        )
        try:
            deadline = time.monotonic() + 60
            while subprocess.run(
                ["docker", "exec", container, "ctr", "version"], capture_output=True
            ).returncode:
                if time.monotonic() > deadline:
                    raise StepFailed(
                        "node", f"containerd did not start in the build container (docker logs {container})"
                    )
                time.sleep(1)
            for image in c.IMAGES:
                saved = subprocess.run(["docker", "save", image.ref], capture_output=True)
                if saved.returncode:
                    raise StepFailed("node", f"docker save {image.ref}: {saved.stderr.decode().strip()}")
                log.run(
                    [
                        "docker",
                        "exec",
                        "-i",
                        container,
                        "ctr",
                        "--namespace=k8s.io",
                        "images",
                        "import",
                        "--label=io.cri-containerd.pinned=pinned",
                        "--all-platforms",
                        "--no-unpack",
                        "--digests",
                        "-",
                    ],
                    "node",
                    stdin=saved.stdout,
                )
            log.run(["docker", "stop", container], "node")
            log.run(
                [
                    "docker",
                    "commit",
                    "--change",
                    'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
                    "--change",
                    "CMD []",
                    "--change",
                    "ENV container=docker",
                    # kind's base image also sets STOPSIGNAL SIGRTMIN+3, which Docker 20.10's commit
                    # cannot set: kind removes nodes with `docker rm -f`, which does not use it.
                    container,
                    c.NODE_IMAGE,
                ],
                "node",
            )
        finally:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True)

    return Step("node", key, lambda _k: docker_image_exists(c.NODE_IMAGE), build)


# --- the whole build ------------------------------------------------------------------------------------


def plan(state: Path) -> list[Step]:
    bin_dir = state / "bin"
    steps: list[Step] = [go_step(comp, bin_dir) for comp in c.GO_COMPONENTS]
    steps.append(pause_step(bin_dir))
    node_rootfs, node_root = rootfs_step("node", c.NODE_PACKAGES, state / "rootfs")
    net_rootfs, net_root = rootfs_step("net", c.NET_PACKAGES, state / "rootfs")
    steps += [node_rootfs, net_rootfs]
    bin_keys = {s.name.split(":", 1)[-1]: s.key for s in steps}
    steps += [image_step(image, bin_dir, bin_keys, net_root, net_rootfs.key) for image in c.IMAGES]
    steps.append(node_stage_step(bin_dir, node_root, {s.name: s.key for s in steps}))
    steps.append(node_step({s.name: s.key for s in steps}))
    return steps


def images_record(state: Path) -> dict:
    return {
        "node_image": c.NODE_IMAGE,
        "kubernetes_version": c.KUBERNETES_VERSION,
        "probe_image": c.AGNHOST_IMAGE,
        "kind": str(state / "bin" / "kind" / "kind"),
        "kubectl": str(state / "bin" / "kubernetes" / "kubectl"),
        "built_by": "images/build.py",
    }


def check_walls(cluster: str = "") -> str:
    """A connect to an address outside the machine, from a container or, with ``cluster``, from a pod of
    that kind cluster: it must time out, its packets counted by the DROP rules."""
    connect = ["/agnhost", "connect", f"{machine.OUTSIDE_PROBE}:80", "--timeout", "3s"]
    if not cluster:
        return machine.check_walls(
            ["docker", "run", "--rm", "--entrypoint", connect[0], c.AGNHOST_IMAGE, *connect[1:]]
        )
    tools = {
        name: cache_dir() / "bin" / folder / name
        for name, folder in (("kind", "kind"), ("kubectl", "kubernetes"))
    }
    kind, kubectl = (str(p) if p.is_file() else p.name for p in tools.values())
    with tempfile.TemporaryDirectory() as private:  # the cluster's admin credentials, for this check only
        kubeconfig = Path(private) / "kubeconfig"
        got = subprocess.run([kind, "get", "kubeconfig", "--name", cluster], capture_output=True, text=True)
        if got.returncode != 0:
            raise machine.MachineError(
                f"no kind cluster {cluster!r} to check the walls from: {got.stderr.strip()}"
            )
        kubeconfig.write_text(got.stdout)
        argv = [
            kubectl,
            "--kubeconfig",
            str(kubeconfig),
            "run",
            "gim-netpol-walls",
            "--rm",
            "-i",
            "--restart=Never",
            f"--image={c.AGNHOST_IMAGE}",
            "--image-pull-policy=IfNotPresent",
            "--pod-running-timeout=2m",
            "--command",
            "--",
            *connect,
        ]
        return f"from a pod of kind cluster {cluster}: " + machine.check_walls(argv)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints its usage too)
        self.exit(2, f"images/build.py: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check-walls-only", action="store_true", help="only make the machine ready and check"
    )
    parser.add_argument(
        "--check-walls-pod",
        metavar="CLUSTER",
        default="",
        help="also check the walls from a pod of this running kind cluster",
    )
    args = parser.parse_args(argv)
    state = cache_dir()
    start = time.monotonic()
    try:
        print(f"docker engine: {machine.ensure_docker(state)}", flush=True)
        print(f"walls: {len(machine.install_walls())} rules and routes in place", flush=True)
        if not args.check_walls_only:
            runner = Runner(state)
            runner.run(plan(state))
            runner.record(state / "images.json", images_record(state))
        print(f"walls checked: {check_walls()}", flush=True)
        if args.check_walls_pod:
            print(f"walls checked: {check_walls(args.check_walls_pod)}", flush=True)
    except BadInput as exc:
        print(f"images/build.py: {exc}", file=sys.stderr)
        return 2
    except (StepFailed, machine.MachineError) as exc:
        print(f"images/build.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("images/build.py: interrupted", file=sys.stderr)
        return 130
    print(f"done in {time.monotonic() - start:.0f} s; images listed in {state / 'images.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
