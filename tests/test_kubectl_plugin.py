"""``kubectl gim-netpol ...``: kubectl runs an executable named ``kubectl-gim_netpol`` found on PATH
(kubernetes.io/docs/tasks/extend-kubectl/kubectl-plugins/: a dash in the command is an underscore in the
file name). The package installs it as a console script of the same ``main`` as ``gim-netpol``."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path


def test_the_package_installs_the_kubectl_plugin_executable():
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts["kubectl-gim_netpol"] == scripts["gim-netpol"] == "conformance.commands.cli:main"


def test_the_plugin_executable_runs_gim_netpol():
    plugin = Path(sys.executable).parent / "kubectl-gim_netpol"
    done = subprocess.run(
        [str(plugin), "rbac", "--mode", "read-only"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "kind: ClusterRole" in done.stdout and "verbs: [list]" in done.stdout
    bad = subprocess.run([str(plugin), "rbac", "--mode", "nope"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "invalid choice: 'nope'" in bad.stderr and "Traceback" not in bad.stderr
