"""The README's CI snippets and air-gapped steps for the kind backend (issue 13 items 8 and 9)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conformance.suite.options import options

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CALICO_README = (ROOT / "conformance" / "data" / "calico" / "README.md").read_text()


def ci_snippets() -> dict[str, dict]:
    section = README[README.index("### CI snippets") : README.index("## The `gim-netpol` command")]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    github, gitlab = (yaml.safe_load(b) for b in blocks)
    return {"github": github, "gitlab": gitlab}


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_ci_snippets_write_nothing_outside_the_job_and_verify_what_they_download(ci):
    text = yaml.safe_dump(ci_snippets()[ci])
    assert "/usr/local/bin" not in text and "sudo" not in text
    assert "kubectl" not in text  # the suite fetches it (verified) when it needs it
    # kind is fetched by the suite, which checks kind-<os>-<arch>.sha256sum; a snippet that downloads
    # it itself must check the checksum too.
    if "kind-linux-amd64" in text:
        assert "sha256sum" in text


def test_matrix_jobs_get_a_cluster_each_and_upload_the_report_dir():
    snippets = ci_snippets()
    steps = snippets["github"]["jobs"]["netpol-conformance"]["steps"]
    run = next(s for s in steps if "pytest conformance" in s.get("run", ""))
    assert "${{ matrix.profile }}" in run["env"]["GIM_NETPOL_CLUSTER_NAME"]
    assert "--report-dir=report-${{ matrix.profile }}" in run["run"]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert "netpol-suite/report-${{ matrix.profile }}/" in upload["with"]["path"]

    job = snippets["gitlab"]["netpol-conformance"]
    assert "$CI_JOB_ID" in job["variables"]["GIM_NETPOL_CLUSTER_NAME"]
    script = " ".join(job["script"])
    assert "--report-dir=report-$PROFILE" in script
    assert "netpol-suite/report-$PROFILE/" in job["artifacts"]["paths"]
    assert "(3, 11)" in script  # Python >= 3.11 is checked, not assumed


@pytest.mark.parametrize("doc", [README, CALICO_README], ids=["README", "calico-README"])
def test_air_gapped_steps_create_the_cluster_and_load_images_before_reusing_it(doc):
    create = doc.index("kind create cluster --name gim-netpol --config clusters/kind-calico.yaml")
    load = doc.index("kind load docker-image", create)
    run = doc.index("--reuse-cluster --no-download", load)
    assert create < load < run


def test_option_help_says_what_the_options_really_do():
    helps = {o.flag: o.help for o in options()}
    assert "operator-crds.yaml" in helps["--calico-manifests"]
    assert "never deleted" not in helps["--reuse-cluster"]
    assert "created and deleted at the end unless --keep-cluster" in helps["--reuse-cluster"]
    assert "--no-download" in helps


def test_readme_names_the_tested_combination():
    from conformance.backends import kind, tools

    head = README[: README.index("## What this is")]
    for pinned in (tools.KIND_VERSION, kind.NODE_IMAGE, kind.CALICO_VERSION, tools.KUBECTL_VERSION):
        assert pinned in head
    assert "docker" in head and "nothing else" in head
    for env in (tools.KIND_URL_ENV, tools.KUBECTL_URL_ENV, tools.CACHE_ENV):
        assert env in README


# --- issue 21 item 5: the Air-gapped section, run as written -----------------------------------------


def air_gapped_commands() -> list[str]:
    section = README[README.index("### Air-gapped") : README.index("### The model backend behaves")]
    (block,) = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [line for line in block.splitlines() if line.strip()]


def test_the_air_gapped_section_runs_as_written(tmp_path):
    """Every command of the section, in order, against the fakes: a connected machine's docker (with a
    registry) then the air-gapped one's (none). The node image arrives by `docker load` (no repo digest)
    and the cluster is created from it without any pull; the suite's command passes every check it
    makes before the tests (--collect-only: no test runs against the fakes)."""
    import json
    import os
    import shlex
    import subprocess
    import sys

    from conformance.backends.kind import NODE_IMAGE
    from tests.test_kind_provisioner import calls, install_fakes
    from tests.test_preflight import version_info

    tag, digest = NODE_IMAGE.split("@")
    bindir = tmp_path / "bin"
    install_fakes(bindir)
    state = tmp_path / "state"
    state.mkdir()
    work = tmp_path / "suite"  # the suite's folder, as the air-gapped user has it
    work.mkdir()
    for name in ("conformance", "clusters", "conftest.py", "pyproject.toml"):
        (work / name).symlink_to(ROOT / name)
    calico = work / "calico-v3.31.2"
    calico.mkdir()
    for name in ("operator-crds.yaml", "tigera-operator.yaml", "custom-resources.yaml"):
        (calico / name).write_text("# copied from the connected machine\n")
    registry = {tag: digest, "quay.io/tigera/operator:v1.40.2": "sha256:" + "2" * 64}
    registry["registry.k8s.io/e2e-test-images/agnhost:2.52"] = "sha256:" + "3" * 64
    connected_docker = tmp_path / "connected-docker"
    connected_docker.mkdir()
    from tests.test_kind_download import Server

    api = Server({"/version/": version_info("v1.34.8")})  # the API server of the cluster kind creates
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GIM_NETPOL_", "PYTEST_"))}
    base.update(PATH=str(bindir), FAKE_STATE=str(state), FAKE_API_URL=api.url, HOME=str(tmp_path / "home"))
    base.pop("KUBECONFIG", None)
    base.update(GIM_NETPOL_CACHE_DIR=str(tmp_path / "cache"), http_proxy="http://127.0.0.1:9")
    base.update(https_proxy="http://127.0.0.1:9", no_proxy="127.0.0.1")  # nothing leaves this machine
    env = {**base, "FAKE_DOCKER_STATE": str(connected_docker), "FAKE_REGISTRY": json.dumps(registry)}
    outputs = {}
    try:
        for line in air_gapped_commands():
            if line.startswith("# on the air-gapped machine"):
                env = base  # its own docker, no registry
                (state / "log.jsonl").unlink()  # what follows is the air-gapped machine's
            if line.startswith("#"):
                continue
            argv = shlex.split(line, comments=True)
            if argv[0] == ".venv/bin/pytest":
                argv = [
                    sys.executable,
                    "-m",
                    "pytest",
                    *argv[1:],
                    "--collect-only",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                ]
            result = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
            outputs[line] = result.stdout
    finally:
        api.close()
    inspect = next(out for line, out in outputs.items() if "RepoDigests" in line)
    assert f"kindest/node@{digest}" in json.loads(inspect)  # the check step 3 asks for holds...
    assert f"kindest/node@{digest}" in next(
        line for line in outputs if "RepoDigests" in line
    )  # ...as written
    air_gapped = calls(state)
    assert not [c for c in air_gapped if c["tool"] == "docker" and c["argv"][0] == "pull"]  # nothing pulled
    assert (state / "clusters.txt").read_text().split() == ["gim-netpol"]
    loaded = (state / "loaded-gim-netpol.txt").read_text().split()
    assert "quay.io/tigera/operator:v1.40.2" in loaded
    assert "registry.k8s.io/e2e-test-images/agnhost:2.52" in loaded
    kind_calls = [c["argv"] for c in air_gapped if c["tool"] == "kind"]
    assert kind_calls[-1] == ["get", "kubeconfig", "--name", "gim-netpol"]  # the suite read the server
    pytest_run = next(out for line, out in outputs.items() if "pytest" in line)
    assert "tests collected" in pytest_run or "test collected" in pytest_run
