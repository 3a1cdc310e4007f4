"""The verify result for a terminal: inferred configuration, truth tables, shadow diff, values to paste."""

from __future__ import annotations

from conformance.netpol.truthtable import render_table
from conformance.verify.analysis import Analysis
from conformance.verify.cni_features import text_section
from conformance.verify.inference import DRYRUN, ENFORCE
from conformance.verify.matrix import SYMBOLS, grid
from conformance.verify.report_json import values_snippet


def _configuration(analysis: Analysis) -> list[str]:
    inf = analysis.inference
    lines = [f"Inferred configuration of {analysis.gim_namespace} (from {analysis.source})"]
    mode = inf.mode
    if mode == DRYRUN:
        covers = "ingress and egress" if inf.safety_net_egress else "ingress only"
        mode += f" (safety net: {', '.join(inf.safety_nets)}; covers {covers})"
    lines.append(f"  mode:              {mode}")
    lines.append(f"  allowedNamespaces: {', '.join(inf.allowed_namespaces) or '(none)'}")
    lines.append(f"  extraPolicies:     {', '.join(inf.extra_policies) or '(none)'}")
    lines.append(f"  Helm release:      {', '.join(inf.releases) or '(none recorded on the policies)'}")
    if inf.policies:
        lines.append("  policies:")
        width = max(len(p.key) for p in inf.policies)
        for p in inf.policies:
            owner = f"release {p.release}" if p.release else ("Helm" if p.owner else "not Helm")
            lines.append(f"    {p.key:<{width}}  {'+'.join(p.roles):<20} {owner:<16} {p.detail}")
    return lines


def _table(analysis: Analysis, *, under_enforce: bool, title: str) -> str:
    g = grid(analysis.flows, under_enforce=under_enforce)
    return render_table(g.rows, g.cols, g.cell, title=title, symbols=SYMBOLS)


def _shadow(analysis: Analysis) -> list[str]:
    inf = analysis.inference
    lines = ["Who needs to reach GIM (shadow diff)"]
    found = analysis.shadow
    if not found.needs and not found.host_network and not found.observed_only:
        lines.append("  nothing in the input shows another namespace reaching GIM")
    for need in analysis.shadow.needs:
        if need.namespace in analysis.would_block:
            status = "WOULD BE BLOCKED" if inf.mode != ENFORCE else "BLOCKED"
        else:
            status = "allowed"
        listed = "listed" if need.namespace in inf.allowed_namespaces else "not in allowedNamespaces"
        lines.append(f"  {need.namespace}: {status} ({listed})")
        lines.extend(f"    evidence: {e}" for e in need.evidence)
        lines.extend(f"    observed: {e}" for e in need.observed)
        for b in analysis.would_block.get(need.namespace, [])[:3]:
            lines.append(f"    blocked: {b.source} -> {b.target}: {b.reason}")
    for need in found.host_network:
        lines.append(f"  {need.namespace}: host network ({', '.join(need.sources)})")
        lines.extend(f"    evidence: {e}" for e in need.evidence)
        lines.extend(f"    observed: {e}" for e in need.observed)
    if found.observed_only:
        lines.append("  Observed in flow logs, no API evidence (judge whether they need GIM):")
    for need in found.observed_only:
        blocked = analysis.observed_blocked.get(need.namespace, [])
        status = "WOULD BE BLOCKED under enforce" if blocked else "allowed under enforce"
        lines.append(f"  {need.namespace}: {status} (observed, no API evidence)")
        lines.extend(f"    observed: {e}" for e in need.observed)
    return lines


def render_text(analysis: Analysis, *, max_problems: int = 20) -> str:
    inf = analysis.inference
    parts = ["\n".join(_configuration(analysis))]
    if analysis.flows:
        parts.append(_table(analysis, under_enforce=False, title=f"Expected verdicts now ({inf.mode})"))
        if inf.mode != ENFORCE:
            parts.append(
                _table(analysis, under_enforce=True, title="Expected verdicts after the switch to enforce")
            )
    parts.append("\n".join(_shadow(analysis)))
    for title, items in (("Warnings", analysis.warnings), ("Notes", analysis.notes)):
        if items:
            parts.append("\n".join([title, *(f"  - {i}" for i in items)]))
    parts.append("Values to paste (suggested allowedNamespaces)\n" + values_snippet(analysis).rstrip())
    if analysis.cni_features is not None:
        parts.append(text_section(analysis.cni_features))
    if analysis.conforms:
        verdict = (
            "CONFORMS: the policies keep the documented contract and nothing that needs GIM would be blocked"
        )
    else:
        shown = analysis.problems[:max_problems]
        more = len(analysis.problems) - len(shown)
        verdict = "\n".join(
            ["DOES NOT CONFORM:", *(f"  - {p}" for p in shown), *([f"  ... and {more} more"] if more else [])]
        )
    parts.append(verdict)
    return "\n\n".join(parts) + "\n"
