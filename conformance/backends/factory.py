"""Opening the backend an invocation asked for, and the checks that must pass before it is opened."""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from conformance.backends.api_retry import RetryingBackend
from conformance.backends.base import Backend
from conformance.errors import UserError

if TYPE_CHECKING:
    from conformance.backends.tools import Tools


def preflight(options: dict[str, Any]) -> Tools | None:
    """Checks that a live backend can start; raises UserError (bad input) or BackendUnavailable. Nothing
    here creates, changes or connects to a cluster, but for the kind cluster a run will reuse, whose
    version is read (kubectl must be within one minor of it).

    For kind: the Calico manifests the run would install (``--no-download`` without
    ``--calico-manifests`` stops here), docker, then kind and kubectl, fetched here when missing so that a
    failed download stops the run before any test and the xdist workers find them in the cache. Returns
    them (``tools.Tools``), None for another backend."""
    from conformance.backends import preflight as checks
    from conformance.backends import tools

    if options["backend"] != "kind":
        checks.preflight(options["backend"], kubeconfig=options["kubeconfig"], context=options["context"])
        return None
    from conformance.backends import kind

    check_kind_inputs(options)
    no_download = options["no_download"]
    if options.get("cni", "calico") == "calico":
        kind.check_calico_source(
            options["calico_version"], options["calico_manifests"], no_download=no_download
        )
    created = kind.kubernetes_of(options.get("node_image") or kind.NODE_IMAGE) or tools.PINNED_SERVER
    reuse = options["reuse_cluster"]
    checks.check_kind(no_download=no_download, kubectl_server=None if reuse else created)
    kind_bin = tools.resolve_tool(tools.KIND, no_download=no_download)
    server = (kind.server_to_reuse(options["cluster_name"], kind_bin) if reuse else None) or created
    return tools.Tools(kind_bin, tools.resolve_tool(tools.KUBECTL, no_download=no_download, server=server))


def check_kind_inputs(options: dict[str, Any]) -> None:
    """The kind backend's inputs (its kind config, the Calico version, the files of --calico-manifests),
    checked as the cluster object checks them, before anything is fetched or created. Raises UserError
    naming the file."""
    from conformance.backends.kind import CALICO_VERSION, REPO_CONFIG, KindCluster

    KindCluster(
        options.get("cluster_name") or "gim-netpol",
        REPO_CONFIG,
        calico_version=options.get("calico_version") or CALICO_VERSION,
        calico_manifests_dir=options.get("calico_manifests"),
        no_download=bool(options.get("no_download")),
        enforcer=options.get("cni") or "calico",
    )


def run_state_dir(basetemp: Path, run_id: str) -> Path:
    """Where the xdist workers of ONE run share the kind cluster's state: new for every run, so a run
    that failed or was killed leaves nothing the next one replays.

    ``basetemp`` is pytest's: per run without xdist; per worker under xdist, inside the run's own
    basetemp (its parent). The run id (xdist's testrun uid, shared by the workers) names the folder."""
    base = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    return base / f"gim-netpol-run-{run_id}"


def model_backend(options: dict[str, Any]) -> Backend:
    """The model backend as the options describe it: CNI quirks, faults, latencies, nodes."""
    from conformance.backends.cni_profiles import parse_profile
    from conformance.backends.model import ModelBackend
    from conformance.backends.model_faults import LATENCIES, parse_faults
    from conformance.backends.model_nodes import DEFAULT_NODES

    return ModelBackend(
        cni=parse_profile(options.get("model_cni") or "drops"),
        faults=parse_faults(options.get("model_faults") or ""),
        latencies=LATENCIES[options.get("model_latencies") or "realistic"],
        probe_workers=options.get("probe_workers") or 16,
        probe_batch=probe_batch(options),
        pace=model_pace(options),
        nodes=options.get("model_nodes") or DEFAULT_NODES,
    )


def probe_batch(options: dict[str, Any]) -> bool:
    """``--probe-batch``: one exec per client pod per round (on, the default) or per probe (off)."""
    return (options.get("probe_batch") or "on") == "on"


def model_pace(options: dict[str, Any]) -> float:
    """Real seconds the model spends per simulated second: ``--model-pace``, else 0.01 under xdist (its
    scheduler hands tests to the worker that is free, judging by real time: with the model's real
    durations in the proportions of the live ones, the workers split the work as on a live cluster,
    and the simulated time of ``-n 2`` means something), 0 without."""
    pace = options.get("model_pace") or "auto"
    if pace != "auto":
        return parse_pace(pace)
    return 0.01 if os.environ.get("PYTEST_XDIST_WORKER") else 0.0


def parse_pace(text: str) -> float:
    """``--model-pace``: auto, or a number of seconds >= 0. Raises UserError."""
    try:
        pace = float(text)
    except ValueError:
        pace = -1.0
    if not pace >= 0:
        raise UserError(f"expected auto or a number of seconds >= 0, got {text!r}", source="--model-pace")
    return pace


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
    backend: Backend,
    run_id: str,
    shared_dir: Path,
    options: dict[str, Any],
    leftovers_dir: Path | None = None,
) -> Iterator[Backend]:
    """One xdist worker's (or the only process's) use of a cluster during a run.

    On exit the worker deletes the namespaces it created itself and has not deleted yet; the last
    worker of the run to leave then deletes whatever else carries the run's label (a crashed worker's).
    A worker never deletes namespaces another worker may still be testing (all workers share one run
    id). What could not be deleted is recorded in ``leftovers_dir`` for the session's last line.
    """
    shared = Path(shared_dir)
    shared.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(shared / f"gim-netpol-run-{run_id}.lock"))
    users = shared / f"gim-netpol-run-{run_id}.users"
    with lock:
        users.write_text(str(_count(users) + 1))
    try:
        yield backend
    finally:
        problems: list[str] = []
        mine = list(getattr(backend, "created_namespaces", []))
        try:
            if mine:
                backend.delete([_namespace(n) for n in mine])
        except Exception as exc:
            problems.append(" ".join(str(exc).split()))
        with lock:
            count = max(0, _count(users) - 1)
            if count:
                users.write_text(str(count))
            else:
                users.unlink(missing_ok=True)
            if count == 0 and not problems:
                try:
                    backend.delete_run(run_id)  # type: ignore[attr-defined]
                except Exception as exc:
                    problems.append(" ".join(str(exc).split()))
            if problems:
                where = Path(leftovers_dir) if leftovers_dir is not None else shared
                where.mkdir(parents=True, exist_ok=True)
                left = list(getattr(backend, "created_namespaces", mine))
                _record_leftovers(
                    leftovers_path(where, run_id), left, problems, cleanup_command(run_id, options)
                )
        with contextlib.suppress(Exception):
            backend.close()


def _count(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (OSError, ValueError):
        return 0


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
def open_backend(
    options: dict[str, Any], run_id: str, shared_dir: Path, leftovers_dir: Path | None = None
) -> Iterator[Backend]:
    """The backend for ``options``, its API calls retried for --api-retry-timeout. On exit each worker
    deletes what it created and the last one the run's leftovers; a kind cluster the run created is
    deleted (once, by the last xdist worker to leave) unless --keep-cluster."""
    name = options["backend"]
    retry_s = options.get("api_retry_timeout") or 60.0
    if name == "model":
        from conformance.backends.kind import CALICO_AVAILABLE_TIMEOUT_S

        backend = RetryingBackend(model_backend(options), retry_s)
        backend.start_enforcer(CALICO_AVAILABLE_TIMEOUT_S)  # type: ignore[attr-defined]
        with run_lifetime(backend, run_id, shared_dir, options, leftovers_dir) as live:
            yield live
        return

    from conformance.backends.kube import KubeBackend

    workers = options["probe_workers"]
    batch = probe_batch(options)
    if name == "existing":
        preflight(options)
        kube = KubeBackend(
            options["kubeconfig"],
            options["context"],
            name="existing",
            probe_workers=workers,
            probe_batch=batch,
        )
        with run_lifetime(RetryingBackend(kube, retry_s), run_id, shared_dir, options, leftovers_dir) as live:
            yield live
        return

    from conformance.backends.kind import (
        NODE_IMAGE,
        REPO_CONFIG,
        KindCluster,
        RunOwner,
        cluster_lock,
        private_kubeconfig,
        shared_cluster,
    )

    # Under the cluster's lock: never while another xdist worker of the run is creating the cluster,
    # whose version (read for a cluster to reuse) it would not give yet. The tools are in the cache.
    with cluster_lock(shared_dir, options["cluster_name"]):
        found = preflight(options)
    cluster = KindCluster(
        options["cluster_name"],
        REPO_CONFIG,
        calico_version=options["calico_version"],
        calico_manifests_dir=options["calico_manifests"],
        kubeconfig_path=private_kubeconfig(shared_dir, options["cluster_name"]),
        reuse=options["reuse_cluster"],
        keep=options["keep_cluster"],
        owner=RunOwner.this_run(run_id, options["keep_cluster"]),
        no_download=options["no_download"],
        node_image=options.get("node_image") or NODE_IMAGE,
        enforcer=options.get("cni") or "calico",
        node_memory=options.get("node_memory"),
        kind_bin=found.kind,
        kubectl_bin=found.kubectl,
    )
    with shared_cluster(cluster, shared_dir, run_id):
        for note in cluster.notes:  # e.g. a cluster left by a killed run was replaced
            warnings.warn(f"gim-netpol: {note}", stacklevel=1)
        kube = KubeBackend(
            str(cluster.kubeconfig_path),
            cluster.context,
            name="kind",
            probe_workers=workers,
            probe_batch=batch,
        )
        kube.started = cluster.started  # empty in the workers that found the cluster ready
        with run_lifetime(RetryingBackend(kube, retry_s), run_id, shared_dir, options, leftovers_dir) as live:
            yield live
