"""Shared observations: checks that probe the same flows under the same objects reuse one observation.

Several tests deploy exactly the same objects on the same probe fleet (enforce with the reference
``allowedNamespaces``: who is allowed, who is not, GIM to GIM...) and each asserts its own promise over
the same matrix. Probing it again would only repeat what was seen: the first check converges, and the
next ones with the same fingerprint take its samples, each judging them against its own expectations.

The fingerprint is everything a verdict depends on: the namespaces (with their labels) the flows run
between, every pod (IP, labels, ports, node) and Service of the scenario's namespaces, the policies in
force there (namespace, name, spec), and the flows themselves (probe, expected verdict, whether the
destination serves the port). A single difference, and the check observes for itself: no verdict ever
comes from a matrix observed under other objects. Only a converged observation (every flow as expected)
is shared; a test run alone (``-k``) finds nothing to share and converges for itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from conformance.netpol.model import Cluster
from conformance.suite.flows import Flow
from conformance.suite.verdicts import CheckReport, FlowResult


def fingerprint(state: Cluster, flows: Sequence[Flow]) -> str:
    """A digest of what the verdicts of ``flows`` depend on in ``state``."""
    namespaces = sorted({f.source.namespace for f in flows} | {f.destination.namespace for f in flows})
    document = {
        "namespaces": {n: state.namespaces[n].labels for n in namespaces if n in state.namespaces},
        "pods": sorted(
            (dataclasses.asdict(p) for p in state.pods), key=lambda p: (p["namespace"], p["name"])
        ),
        "services": sorted(
            (dataclasses.asdict(s) for s in state.services), key=lambda s: (s["namespace"], s["name"])
        ),
        "policies": sorted(
            (
                {
                    "namespace": (p.get("metadata") or {}).get("namespace"),
                    "name": (p.get("metadata") or {}).get("name"),
                    "spec": p.get("spec"),
                }
                for p in state.policies
            ),
            key=lambda p: (str(p["namespace"]), str(p["name"])),
        ),
        "flows": [
            [dataclasses.asdict(f.probe), f.expected.allowed, f.destination_serves, f.destination_port]
            for f in flows
        ],
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class SharedObservations:
    """The converged observations of one probe fleet, by fingerprint."""

    by_fingerprint: dict[str, CheckReport] = field(default_factory=dict)

    def reuse(self, key: str, flows: Sequence[Flow], label: str) -> CheckReport | None:
        """A report for ``flows`` built from the observation made under the same fingerprint, or None."""
        origin = self.by_fingerprint.get(key)
        if origin is None:
            return None
        samples = {r.flow.probe: r.samples for r in origin.results}
        if any(f.probe not in samples for f in flows):
            return None
        results = [FlowResult(f, list(samples[f.probe])) for f in flows]
        return CheckReport(
            label,
            origin.backend,
            results,
            converge_s=0.0,
            probe_timeout_s=origin.probe_timeout_s,
            shared_from=origin.shared_from or origin.label,
        )

    def keep(self, key: str, report: CheckReport) -> None:
        """Remember ``report`` for later checks with the same fingerprint, if it converged."""
        if report.results and not report.mismatches and key not in self.by_fingerprint:
            self.by_fingerprint[key] = report
