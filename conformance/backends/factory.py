"""Opening the backend an invocation asked for, and the checks that must pass before it is opened."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

from conformance.backends.api_retry import RetryingBackend
from conformance.backends.base import Backend


def preflight(options: dict[str, Any]) -> None:
    """Fast checks (no cluster call) that a live backend can start; raises BackendUnavailable."""
    from conformance.backends import preflight as checks

    checks.preflight(options["backend"], kubeconfig=options["kubeconfig"], context=options["context"])


def model_backend(options: dict[str, Any]) -> Backend:
    """The model backend as the options describe it: CNI quirks, faults, latencies."""
    from conformance.backends.cni_profiles import parse_profile
    from conformance.backends.model import ModelBackend
    from conformance.backends.model_faults import LATENCIES, parse_faults

    return ModelBackend(
        cni=parse_profile(options.get("model_cni") or "drops"),
        faults=parse_faults(options.get("model_faults") or ""),
        latencies=LATENCIES[options.get("model_latencies") or "realistic"],
        probe_workers=options.get("probe_workers") or 16,
    )


def cleanup_command(run_id: str, options: dict[str, Any]) -> str:
    parts = ["gim-netpol", "cleanup", "--run-id", run_id]
    for flag in ("kubeconfig", "context"):
        if options.get(flag):
            parts += [f"--{flag}", str(options[flag])]
    return " ".join(parts)


def leftovers_path(shared_dir: Path, run_id: str) -> Path:
    return Path(shared_dir) / f"gim-netpol-run-{run_id}-leftovers.json"


@contextlib.contextmanager
def run_lifetime(
    backend: Backend, run_id: str, shared_dir: Path, options: dict[str, Any]
) -> Iterator[Backend]:
    """One xdist worker's (or the only process's) use of a cluster during a run.

    On exit the worker deletes the namespaces it created itself; the last worker of the run to leave
    then deletes whatever else carries the run's label (a crashed worker's). A worker never deletes
    namespaces another worker may still be testing (all workers share one run id). What could not be
    deleted is recorded in ``shared_dir`` for the session's last line (see ``leftovers_path``).
    """
    shared = Path(shared_dir)
    shared.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(shared / f"gim-netpol-run-{run_id}.lock"))
    users = shared / f"gim-netpol-run-{run_id}.users"
    with lock:
        users.write_text(str(int(users.read_text() or 0) + 1 if users.exists() else 1))
    try:
        yield backend
    finally:
        problems: list[str] = []
        mine = [n for n in getattr(backend, "created_namespaces", []) if n]
        try:
            phases = backend.namespace_phases()
            backend.delete([_namespace(n) for n in mine if phases.get(n) == "Active"])
        except Exception as exc:
            problems.append(" ".join(str(exc).split()))
        with lock:
            count = max(0, int(users.read_text() or 1) - 1)
            users.write_text(str(count))
            if count == 0:
                try:
                    backend.delete_run(run_id)
                except Exception as exc:
                    problems.append(" ".join(str(exc).split()))
            if problems:
                _record_leftovers(
                    leftovers_path(shared, run_id), mine, problems, cleanup_command(run_id, options)
                )
        with contextlib.suppress(Exception):
            backend.close()


def _record_leftovers(path: Path, namespaces: list[str], problems: list[str], command: str) -> None:
    data = json.loads(path.read_text()) if path.exists() else {"namespaces": [], "problems": []}
    data["namespaces"] = sorted({*data["namespaces"], *namespaces})
    data["problems"] = [*data["problems"], *problems][:5]
    data["command"] = command
    path.write_text(json.dumps(data))


def leftovers_line(shared_dir: Path, run_id: str) -> str | None:
    """The session's last line when cleanup failed: what was left and the command that removes it."""
    path = leftovers_path(shared_dir, run_id)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    listed = ", ".join(data["namespaces"]) or "namespaces labelled with the run id"
    return (
        f"gim-netpol: cleanup failed ({data['problems'][0] if data['problems'] else 'unknown error'}); "
        f"left in the cluster: {listed}; remove them with: {data['command']}"
    )


def _namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


@contextlib.contextmanager
def open_backend(options: dict[str, Any], run_id: str, shared_dir: Path) -> Iterator[Backend]:
    """The backend for ``options``, its API calls retried for --api-retry-timeout. On exit each worker
    deletes what it created and the last one the run's leftovers; a kind cluster the run created is
    deleted (once, by the last xdist worker to leave) unless --keep-cluster."""
    name = options["backend"]
    retry_s = options.get("api_retry_timeout") or 60.0
    if name == "model":
        backend = RetryingBackend(model_backend(options), retry_s)
        with run_lifetime(backend, run_id, shared_dir, options) as live:
            yield live
        return

    from conformance.backends.kube import KubeBackend

    preflight(options)
    workers = options["probe_workers"]
    if name == "existing":
        kube = KubeBackend(options["kubeconfig"], options["context"], name="existing", probe_workers=workers)
        with run_lifetime(RetryingBackend(kube, retry_s), run_id, shared_dir, options) as live:
            yield live
        return

    from conformance.backends.kind import REPO_CONFIG, KindCluster, shared_cluster

    cluster = KindCluster(
        options["cluster_name"],
        REPO_CONFIG,
        calico_version=options["calico_version"],
        calico_manifests_dir=options["calico_manifests"],
        kubeconfig_path=shared_dir / f"kubeconfig-{options['cluster_name']}",
        reuse=options["reuse_cluster"],
        keep=options["keep_cluster"],
    )
    with shared_cluster(cluster, shared_dir):
        kube = KubeBackend(str(cluster.kubeconfig_path), cluster.context, name="kind", probe_workers=workers)
        with run_lifetime(RetryingBackend(kube, retry_s), run_id, shared_dir, options) as live:
            yield live
