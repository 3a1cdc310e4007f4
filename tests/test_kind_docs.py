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
