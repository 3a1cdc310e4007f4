"""The verified download of kind and kubectl, for real, from a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import os
import stat
import threading
from pathlib import Path

import pytest

from conformance.backends import tools
from conformance.backends.base import BackendUnavailable

FAKE_BINARY = b"#!/bin/sh\necho 'kind v0.32.0 go1.24.0 linux/amd64'\n"


class Server:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1 and counts the requests per path."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def kind_asset_path() -> str:
    osname, arch = tools.platform_pair()
    return f"/{tools.KIND_VERSION}/kind-{osname}-{arch}"


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A server with the pinned kind's asset; the test decides what its .sha256sum says."""
    servers = []

    def start(checksum: str | None, binary: bytes = FAKE_BINARY) -> Server:
        asset = kind_asset_path()
        files = {asset: binary}
        if checksum is not None:
            files[asset + ".sha256sum"] = checksum.encode()
        server = Server(files)
        servers.append(server)
        monkeypatch.setenv(tools.KIND_URL_ENV, server.url)
        return server

    monkeypatch.setenv(tools.CACHE_ENV, str(tmp_path / "cache"))
    yield start
    for s in servers:
        s.close()


def published(binary: bytes = FAKE_BINARY) -> str:
    # The format of kind's hack/release/build/cross.sh: `shasum -a 256 "$f" > "$f".sha256sum`.
    return f"{hashlib.sha256(binary).hexdigest()}  {kind_asset_path().rsplit('/', 1)[1]}\n"


def preflight_options(**chosen) -> dict:
    """The options factory.preflight reads for the kind backend, as the plugin resolves them."""
    return {
        "backend": "kind",
        "kubeconfig": None,
        "context": None,
        "no_download": False,
        "calico_version": "v3.31.2",
        "cluster_name": "gim-netpol",
        **chosen,
    }


def test_a_download_with_the_published_checksum_is_cached_executable_and_fetched_once(served, tmp_path):
    server = served(published())
    exe = tools.download(tools.KIND)
    assert exe.read_bytes() == FAKE_BINARY
    assert exe.stat().st_mode & stat.S_IXUSR
    assert exe.is_relative_to(tmp_path / "cache")
    assert tools.download(tools.KIND) == exe
    assert server.requests.count(kind_asset_path()) == 1  # the second call used the verified cache


def test_a_wrong_checksum_is_refused_and_nothing_is_kept(served, tmp_path):
    served("0" * 64 + "  kind-linux-amd64\n")
    with pytest.raises(BackendUnavailable) as info:
        tools.download(tools.KIND)
    message = str(info.value)
    assert "not the published " + "0" * 64 in message and "\n" not in message
    assert not [p for p in (tmp_path / "cache").rglob("kind*") if p.is_file() and p.name == "kind"]


def test_a_missing_checksum_is_refused(served, tmp_path):
    server = served(None)
    expected = r"published checksum .*HTTP 404.*unverified binary is not used"
    with pytest.raises(BackendUnavailable, match=expected):
        tools.download(tools.KIND)
    assert kind_asset_path() not in server.requests  # the binary is not even fetched


def test_a_cached_binary_altered_later_is_fetched_again(served):
    server = served(published())
    exe = tools.download(tools.KIND)
    exe.write_bytes(b"tampered")
    assert tools.download(tools.KIND).read_bytes() == FAKE_BINARY
    assert server.requests.count(kind_asset_path()) == 2


def test_the_urls_follow_the_release_layouts(monkeypatch):
    monkeypatch.delenv(tools.KIND_URL_ENV, raising=False)
    monkeypatch.delenv(tools.KUBECTL_URL_ENV, raising=False)
    assert tools.KIND.url("linux", "amd64") == "https://kind.sigs.k8s.io/dl/v0.32.0/kind-linux-amd64"
    assert tools.KIND.checksum_url("linux", "amd64").endswith("/v0.32.0/kind-linux-amd64.sha256sum")
    assert tools.KUBECTL.checksum_url("darwin", "arm64") == (
        f"https://dl.k8s.io/release/{tools.KUBECTL_VERSION}/bin/darwin/arm64/kubectl.sha256"
    )


def fake_tool(bindir: Path, name: str, version_output: str) -> None:
    path = bindir / name
    path.write_text(f"#!/bin/sh\necho '{version_output}'\n")
    path.chmod(0o755)


def test_no_download_names_what_to_install_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendUnavailable) as info:
        tools.resolve(no_download=True)
    message = str(info.value)
    assert message.startswith("kind v0.32.0 or later not found on PATH and --no-download")
    assert "kind.sigs.k8s.io" in message and "\n" not in message


def test_tools_on_path_are_used_when_recent_enough_and_replaced_when_older(served, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    fake_tool(bindir, "kind", "kind v0.33.1 go1.25.0 linux/amd64")
    fake_tool(bindir, "kubectl", '{"clientVersion": {"gitVersion": "v1.35.2"}}')
    found = tools.resolve(no_download=True)
    assert (found.kind, found.kubectl) == (str(bindir / "kind"), str(bindir / "kubectl"))

    fake_tool(bindir, "kind", "kind v0.31.0 go1.24.0 linux/amd64")  # older than the pin: fetched
    served(published())
    with pytest.raises(
        BackendUnavailable, match=r"kind on PATH \(.*/kind\) is v0\.31\.0, but kind v0\.32\.0"
    ):
        tools.resolve(no_download=True)
    assert tools.resolve(no_download=False).kind == str(tools.download(tools.KIND))
    assert os.access(tools.resolve(no_download=False).kind, os.X_OK)


def test_preflight_of_a_laptop_with_docker_only_fetches_both_tools(tmp_path, monkeypatch):
    """The first command's path: docker answers, neither kind nor kubectl is installed."""
    from conformance.backends.factory import preflight

    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake_tool(bindir, "docker", "27.3.1")
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.setenv(tools.CACHE_ENV, str(tmp_path / "cache"))
    osname, arch = tools.platform_pair()
    kubectl = b"#!/bin/sh\necho kubectl\n"
    kubectl_path = f"/{tools.KUBECTL_VERSION}/bin/{osname}/{arch}/kubectl"
    server = Server(
        {
            kind_asset_path(): FAKE_BINARY,
            kind_asset_path() + ".sha256sum": published().encode(),
            kubectl_path: kubectl,
            kubectl_path + ".sha256": hashlib.sha256(kubectl).hexdigest().encode(),  # bare, as dl.k8s.io
        }
    )
    monkeypatch.setenv(tools.KIND_URL_ENV, server.url)
    monkeypatch.setenv(tools.KUBECTL_URL_ENV, server.url)
    options = preflight_options(calico_manifests=None, reuse_cluster=False)
    manifests = tmp_path / "calico"
    manifests.mkdir()
    for name in ("operator-crds.yaml", "tigera-operator.yaml", "custom-resources.yaml"):
        (manifests / name).write_text("# manifest\n")
    try:
        preflight(options)
        found = tools.resolve(no_download=False)
        assert Path(found.kind).read_bytes() == FAKE_BINARY
        assert Path(found.kubectl).read_bytes() == kubectl
        with pytest.raises(BackendUnavailable, match="--no-download forbids"):
            preflight({**options, "no_download": True, "calico_manifests": str(manifests)})
    finally:
        server.close()


# --- issue 21 -----------------------------------------------------------------------------------------


def test_a_failed_download_leaves_no_lock_file_or_empty_folder_behind(served, tmp_path):
    """Item 7: the run of issue 21 left an empty ~/.cache/gim-netpol/kubectl-v1.34.8-linux-amd64/.lock."""
    served(None)  # no published checksum: the download fails
    with pytest.raises(BackendUnavailable):
        tools.download(tools.KIND)
    assert not (tmp_path / "cache").exists()  # the cache folder this download made, gone again
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "other-tool").mkdir()  # a cache that holds something else stays
    with pytest.raises(BackendUnavailable):
        tools.download(tools.KIND)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["other-tool"]


def test_a_kubectl_for_the_reused_cluster_is_fetched_at_the_version_of_its_api_server(tmp_path, monkeypatch):
    """Item 1: no kubectl on PATH, --reuse-cluster on a 1.28 cluster: the kubectl fetched is its own
    (v1.28.7, verified against its published checksum), not the pinned node image's v1.34.8."""
    from conformance.backends.factory import preflight
    from tests.test_kind_provisioner import install_fakes, manifests_dir
    from tests.test_preflight import version_info

    bindir = tmp_path / "bin"
    install_fakes(bindir)
    (bindir / "kubectl").unlink()
    state = tmp_path / "state"
    state.mkdir()
    (state / "clusters.txt").write_text("gim-netpol\n")
    osname, arch = tools.platform_pair()
    kubectl = b"#!/bin/sh\necho kubectl\n"
    path = f"/v1.28.7/bin/{osname}/{arch}/kubectl"
    server = Server(
        {
            "/version/": version_info("v1.28.7"),  # the cluster's API server...
            path: kubectl,  # ...and dl.k8s.io, on one local server
            path + ".sha256": hashlib.sha256(kubectl).hexdigest().encode(),
        }
    )
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.setenv("FAKE_STATE", str(state))
    monkeypatch.setenv("FAKE_API_URL", server.url)
    monkeypatch.setenv(tools.KUBECTL_URL_ENV, server.url)
    monkeypatch.setenv(tools.CACHE_ENV, str(tmp_path / "cache"))
    options = preflight_options(calico_manifests=str(manifests_dir(tmp_path)), reuse_cluster=True)
    try:
        found = preflight(options)
    finally:
        server.close()
    assert Path(found.kubectl) == tmp_path / "cache" / f"kubectl-v1.28.7-{osname}-{arch}" / "kubectl"
    assert Path(found.kubectl).read_bytes() == kubectl
    assert path in server.requests
