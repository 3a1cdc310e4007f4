"""The verify result as one JSON object (``-o json`` and ``verify-report.json`` in ``--report-dir``).

Fields users rely on: ``mode``, ``allowedNamespaces``, ``needsAccess`` [{namespace, evidence}],
``wouldBlock``, ``suggestedAllowedNamespaces``, ``flows`` (expected verdicts with reasons),
``probes`` (live runs: expected, observed, outcome class, latency, reason, repro) and ``exitStatus``.
"""

from __future__ import annotations

import json
from typing import Any

from conformance.verify.analysis import Analysis
from conformance.verify.cni_features import json_section
from conformance.verify.inference import DISABLED, DRYRUN


def values_snippet(analysis: Analysis) -> str:
    """The ``networkPolicy`` values to paste, each allowed namespace with its reason as a comment."""
    mode = analysis.inference.mode
    keep = DRYRUN if mode == DISABLED else mode
    lines = ["networkPolicy:", "  enabled: true", f"  mode: {keep}"]
    if not analysis.suggested:
        lines.append("  allowedNamespaces: []")
    else:
        lines.append("  allowedNamespaces:")
        for s in analysis.suggested:
            lines.extend(f"    # {reason}" for reason in s.reasons)
            lines.append(f"    - {s.namespace}")
    observed = analysis.shadow.observed_only
    if observed:
        lines.append("    # observed in flow logs, no API evidence: uncomment the ones that are legitimate")
        lines.extend(f"    # - {n.namespace}" for n in observed)
    if analysis.inference.extra_policies:
        lines.append(
            "  # extraPolicies: keep the entries you have ("
            + ", ".join(analysis.inference.extra_policies)
            + ")"
        )
    return "\n".join(lines) + "\n"


def _flow(analysis: Analysis, flow) -> dict[str, Any]:
    return {
        "source": flow.source,
        "sourceNamespace": flow.source_namespace,
        "syntheticSource": flow.synthetic,
        "destination": flow.destination,
        "port": flow.port,
        "protocol": flow.protocol,
        "mode": analysis.inference.mode,
        "expected": "allowed" if flow.allowed else "blocked",
        "reason": flow.reason,
        "promise": flow.promise,
        "promised": "allowed" if flow.promised else "blocked",
        "underEnforce": "allowed" if flow.enforce_allowed else "blocked",
        "underEnforceReason": flow.enforce_reason,
        "violation": flow.violation,
        "note": flow.note,
    }


def _probe(probe) -> dict[str, Any]:
    return {
        "client": probe.client,
        "target": probe.target,
        "host": probe.host,
        "port": probe.port,
        "protocol": probe.protocol,
        "via": probe.via,
        "expected": "allowed" if probe.expected_allowed else "blocked",
        "observed": probe.outcome,
        "outcomeClass": probe.outcome,
        "agrees": probe.agrees,
        "latencySeconds": round(probe.latency_s, 3),
        "reason": probe.reason,
        "repro": probe.repro,
        "detail": probe.detail,
    }


def to_json(analysis: Analysis) -> dict[str, Any]:
    inference = analysis.inference
    return {
        "gimNamespace": analysis.gim_namespace,
        "input": analysis.source,
        "live": analysis.live,
        "mode": inference.mode,
        "allowedNamespaces": list(inference.allowed_namespaces),
        "safetyNet": inference.safety_nets,
        "safetyNetCoversEgress": inference.safety_net_egress,
        "helmReleases": inference.releases,
        "policies": [
            {
                "name": p.key,
                "roles": list(p.roles),
                "managedByChart": p.managed_by_chart,
                "helmRelease": p.release,
                "detail": p.detail,
            }
            for p in inference.policies
        ],
        "extraPolicies": inference.extra_policies,
        "needsAccess": [
            {
                "namespace": n.namespace,
                "evidence": list(n.evidence),
                "observed": list(n.observed),
                "sources": list(n.sources),
                "targets": [f"{t.pod}:{t.port}/{t.protocol}" for t in n.targets],
                "allowed": n.namespace in inference.allowed_namespaces,
            }
            for n in analysis.shadow.needs
        ],
        "observedOnly": [
            {
                "namespace": n.namespace,
                "observed": list(n.observed),
                "targets": [f"{t.pod}:{t.port}/{t.protocol}" for t in n.targets],
                "blockedUnderEnforce": n.namespace in analysis.observed_blocked,
            }
            for n in analysis.shadow.observed_only
        ],
        "wouldBlock": sorted(analysis.would_block),
        "wouldBlockFlows": {
            ns: [{"source": b.source, "target": b.target, "reason": b.reason} for b in blocked]
            for ns, blocked in sorted(analysis.would_block.items())
        },
        "hostNetworkSources": [
            {
                "namespace": n.namespace,
                "pods": list(n.sources),
                "evidence": list(n.evidence),
                "blockedUnderEnforce": n.namespace in analysis.host_network_blocked,
            }
            for n in analysis.shadow.host_network
        ],
        "suggestedAllowedNamespaces": [s.namespace for s in analysis.suggested],
        "suggestedReasons": {s.namespace: list(s.reasons) for s in analysis.suggested},
        "valuesSnippet": values_snippet(analysis),
        "flows": [_flow(analysis, f) for f in analysis.flows],
        "probes": [_probe(p) for p in analysis.probes],
        "cniFeatures": json_section(analysis.cni_features),
        "conforms": analysis.conforms,
        "exitStatus": analysis.exit_status,
        "problems": list(analysis.problems),
        "warnings": list(analysis.warnings),
        "notes": list(analysis.notes),
    }


def dumps(analysis: Analysis) -> str:
    return json.dumps(to_json(analysis), indent=2) + "\n"
