"""The verify result as one self-contained HTML page (inline CSS, no script, no external asset),
for a customer to attach to a ticket: verdict, inferred configuration, matrix, shadow diff, values."""

from __future__ import annotations

from html import escape

from conformance.verify.analysis import Analysis
from conformance.verify.cni_features import html_section
from conformance.verify.inference import DRYRUN, ENFORCE
from conformance.verify.matrix import ALLOWED, BLOCKED, BROKEN, MIXED, NONE, SYMBOLS, grid
from conformance.verify.report_json import values_snippet

CSS = """
body{
  font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
  margin:24px;
  color:#1d2330;
  background:#fff;
}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
.sub{color:#5b6577;font-size:13px}
.verdict{padding:12px 16px;border-radius:6px;margin:16px 0;font-weight:600}
.ok{background:#e3f5e8;border:1px solid #3c9d5d;color:#1f6b3a}
.ko{background:#fde8e8;border:1px solid #c94040;color:#8a1f1f}
.verdict ul{font-weight:400;margin:6px 0 0;padding-left:20px}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #dde2ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f8}
table.grid td.c{width:26px;height:22px;text-align:center;font-weight:700;padding:0}
table.grid th.col{
  writing-mode:vertical-rl;
  transform:rotate(180deg);
  white-space:nowrap;
  font-weight:500;
  padding:6px 2px;
}
.allowed{background:#4caf6a;color:#fff}
.blocked{background:#d64545;color:#fff}
.mixed{background:#f0a030;color:#fff}
.broken{background:#7b3fb5;color:#fff}
.none{background:#eef0f3;color:#9aa3b2}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{
  display:inline-block;
  width:14px;
  height:14px;
  vertical-align:middle;
  margin-right:4px;
  border-radius:2px;
}
.tag{white-space:nowrap;display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;
  font-weight:600}
.tag.allowed,.tag.blocked{color:#fff}
pre{
  background:#f6f8fa;
  border:1px solid #dde2ea;
  padding:10px;
  border-radius:4px;
  font-size:12px;
  overflow:auto;
}
li{margin:2px 0}
ul.why{color:#8a1f1f}
pre{white-space:pre-wrap}
.panes{display:flex;gap:32px;flex-wrap:wrap}
h3{font-size:14px;margin:12px 0 6px}
.rt{display:inline-block;margin-left:6px;padding:0 5px;border-radius:8px;font-size:10px;
  background:#dde2ea;color:#333}
.rt.need{background:#f0a030;color:#fff}
"""

CLASSES = {ALLOWED: "allowed", BLOCKED: "blocked", MIXED: "mixed", BROKEN: "broken", NONE: "none"}


def _grid(analysis: Analysis, *, under_enforce: bool) -> str:
    g = grid(analysis.flows, under_enforce=under_enforce)
    prefix = f"{analysis.gim_namespace}/"
    head = "".join(f'<th class="col">{escape(c.removeprefix(prefix))}</th>' for c in g.cols)
    needs = {n.namespace for n in analysis.shadow.needs}
    allowed = set(analysis.inference.allowed_namespaces)
    rows = []
    for row in g.rows:
        cells = []
        for col in g.cols:
            mark = g.cell(row, col)
            tip = escape(g.reasons.get((row, col), SYMBOLS[mark]), quote=True)
            cells.append(f'<td class="c {CLASSES[mark]}" title="{tip}">{escape(mark)}</td>')
        tags = ""
        if row == analysis.gim_namespace:
            tags += '<span class="rt">GIM</span>'
        if row in allowed:
            tags += '<span class="rt">listed</span>'
        if row in needs:
            tags += '<span class="rt need">needs GIM</span>'
        rows.append(f"<tr><th>{escape(row)}{tags}</th>{''.join(cells)}</tr>")
    return (
        f'<table class="grid"><tr><th>source namespace &#8595; / GIM pod:port &#8594;</th>{head}</tr>'
        f"{''.join(rows)}</table>"
    )


def _legend() -> str:
    items = "".join(f'<span><i class="{CLASSES[m]}"></i>{escape(text)}</span>' for m, text in SYMBOLS.items())
    return f'<p class="legend">{items}</p>'


def _configuration(analysis: Analysis) -> str:
    inf = analysis.inference
    mode = inf.mode
    if mode == DRYRUN:
        covers = "ingress and egress" if inf.safety_net_egress else "ingress only"
        mode += f" (safety net {', '.join(inf.safety_nets)}, covers {covers})"
    rows = [
        ("mode", mode),
        ("allowedNamespaces", ", ".join(inf.allowed_namespaces) or "(none)"),
        ("extraPolicies", ", ".join(inf.extra_policies) or "(none)"),
        ("Helm release", ", ".join(inf.releases) or "(none recorded)"),
    ]
    head = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    policies = "".join(
        f"<tr><td>{escape(p.key)}</td><td>{escape(', '.join(p.roles))}</td>"
        f"<td>{escape(str(p.owner) if p.owner else 'no: not installed by Helm')}</td>"
        f"<td>{escape(p.detail)}</td></tr>"
        for p in inf.policies
    )
    table = f"<table>{head}</table>"
    if policies:
        table += (
            "<h3>Policies in the GIM namespace</h3><table><tr><th>policy</th><th>role</th>"
            "<th>installed by</th><th>what it does</th></tr>"
            f"{policies}</table>"
        )
    return table


def _shadow(analysis: Analysis) -> str:
    inf = analysis.inference
    found = analysis.shadow
    if not found.needs and not found.host_network and not found.observed_only:
        return "<p>Nothing in the input shows another namespace reaching GIM.</p>"
    rows = []
    for need in analysis.shadow.needs:
        blocked = need.namespace in analysis.would_block
        word = ("blocked" if inf.mode == ENFORCE else "would be blocked") if blocked else "allowed"
        tag = f'<span class="tag {"blocked" if blocked else "allowed"}">{word}</span>'
        listed = "yes" if need.namespace in inf.allowed_namespaces else "no"
        evidence = "".join(f"<li>{escape(e)}</li>" for e in [*need.evidence, *need.observed])
        why = "".join(
            f"<li>{escape(b.source)} &rarr; {escape(b.target)}: {escape(b.reason)}</li>"
            for b in analysis.would_block.get(need.namespace, [])[:5]
        )
        rows.append(
            f"<tr><td>{escape(need.namespace)}</td><td>{tag}</td><td>{listed}</td>"
            f"<td><ul>{evidence}</ul>{_blocked_list(why)}</td></tr>"
        )
    for need in found.observed_only:
        blocked = need.namespace in analysis.observed_blocked
        word = "observed, no API evidence" + (": enforce would block it" if blocked else "")
        evidence = "".join(f"<li>{escape(e)}</li>" for e in need.observed)
        rows.append(
            f"<tr><td>{escape(need.namespace)}</td><td><span class='tag mixed'>{escape(word)}</span></td>"
            f"<td>no</td><td><ul>{evidence}</ul></td></tr>"
        )
    for need in found.host_network:
        evidence = "".join(f"<li>{escape(e)}</li>" for e in [*need.evidence, *need.observed])
        rows.append(
            f"<tr><td>{escape(need.namespace)}</td><td><span class='tag mixed'>host network</span></td>"
            f"<td>n/a</td><td><ul>{evidence}</ul></td></tr>"
        )
    return (
        "<table><tr><th>namespace</th><th>under enforce</th><th>in allowedNamespaces</th>"
        "<th>evidence</th></tr>" + "".join(rows) + "</table>"
    )


def _blocked_list(items: str) -> str:
    return f'<b>blocked under enforce:</b><ul class="why">{items}</ul>' if items else ""


def _list(title: str, items: list[str]) -> str:
    if not items:
        return ""
    return f"<h2>{escape(title)}</h2><ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def _probes(analysis: Analysis) -> str:
    if not analysis.live:
        return ""
    rows = "".join(
        f"<tr><td>{escape(p.client)}</td>"
        f"<td>{escape(p.target)}:{p.port}/{escape(p.protocol)} ({escape(p.via)})</td>"
        f"<td>{'allowed' if p.expected_allowed else 'blocked'}</td><td>{escape(p.outcome)}</td>"
        f"<td>{p.latency_s:.2f}s</td><td>{'yes' if p.agrees else '<b>NO</b>'}</td>"
        f"<td><code>{escape(p.repro)}</code></td></tr>"
        for p in analysis.probes
    )
    return (
        "<h2>Probes</h2><table><tr><th>client</th><th>target</th><th>expected</th><th>observed</th>"
        f"<th>latency</th><th>agrees</th><th>repro</th></tr>{rows}</table>"
    )


def to_html(analysis: Analysis) -> str:
    inf = analysis.inference
    if analysis.conforms:
        verdict = '<div class="verdict ok">Conforms: exit status 0</div>'
    else:
        items = "".join(f"<li>{escape(p)}</li>" for p in analysis.problems[:50])
        more = len(analysis.problems) - 50
        extra = f"<li>... and {more} more</li>" if more > 0 else ""
        verdict = (
            f'<div class="verdict ko">Does not conform: exit status {analysis.exit_status}'
            f"<ul>{items}{extra}</ul></div>"
        )
    matrix = ""
    if analysis.flows:
        panes = [f"<div><h3>Now ({escape(inf.mode)})</h3>{_grid(analysis, under_enforce=False)}</div>"]
        if inf.mode != ENFORCE:
            panes.append(
                f"<div><h3>After the switch to enforce</h3>{_grid(analysis, under_enforce=True)}</div>"
            )
        matrix = f'<h2>Expected verdicts</h2><div class="panes">{"".join(panes)}</div>{_legend()}'
    body = (
        f"<h1>GIM network policies: {escape(analysis.gim_namespace)}</h1>"
        f'<div class="sub">gim-netpol verify, from {escape(analysis.source)}</div>'
        f"{verdict}"
        f"<h2>Inferred configuration</h2>{_configuration(analysis)}"
        f"<h2>Who needs to reach GIM (shadow diff)</h2>{_shadow(analysis)}"
        f"{matrix}"
        f"<h2>Values to paste</h2><pre>{escape(values_snippet(analysis))}</pre>"
        f"{_probes(analysis)}"
        f"{html_section(analysis.cni_features)}"
        f"{_list('Warnings', analysis.warnings)}{_list('Notes', analysis.notes)}"
    )
    title = escape(f"gim-netpol verify {analysis.gim_namespace}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{CSS}</style></head><body>{body}</body></html>\n"
    )
