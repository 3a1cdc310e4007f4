"""The ``kind`` and ``kubectl`` executables the kind backend runs: the ones on PATH when they are
recent enough, else the pinned release fetched into a per-user cache and checked against its
published sha256 (so the first command needs docker only).

Where the releases are published, and how their checksums look:
- kind (kind.sigs.k8s.io "Quick Start", "Installing From Release Binaries", kind v0.32.0):
  ``https://kind.sigs.k8s.io/dl/<version>/kind-<os>-<arch>`` (site/layouts/index.redirects sends
  ``/dl/v*`` to the GitHub release assets). Each asset has ``<asset>.sha256sum`` beside it, written by
  ``shasum -a 256 "$f" > "$f".sha256sum`` (hack/release/build/cross.sh; RELEASE.md lists the assets):
  ``<64 hex>  kind-linux-amd64``.
- kubectl (kubernetes.io "Install and Set Up kubectl on Linux/macOS"):
  ``https://dl.k8s.io/release/<version>/bin/<os>/<arch>/kubectl`` and ``kubectl.sha256`` beside it,
  holding the bare digest.
The base URLs can be overridden (``GIM_NETPOL_KIND_URL``, ``GIM_NETPOL_KUBECTL_URL``), for a mirror.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from filelock import FileLock

from conformance.backends.base import BackendUnavailable

KIND_VERSION = "v0.32.0"
# The kubectl of the pinned node image's Kubernetes (conformance.backends.kind.NODE_IMAGE): kubectl
# supports one minor version of skew with the API server (kubernetes.io/releases/version-skew-policy).
KUBECTL_VERSION = "v1.34.8"

KIND_URL_ENV = "GIM_NETPOL_KIND_URL"
KUBECTL_URL_ENV = "GIM_NETPOL_KUBECTL_URL"
CACHE_ENV = "GIM_NETPOL_CACHE_DIR"
KIND_BASE_URL = "https://kind.sigs.k8s.io/dl"
KUBECTL_BASE_URL = "https://dl.k8s.io/release"

DOWNLOAD_TIMEOUT_S = 120.0
VERSION_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Tool:
    """One pinned executable: where its release and checksum are, and how to read a version."""

    name: str
    version: str
    url_env: str
    base_url: str
    install_doc: str

    def url(self, osname: str, arch: str) -> str:
        base = os.environ.get(self.url_env, self.base_url).rstrip("/")
        if self.name == "kind":
            return f"{base}/{self.version}/kind-{osname}-{arch}"
        return f"{base}/{self.version}/bin/{osname}/{arch}/kubectl"

    def checksum_url(self, osname: str, arch: str) -> str:
        return self.url(osname, arch) + (".sha256sum" if self.name == "kind" else ".sha256")

    def at(self, version: str) -> Tool:
        """The same tool at another release (kubectl for the Kubernetes version of a reused cluster)."""
        return replace(self, version=version)


KIND = Tool(
    "kind", KIND_VERSION, KIND_URL_ENV, KIND_BASE_URL, "https://kind.sigs.k8s.io/docs/user/quick-start/"
)
KUBECTL = Tool(
    "kubectl", KUBECTL_VERSION, KUBECTL_URL_ENV, KUBECTL_BASE_URL, "https://kubernetes.io/docs/tasks/tools/"
)


def _version_tuple(text: str) -> tuple[int, ...] | None:
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(p) for p in m.groups()) if m else None


def platform_pair() -> tuple[str, str]:
    """The release's ``<os>``, ``<arch>`` for this machine (linux/darwin, amd64/arm64)."""
    osname = {"linux": "linux", "darwin": "darwin"}.get(sys.platform)
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    if osname is None or arch is None:
        raise BackendUnavailable(
            f"no pinned kind/kubectl release for {sys.platform}/{platform.machine()}: install kind "
            f"{KIND_VERSION} and kubectl yourself and put them on PATH"
        )
    return osname, arch


def cache_dir() -> Path:
    """Per user: $GIM_NETPOL_CACHE_DIR, else $XDG_CACHE_HOME/gim-netpol, else ~/.cache/gim-netpol."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "gim-netpol"


def installed_version(tool: Tool, exe: str) -> tuple[int, ...] | None:
    """``kind version`` prints ``kind v0.32.0 go1.x linux/amd64`` (pkg/cmd/kind/version, DisplayVersion);
    ``kubectl version --client -o json`` has ``clientVersion.gitVersion``."""
    argv = [exe, "version"] if tool.name == "kind" else [exe, "version", "--client", "-o", "json"]
    try:
        out = subprocess.run(
            argv, capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, stdin=subprocess.DEVNULL
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    if tool.name == "kubectl":
        try:
            out = json.loads(out)["clientVersion"]["gitVersion"]
        except (ValueError, KeyError, TypeError):
            return None
    return _version_tuple(out)


@dataclass(frozen=True)
class ApiServer:
    """The Kubernetes version kubectl will talk to, and where it comes from (for messages, e.g. "of the
    pinned node image"): the node image's Kubernetes for a cluster the run creates, the API server's own
    /version for one it reuses."""

    version: str
    what: str

    def minor(self) -> tuple[int, int] | None:
        found = _version_tuple(self.version)
        return (found[0], found[1]) if found else None


# A cluster the run creates runs the pinned node image, whose Kubernetes is KUBECTL_VERSION.
PINNED_SERVER = ApiServer(KUBECTL_VERSION, "of the pinned node image")


def fits(tool: Tool, found: tuple[int, ...], server: ApiServer = PINNED_SERVER) -> bool:
    """kind: at least the pinned release. kubectl: within one minor of the API server, as kubectl's skew
    policy says (kubernetes.io/releases/version-skew-policy/#kubectl: "kubectl is supported within one
    minor version (older or newer) of kube-apiserver")."""
    if tool.name == "kind":
        pinned = _version_tuple(tool.version)
        return pinned is not None and found >= pinned
    minor = server.minor()
    return minor is not None and found[0] == minor[0] and abs(found[1] - minor[1]) <= 1


def needed(tool: Tool, server: ApiServer = PINNED_SERVER) -> str:
    """What would do, in words: ``kind v0.32.0 or later``, ``kubectl v1.33 to v1.35 (...)``."""
    minor = server.minor()
    if tool.name == "kind" or minor is None:
        return f"{tool.name} {tool.version} or later"
    major, mid = minor
    return (
        f"{tool.name} v{major}.{max(mid - 1, 0)} to v{major}.{mid + 1} (kubectl's skew policy: one minor "
        f"of the API server, here Kubernetes {server.version}, {server.what})"
    )


def on_path(tool: Tool) -> tuple[str | None, tuple[int, ...] | None]:
    """The tool on PATH (or None) and the version it reports (or None when it reports none)."""
    exe = shutil.which(tool.name)
    return exe, (installed_version(tool, exe) if exe else None)


def usable_on_path(tool: Tool, server: ApiServer = PINNED_SERVER) -> str | None:
    """The tool on PATH if its version fits (``fits``)."""
    exe, found = on_path(tool)
    return exe if exe and found and fits(tool, found, server) else None


def missing_message(tool: Tool, server: ApiServer = PINNED_SERVER) -> str:
    """One line: what is on PATH (path and version, if anything), what is needed, and how to get it, when
    the tool may not be fetched (--no-download)."""
    exe, found = on_path(tool)
    need = needed(tool, server)
    how = f"install it ({tool.install_doc}) or run without --no-download"
    if exe is None:
        return f"{need} not found on PATH and --no-download forbids fetching it: {how}"
    version = "v" + ".".join(map(str, found)) if found else "of unknown version (it printed none)"
    return (
        f"{tool.name} on PATH ({exe}) is {version}, but {need} is needed and --no-download forbids "
        f"fetching it: {how}"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _get(url: str, timeout_s: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (https, or a mirror)
        return resp.read()


def published_sha256(tool: Tool, osname: str, arch: str, timeout_s: float) -> str:
    """The digest published beside the release: the first field of ``<asset>.sha256sum`` (kind) or of
    ``kubectl.sha256`` (bare digest)."""
    url = tool.checksum_url(osname, arch)
    try:
        text = _get(url, timeout_s).decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        raise BackendUnavailable(
            f"cannot get the published checksum of {tool.name} {tool.version} ({url}: {_reason(exc)}): "
            f"an unverified binary is not used; install {tool.name} yourself or retry"
        ) from None
    fields = text.split()
    if not fields or not re.fullmatch(r"[0-9a-fA-F]{64}", fields[0]):
        raise BackendUnavailable(f"{url} holds no sha256 digest: {tool.name} {tool.version} is not used")
    return fields[0].lower()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc)


def download(tool: Tool, *, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """The pinned release of ``tool`` in the cache, fetched and verified if it is not there yet."""
    osname, arch = platform_pair()
    folder = cache_dir() / f"{tool.name}-{tool.version}-{osname}-{arch}"
    new_cache = not folder.parent.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return _download_into(folder, tool, osname, arch, timeout_s)
    except BaseException:
        _tidy(folder, new_cache)
        raise


def _tidy(folder: Path, new_cache: bool) -> None:
    """After a failed download: the folder and its lock file, if nothing else is in it (another run may
    be fetching into it), and the cache folder if this call made it and it is empty again."""
    try:
        if [p.name for p in folder.iterdir()] == [".lock"]:
            (folder / ".lock").unlink()
            folder.rmdir()
            if new_cache:
                folder.parent.rmdir()  # only if empty: OSError otherwise
    except OSError:
        pass


def _download_into(folder: Path, tool: Tool, osname: str, arch: str, timeout_s: float) -> Path:
    exe = folder / tool.name
    recorded = folder / f"{tool.name}.sha256"
    with FileLock(str(folder / ".lock")):  # xdist workers and concurrent runs fetch it once
        folder.mkdir(parents=True, exist_ok=True)  # a concurrent run's failure may have removed it
        if exe.is_file() and recorded.is_file() and _sha256(exe) == recorded.read_text().strip():
            return exe
        expected = published_sha256(tool, osname, arch, timeout_s)
        url = tool.url(osname, arch)
        sys.stderr.write(f"gim-netpol: fetching {tool.name} {tool.version} from {url} into {folder}\n")
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{tool.name}-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_get(url, timeout_s))
            actual = _sha256(tmp)
            if actual != expected:
                raise BackendUnavailable(
                    f"{tool.name} {tool.version} from {url} has sha256 {actual}, "
                    f"not the published {expected}: not used (a proxy or mirror may have altered it)"
                )
            tmp.chmod(0o755)
            tmp.replace(exe)
            recorded.write_text(expected + "\n")
        except (urllib.error.URLError, OSError) as exc:
            raise BackendUnavailable(
                f"cannot download {tool.name} {tool.version} ({url}: {_reason(exc)}): install it yourself "
                f"({tool.install_doc}) or retry"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)
    return exe


@dataclass(frozen=True)
class Tools:
    kind: str
    kubectl: str


def resolve_tool(tool: Tool, *, no_download: bool, server: ApiServer = PINNED_SERVER) -> str:
    """One tool: from PATH if it fits, else fetched (unless ``no_download``: then a one-line error saying
    what was found and what is needed). kubectl is fetched at the API server's own version."""
    exe = usable_on_path(tool, server)
    if exe is not None:
        return exe
    if no_download:
        raise BackendUnavailable(missing_message(tool, server))
    if tool.name == "kubectl" and server.minor() is not None:
        found = _version_tuple(server.version)
        tool = tool.at("v" + ".".join(map(str, found)))  # type: ignore[arg-type]
    return str(download(tool))


def resolve(*, no_download: bool, server: ApiServer = PINNED_SERVER) -> Tools:
    """kind and kubectl for the kind backend: from PATH if recent enough (kubectl: within one minor of
    ``server``), else fetched (unless ``no_download``, which makes a missing one a one-line error saying
    what to install)."""
    kind = resolve_tool(KIND, no_download=no_download)
    return Tools(kind=kind, kubectl=resolve_tool(KUBECTL, no_download=no_download, server=server))
