"""One set of CNI feature canaries per session, also under xdist.

The canaries judge the cluster's CNI, not a worker's fleet: running them on every xdist worker would
deploy the same canary pods twice and probe the same features twice. The first worker to ask claims
them (an exclusive create of a file in the run's shared folder), runs them with its controls and
publishes its report there; the other workers run their controls without them and read that report
when they need it (to explain a mismatch by the features involved). The claiming worker reports the
features table to the session's summary; a needed feature that is not enforced fails its tests, and so
the session.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from conformance.suite.cni_features import CniFeatureReport

CLAIM = "cni-features.claim"
REPORT = "cni-features.json"


class SharedCanaries:
    """The canaries' claim and report in ``folder`` (the run's folder that every worker shares)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._loaded: tuple[CniFeatureReport | None, list[str]] | None = None

    def claim(self) -> bool:
        """Whether this worker runs the canaries (True for exactly one worker of the run)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(self.folder / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def publish(self, report: CniFeatureReport | None) -> None:
        """The claiming worker's report (``None``: the canaries could not run, e.g. the controls failed
        first), written whole so that a reader never sees half of it."""
        data = report.to_json() if report is not None else {}
        partial = self.folder / f"{REPORT}.{os.getpid()}"
        partial.write_text(json.dumps(data))
        partial.replace(self.folder / REPORT)

    def read(self, wait_s: float) -> tuple[CniFeatureReport | None, list[str]]:
        """The published report and its failures (one line per needed feature not enforced), waiting up
        to ``wait_s`` seconds of wall time for it; no report if it does not come, or the canaries could
        not run."""
        if self._loaded is not None:
            return self._loaded
        deadline = time.monotonic() + wait_s
        path = self.folder / REPORT
        while not path.exists():
            if time.monotonic() >= deadline:
                return None, []
            time.sleep(0.05)
        data = json.loads(path.read_text())
        report = CniFeatureReport.from_json(data) if data else None
        self._loaded = (report, list(data.get("failures", ())))
        return self._loaded
