"""A backend that cannot start stops the whole session once, with one line, instead of failing every test.

The session fixture that opens the backend meets the error (under pytest-xdist, every worker meets it:
the kind cluster's failure is shared through ``kind.shared_cluster``, each model worker has its own
enforcer). It records the line in the run's folder (the first worker to get there wins) and ends the
session with ``pytest.exit``, no test reported. The process that started pytest (xdist's controller,
or the only process) prints the recorded line on stderr, last, and the run's exit status is 2, as for
any input or prerequisite the run lacks (``errors.EXIT_USAGE``): nothing was judged.

Under xdist a worker ends its session with ``session.shouldstop`` set, which xdist hands to its
controller: it stops the other workers and ends with exit status 2 (``Interrupted``). The worker's own
exit status must not be 2: xdist takes that for a Ctrl-C in the worker and reports a crash.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

from conformance.errors import EXIT_USAGE

STOPPED = "gim-netpol: the backend cannot start: no test ran (the reason is printed at the end)"
WORKER_EXIT = 1  # not 2: see the module's docstring


def stop_path(folder: Path, run_id: str) -> Path:
    return Path(folder) / f"gim-netpol-run-{run_id}-stopped.txt"


def record(folder: Path, run_id: str, line: str) -> None:
    """Keep ``line`` for the end of the session, unless a line was recorded already."""
    path = stop_path(folder, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x") as f:
            f.write(" ".join(line.split()) + "\n")
    except FileExistsError:
        pass


def take(folder: Path, run_id: str) -> str | None:
    """The recorded line, removed from the run's folder; None when the session was not stopped."""
    path = stop_path(folder, run_id)
    try:
        line = path.read_text().strip()
    except OSError:
        return None
    path.unlink(missing_ok=True)
    return line or None


def stop(session: pytest.Session, folder: Path, run_id: str, line: str) -> NoReturn:
    """Record ``line`` and end the session now: no test runs, nothing is reported per test."""
    record(folder, run_id, line)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        session.shouldstop = STOPPED
        pytest.exit(STOPPED, returncode=WORKER_EXIT)
    pytest.exit(STOPPED, returncode=EXIT_USAGE)
