"""``gim-netpol verify``'s CNI features: the feature canaries for the policies GIM has in the cluster.

Live only. The canaries run in scratch namespaces of the run (Pod Security "restricted", like verify's
other namespaces, so the host-network canary is reported ``not checked``), after the deny-all canary
proved that the CNI enforces NetworkPolicy at all. A feature GIM's policies use that the CNI does not
enforce is a problem (exit status 1). The report modules render the section with the helpers below.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from conformance.backends.base import Backend
from conformance.netpol.model import Cluster, Pod
from conformance.suite.cni_features import (
    NOT_CHECKED,
    NOT_ENFORCED,
    CniFeatureReport,
    Layout,
    chosen,
    feature_hints,
    needed_features,
    run_canaries,
)
from conformance.suite.flows import plan_flows
from conformance.suite.verdicts import FlowResult


def check_cni_features(
    backend: Backend,
    cluster: Cluster,
    gim_namespace: str,
    layout: Layout,
    *,
    choice: str,
    image: str,
    probe_timeout_s: float,
    deadline_s: float,
    ready_timeout_s: float,
) -> tuple[CniFeatureReport | None, list[str]]:
    """The canaries ``choice`` asks for, given GIM's policies in ``cluster``; and the problems (one line
    per feature GIM's policies use that the CNI does not enforce). In shared namespaces (a namespaced
    run) the canaries run one at a time: each one's policies would select the others' pods."""
    needed = needed_features(cluster.policies_in(gim_namespace))
    canaries = chosen(choice, needed)
    if not canaries:
        return None, []
    batches = [[c] for c in canaries] if layout.shared else [canaries]
    reports = [
        run_canaries(
            backend,
            batch,
            layout,
            image=image,
            probe_timeout_s=probe_timeout_s,
            deadline_s=deadline_s,
            ready_timeout_s=ready_timeout_s,
            needed=needed,
        )
        for batch in batches
    ]
    report = reports[0]
    for more in reports[1:]:
        report.results.update(more.results)
        report.probes += more.probes
        report.seconds += more.seconds
        report.notes.extend(n for n in more.notes if n not in report.notes)
    return report, report.failures()


def explain_probes(analysis: Any, cluster: Cluster, clients: Sequence[Pod]) -> None:
    """Each problem of a disagreeing probe gains the features of the rules involved and their canary's
    result (``ingress rule 0 of gitguardian/allow-web uses a named port (http): CNI canary named-port:
    NOT ENFORCED``)."""
    wrong = [p for p in analysis.probes if not p.agrees]
    if not wrong:
        return
    state = Cluster(cluster.namespaces, [*cluster.pods, *clients], cluster.services, cluster.policies)
    flows = plan_flows(state, [c.key for c in clients], analysis.gim_namespace, contract=None)
    by_probe = {
        (f.probe.client, f.probe.target, f.probe.port, f.probe.protocol, f.probe.via): f for f in flows
    }
    hints = feature_hints(state.policies, analysis.cni_features, limit=3)
    for record in wrong:
        flow = by_probe.get((record.client, record.target, record.port, record.protocol, record.via))
        if flow is None:
            continue
        said = "; ".join(hints(FlowResult(flow)))
        prefix = f"probe {record.client} -> {record.target}:{record.port}/{record.protocol} via {record.via}:"
        for i, problem in enumerate(analysis.problems):
            if said and problem.startswith(prefix):
                analysis.problems[i] = f"{problem}; {said}"


# -- the reports' section ------------------------------------------------------------------------------
def text_section(report: CniFeatureReport | None) -> str:
    if report is None:
        return ""
    return "\n".join([f"CNI features ({report.cost()})", *(f"  {line}" for line in report.lines())])


def json_section(report: CniFeatureReport | None) -> dict[str, Any] | None:
    return None if report is None else report.to_json()


def junit_cases(report: CniFeatureReport | None) -> list[tuple[str, dict[str, object], str | None, bool]]:
    """(name, properties, failure, skipped) per canary: a failure when GIM's policies use the feature and
    the CNI does not enforce it; skipped when it could not be checked."""
    if report is None:
        return []
    cases = []
    for feature, result in report.results.items():
        used = [u.describe() for u in report.needed.get(feature, [])]
        failure = None
        if result.status == NOT_ENFORCED and used:
            failure = "\n".join([f"{feature} is not enforced, and {used[0]}", *result.mismatches])
        props: dict[str, object] = {"feature": feature, "status": result.status, "probes": result.probes}
        if used:
            props["usedBy"] = "; ".join(used)
        if result.reason:
            props["reason"] = result.reason
        cases.append((f"CNI feature {feature}", props, failure, result.status == NOT_CHECKED))
    return cases


def html_section(report: CniFeatureReport | None) -> str:
    if report is None:
        return ""
    rows = []
    for feature, result in report.results.items():
        used = "<br>".join(escape(u.describe()) for u in report.needed.get(feature, []))
        status = escape(result.status)
        if result.status == NOT_ENFORCED:
            status = f"<b>{status.upper()}</b>"
        detail = "<br>".join(escape(x) for x in [result.reason, *result.mismatches] if x)
        rows.append(
            f"<tr><td>{escape(feature)}</td><td>{status}</td><td>{detail}</td><td>{used or '-'}</td></tr>"
        )
    return (
        f"<h2>CNI features</h2><p>{escape(report.cost())}</p><table><tr><th>feature</th><th>status</th>"
        f"<th>detail</th><th>used by GIM's policies</th></tr>{''.join(rows)}</table>"
    )
