"""The README stays true: its options table and its test command are the ones the code and CI use."""

from __future__ import annotations

import re
from pathlib import Path

from conformance.suite.options import markdown_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _setup_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block, "the README must open with a sh block of set-up commands"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_lists_every_option_with_its_environment_variable():
    assert markdown_table() in README


def test_readme_opens_with_install_and_test_commands():
    install, tests = _setup_commands()
    assert install.startswith("python3 -m venv .venv") and install.endswith("pytest conformance")
    assert "--backend" not in install, "the first command runs the suite on kind, the default backend"
    assert "--backend model" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    _, tests = _setup_commands()
    assert tests in ci.splitlines()


def test_readme_kill_rate_counts_every_seeded_defect():
    from tests.chart_fixtures import DEFECTS

    n = len(DEFECTS)
    assert f"Kill rate: {n}/{n} defects caught (100%)" in README
