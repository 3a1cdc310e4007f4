"""Opening the backend an invocation asked for, and the checks that must pass before it is opened."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conformance.backends.base import Backend


def preflight(options: dict[str, Any]) -> None:
    """Fast checks (no cluster call) that a live backend can start; raises BackendUnavailable."""
    from conformance.backends import preflight as checks

    if options["backend"] == "kind":
        checks.check_kind()
    elif options["backend"] == "existing":
        checks.check_existing(options["kubeconfig"], options["context"])


@contextlib.contextmanager
def open_backend(options: dict[str, Any], run_id: str, shared_dir: Path) -> Iterator[Backend]:
    """The backend for ``options``; on exit, the run's namespaces are gone and a kind cluster the run
    created is deleted (once, by the last xdist worker) unless --keep-cluster."""
    name = options["backend"]
    if name == "model":
        from conformance.backends.model import ModelBackend

        yield ModelBackend()
        return

    from conformance.backends.kube import KubeBackend

    if name == "existing":
        preflight(options)
        backend = KubeBackend(
            options["kubeconfig"],
            options["context"],
            workers=options["probe_workers"],
            image=options["probe_image"],
        )
        try:
            yield backend
        finally:
            backend.delete_run(run_id)
            backend.close()
        return

    from conformance.backends.kind import KindCluster, shared_cluster

    preflight(options)
    cluster = KindCluster(
        name=options["cluster_name"],
        calico_version=options["calico_version"],
        calico_manifests_dir=options["calico_manifests"],
        kubeconfig_path=shared_dir / f"kubeconfig-{options['cluster_name']}",
        reuse=options["reuse_cluster"],
        keep=options["keep_cluster"],
    )
    with shared_cluster(cluster, shared_dir):
        backend = KubeBackend(
            str(cluster.kubeconfig_path),
            cluster.context,
            workers=options["probe_workers"],
            image=options["probe_image"],
        )
        try:
            yield backend
        finally:
            backend.delete_run(run_id)
            backend.close()
