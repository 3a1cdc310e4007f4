"""Checks run before anything else: is the chosen backend usable at all?

They take well under two seconds when something is missing, and fail with ONE message that names
everything missing and how to fix it (or how to run without a cluster).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from conformance.backends import tools
from conformance.backends.base import BackendUnavailable
from conformance.errors import UserError
from conformance.netpol import yaml_guard

DOCKER_INSTALL = "https://docs.docker.com/engine/install/"
NO_CLUSTER_HINT = "to run without a cluster use --backend model"
EXISTING_HINT = "to use a cluster you already have: --backend existing --kubeconfig FILE [--context NAME]"

# `docker info` answers at once when the daemon is down; this only bounds a daemon that hangs.
DOCKER_TIMEOUT_S = 5.0


def _first_line(text: str) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _docker_problem(timeout_s: float) -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return f"docker client not found on PATH (install Docker: {DOCKER_INSTALL})"
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return f"docker daemon did not answer `docker info` within {timeout_s:g}s (is it stuck?)"
    except OSError as exc:
        return f"docker client cannot run ({exc})"
    # `docker info` prints what it knows of the client even without a daemon: the exit status decides.
    if result.returncode != 0:
        why = _first_line(result.stderr) or _first_line(result.stdout) or f"exit status {result.returncode}"
        return (
            f"docker daemon not reachable (`docker info`: {why}): start Docker "
            "(e.g. `sudo systemctl start docker`) or set DOCKER_HOST"
        )
    return None


def check_kind(
    *,
    no_download: bool = False,
    docker_timeout_s: float = DOCKER_TIMEOUT_S,
    kubectl_server: tools.ApiServer | None = tools.PINNED_SERVER,
) -> None:
    """The kind backend needs a running docker daemon. kind and kubectl (Calico's kind quickstart
    installs Calico with ``kubectl create -f``) are taken from PATH when recent enough, else fetched
    (conformance/backends/tools.py): only with ``no_download`` is a missing one a problem here.
    kubectl must be within one minor of ``kubectl_server``; None when that is a cluster to reuse, whose
    version is read later (factory.preflight), so kubectl is checked then."""
    problems = []
    docker = _docker_problem(docker_timeout_s)
    if docker:
        problems.append(docker)
    if no_download:
        if not tools.usable_on_path(tools.KIND):
            problems.append(tools.missing_message(tools.KIND))
        if kubectl_server is not None and not tools.usable_on_path(tools.KUBECTL, kubectl_server):
            problems.append(tools.missing_message(tools.KUBECTL, kubectl_server))
    if problems:
        raise BackendUnavailable(
            "kind backend unavailable: " + "; ".join(problems) + f". {NO_CLUSTER_HINT}; {EXISTING_HINT}."
        )


@dataclass(frozen=True, slots=True)
class KubeTarget:
    """The kubeconfig file(s) and the context an ``existing`` run talks to."""

    kubeconfig: tuple[str, ...]
    context: str


def kubeconfig_paths(kubeconfig: str | None) -> tuple[list[str], bool]:
    """The files kubectl would read, and whether they were named explicitly.

    kubectl's rules (kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/):
    --kubeconfig alone if given; else every file of $KUBECONFIG (os.pathsep-separated, merged);
    else ~/.kube/config.
    """
    if kubeconfig:
        return [kubeconfig], True
    env = os.environ.get("KUBECONFIG", "")
    listed = [p for p in env.split(os.pathsep) if p]
    if listed:
        return listed, False
    return [str(Path.home() / ".kube" / "config")], False


def check_existing(kubeconfig: str | None, context: str | None) -> KubeTarget:
    """The kubeconfig exists, parses, and names the context (or has a current-context)."""

    def unavailable(problem: str) -> BackendUnavailable:
        return BackendUnavailable(
            f"existing backend unavailable: {problem}. Pass --kubeconfig FILE and --context NAME as "
            f"kubectl takes them (or set KUBECONFIG); {NO_CLUSTER_HINT}."
        )

    paths, explicit = kubeconfig_paths(kubeconfig)
    present = [p for p in paths if Path(p).is_file()]
    if explicit and not present:
        raise unavailable(f"kubeconfig {paths[0]} not found")
    if not present:
        where = "$KUBECONFIG files " + ", ".join(paths) if os.environ.get("KUBECONFIG") else paths[0]
        raise unavailable(f"no kubeconfig: {where} not found")

    contexts: list[str] = []
    current = ""
    for path in present:  # merged as kubectl does: the first file to set a value wins
        try:
            doc = yaml_guard.load_first(Path(path).read_text(), path) or {}
        except UserError as exc:
            raise unavailable(f"kubeconfig {path} is unreadable ({exc.message})") from None
        except (OSError, yaml.YAMLError) as exc:
            raise unavailable(f"kubeconfig {path} is unreadable ({_first_line(str(exc))})") from None
        if not isinstance(doc, dict):
            raise unavailable(f"kubeconfig {path} is not a kubeconfig (no mapping at the top)")
        for entry in doc.get("contexts") or ():
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str) and name not in contexts:
                contexts.append(name)
        current = current or str(doc.get("current-context") or "")

    available = ", ".join(contexts) or "none"
    files = ", ".join(present)
    if context:
        if context not in contexts:
            raise unavailable(f"context {context!r} is not in {files} (contexts: {available})")
        return KubeTarget(tuple(present), context)
    if not current:
        raise unavailable(f"{files} has no current-context: pass --context NAME (contexts: {available})")
    if current not in contexts:
        raise unavailable(f"current-context {current!r} of {files} is not defined there")
    return KubeTarget(tuple(present), current)


def preflight(
    backend: str, *, kubeconfig: str | None = None, context: str | None = None, no_download: bool = False
) -> None:
    """Run the checks of ``backend`` ("kind", "existing"; "model" needs nothing)."""
    if backend == "kind":
        check_kind(no_download=no_download)
    elif backend == "existing":
        check_existing(kubeconfig, context)
