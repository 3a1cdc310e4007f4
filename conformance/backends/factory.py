"""Opening the backend an invocation asked for, and the checks that must pass before it is opened."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conformance.backends.base import Backend


def preflight(options: dict[str, Any]) -> None:
    """Checks (no cluster call) that a live backend can start; raises BackendUnavailable. For kind, the
    pinned kind/kubectl are fetched here when missing, so that a failed download stops the run before
    any test, and the xdist workers find them in the cache."""
    from conformance.backends import preflight as checks
    from conformance.backends import tools

    checks.preflight(
        options["backend"],
        kubeconfig=options["kubeconfig"],
        context=options["context"],
        no_download=options["no_download"],
    )
    if options["backend"] == "kind":
        tools.resolve(no_download=options["no_download"])


def run_state_dir(basetemp: Path, run_id: str) -> Path:
    """Where the xdist workers of ONE run share the kind cluster's state: new for every run, so a run
    that failed or was killed leaves nothing the next one replays.

    ``basetemp`` is pytest's: per run without xdist; per worker under xdist, inside the run's own
    basetemp (its parent). The run id (xdist's testrun uid, shared by the workers) names the folder."""
    base = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    return base / f"gim-netpol-run-{run_id}"


@contextlib.contextmanager
def _live(backend: Backend, run_id: str) -> Iterator[Backend]:
    try:
        yield backend
    finally:
        backend.delete_run(run_id)  # type: ignore[attr-defined]
        backend.close()


@contextlib.contextmanager
def open_backend(options: dict[str, Any], run_id: str, shared_dir: Path) -> Iterator[Backend]:
    """The backend for ``options``. On exit the run's namespaces are deleted, and a kind cluster the
    run created is deleted (once, by the last xdist worker to leave) unless --keep-cluster."""
    name = options["backend"]
    if name == "model":
        from conformance.backends.model import ModelBackend

        yield ModelBackend()
        return

    from conformance.backends.kube import KubeBackend

    preflight(options)
    workers = options["probe_workers"]
    if name == "existing":
        backend = KubeBackend(
            options["kubeconfig"], options["context"], name="existing", probe_workers=workers
        )
        with _live(backend, run_id) as live:
            yield live
        return

    from conformance.backends import tools
    from conformance.backends.kind import REPO_CONFIG, KindCluster, RunOwner, shared_cluster

    found = tools.resolve(no_download=options["no_download"])  # cached by preflight: no download here
    cluster = KindCluster(
        options["cluster_name"],
        REPO_CONFIG,
        calico_version=options["calico_version"],
        calico_manifests_dir=options["calico_manifests"],
        kubeconfig_path=shared_dir / f"kubeconfig-{options['cluster_name']}",
        reuse=options["reuse_cluster"],
        keep=options["keep_cluster"],
        owner=RunOwner.this_run(run_id, options["keep_cluster"]),
        kind_bin=found.kind,
        kubectl_bin=found.kubectl,
    )
    with shared_cluster(cluster, shared_dir, run_id):
        for note in cluster.notes:  # e.g. a cluster left by a killed run was replaced
            warnings.warn(f"gim-netpol: {note}", stacklevel=1)
        backend = KubeBackend(
            str(cluster.kubeconfig_path), cluster.context, name="kind", probe_workers=workers
        )
        with _live(backend, run_id) as live:
            yield live
