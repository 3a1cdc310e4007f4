"""``open_backend`` for kind as a run uses it, end to end: preflight, the cluster (fake docker, kind,
kubectl alone on PATH) and the live backend on its kubeconfig (a fake API server on 127.0.0.1)."""

from __future__ import annotations

import json
import stat

import pytest

from conformance.backends.factory import open_backend
from conformance.suite.options import options as all_options
from tests.test_kind_provisioner import REGISTRY, calls, fake_machine, manifests_dir
from tests.test_kube_backend import FakeApiServer
from tests.test_preflight import version_info


class VersionedApiServer(FakeApiServer):
    """The fake API server, answering /version too (read before a cluster is reused)."""

    def handle(self, method, raw_path, body):
        if raw_path.rstrip("/") == "/version":
            return 200, json.loads(version_info("v1.34.8"))
        return super().handle(method, raw_path, body)


@pytest.fixture
def kind_run(tmp_path, monkeypatch):
    state = fake_machine(tmp_path, monkeypatch, alone=True)
    for poll in ("nodes", "tigera"):  # the fake cluster is Ready at the first look: no waiting
        (state / f"{poll}.count").write_text("1")
    api = VersionedApiServer()
    monkeypatch.setenv("FAKE_REGISTRY", REGISTRY)
    monkeypatch.setenv("FAKE_API_URL", api.url)
    monkeypatch.setenv("GIM_NETPOL_CACHE_DIR", str(tmp_path / "cache"))
    opts = {o.flag.lstrip("-").replace("-", "_"): o.default for o in all_options()}
    opts.update(backend="kind", cluster_name="gim", calico_manifests=str(manifests_dir(tmp_path)))
    yield state, opts
    api.close()


def test_the_kind_kubeconfig_is_private_to_the_run_and_does_not_outlive_it(kind_run, tmp_path):
    """Issue 21 item 7: pytest's temporary folder kept the exported kubeconfig (cluster credentials)."""
    state, opts = kind_run
    shared = tmp_path / "pytest-of-user" / "pytest-1" / "gim-netpol-run-abcd0001"
    with open_backend(opts, "abcd0001", shared) as backend:
        assert backend.started.startswith("kind cluster gim created in ")  # the session summary's line
        kubeconfigs = [p for p in shared.rglob("*") if p.is_file() and "fake-admin-token" in p.read_text()]
        assert len(kubeconfigs) == 1
        kubeconfig = kubeconfigs[0]
        assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
        assert kubeconfig.parent != shared and stat.S_IMODE(kubeconfig.parent.stat().st_mode) == 0o700
    assert [c["argv"][:2] for c in calls(state, "kind")][-1] == ["delete", "cluster"]
    assert not kubeconfig.exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name.startswith("kubeconfig")]


def test_a_reused_cluster_stays_but_the_runs_kubeconfig_goes(kind_run, tmp_path):
    state, opts = kind_run
    (state / "clusters.txt").write_text("gim\n")
    (state / "calico-installed").write_text("yes")
    opts.update(reuse_cluster=True)
    shared = tmp_path / "run"
    with open_backend(opts, "abcd0002", shared):
        (kubeconfig,) = shared.rglob("kubeconfig-gim")
        assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert not [c for c in calls(state, "kind") if c["argv"][0] in ("create", "delete")]
    assert not kubeconfig.exists()
