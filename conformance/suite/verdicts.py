"""Observed against expected: probe, retry only what disagrees, and explain every mismatch.

A flow expected allowed must be seen connected; a flow expected blocked must be seen blocked on two
samples in a row (a single timeout can be a slow pod). A refusal is read with what is known of the
destination: on a port the destination is known to serve (a ready stand-in declaring it), the CNI
rejected the connection (kube-router answers a denied connection with ICMP port-unreachable), which
is a block, "rejected"; elsewhere the packets got through and nothing listens, "refused". An error (the
exec failed, the pod is not ready...) is never counted as blocked: it is an infrastructure problem and
is reported as such.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tenacity import RetryError, Retrying, retry_if_result

from conformance.backends.base import Backend
from conformance.netpol.probing import Observation, Outcome, Probe, rejected
from conformance.netpol.truthtable import render_table
from conformance.suite.cross_node import NodeCoverage, cross_node, same_node
from conformance.suite.flows import Flow

OBSERVED_SYMBOLS = {
    ".": "connected",
    "X": "blocked",
    "x": "rejected (refused on a port the pod serves: blocked)",
    "R": "refused",
    "E": "error",
    "-": "not probed",
}
DIFF_SYMBOLS = {".": "as expected", "!": "mismatch", "-": "not probed"}
CONTRACT_SYMBOLS = {
    ".": "allowed",
    "X": "blocked",
    "!": "the applied policies break this promise",
    "-": "not probed",
}
OUTCOME_CELL = {
    Outcome.CONNECTED: ".",
    Outcome.BLOCKED: "X",
    Outcome.REJECTED: "x",
    Outcome.REFUSED: "R",
    Outcome.ERROR: "E",
}


def settled(expected_allowed: bool, samples: Sequence[Observation]) -> bool:
    """Observed as expected: connected, or blocked (dropped or rejected) on the last two samples in a row."""
    if not samples:
        return False
    if expected_allowed:
        return samples[-1].outcome is Outcome.CONNECTED
    return len(samples) >= 2 and all(o.outcome.blocked for o in samples[-2:])


def observe(
    backend: Backend,
    probes: Sequence[Probe],
    expected_allowed: Sequence[bool],
    *,
    probe_timeout_s: float,
    deadline_s: float,
    retry_interval_s: float = 1.0,
    served: Sequence[bool] | None = None,
    settles: Callable[[bool, Sequence[Observation]], bool] = settled,
) -> list[list[Observation]]:
    """The samples of every probe: all once, then only the unsettled ones again, until every probe has
    settled (``settles``) or the deadline has passed. ``served[i]`` says the destination of probe i is
    known to listen on its port: a refusal there is a reject.

    A connection seen while the policies were not in force yet proves nothing: right after an apply
    the CNI is still programming, and a flow expected blocked that still got through shows it. So an
    allowed flow whose connection was sampled in or before the last round in which any flow expected
    blocked got through is probed again (with the retries already due, so it costs no extra round):
    a CNI that skips an allow policy is caught once its deny holds, not passed while nothing held."""
    samples: list[list[Observation]] = [[] for _ in probes]
    sampled_in: list[int] = [0] * len(probes)  # the round of each probe's last sample
    known = list(served) if served is not None else [False] * len(probes)
    rounds = 0
    last_leak = 0  # the last round in which a flow expected blocked was not blocked

    def due() -> list[int]:
        return [
            i
            for i, s in enumerate(samples)
            if not settles(expected_allowed[i], s) or (expected_allowed[i] and sampled_in[i] <= last_leak)
        ]

    clock = backend.clock
    round_started = [clock.now()]

    def probe_pending() -> list[int]:
        nonlocal rounds, last_leak
        pending = due()
        if pending:
            rounds += 1
            round_started[0] = clock.now()
            # A flow expected blocked that has no block to build on is sampled twice in the round, from
            # the second round on: the first follows a change the CNI may still be programming, so a
            # block seen then may be the old policies'; it is confirmed by the next round.
            confirm = [
                rounds > 1 and not expected_allowed[i] and not (samples[i] and samples[i][-1].outcome.blocked)
                for i in pending
            ]
            got = backend.probe_samples([probes[i] for i in pending], probe_timeout_s, confirm)
            for i, observations in zip(pending, got, strict=True):
                for o in observations:
                    observed = rejected(o) if known[i] else o
                    samples[i].append(observed)
                    if not expected_allowed[i] and observed.outcome.reached:
                        last_leak = rounds
                sampled_in[i] = rounds
        return due()

    def until_next_round(_state: object) -> float:
        # Rounds start ``retry_interval_s`` apart: a round that took longer (a timeout) is followed at once.
        return max(0.0, retry_interval_s - (clock.now() - round_started[0]))

    start = clock.now()
    retrying = Retrying(
        stop=lambda _state: clock.now() - start >= deadline_s,  # on the backend's clock, not tenacity's
        wait=until_next_round,
        retry=retry_if_result(bool),
        sleep=clock.sleep,
        reraise=False,
    )
    with contextlib.suppress(RetryError):  # what has not settled is the caller's to report
        retrying(probe_pending)
    return samples


@dataclass
class FlowResult:
    flow: Flow
    samples: list[Observation] = field(default_factory=list)

    @property
    def last(self) -> Observation | None:
        return self.samples[-1] if self.samples else None

    @property
    def settled(self) -> bool:
        return settled(self.flow.expected.allowed, self.samples)

    @property
    def infrastructure_error(self) -> bool:
        return not self.settled and self.last is not None and self.last.outcome is Outcome.ERROR


@dataclass
class CheckReport:
    """The outcome of one check: every flow with its samples, and how long it took to hold."""

    label: str
    backend: str
    results: list[FlowResult]
    converge_s: float
    probe_timeout_s: float
    repro: dict[int, str] = field(default_factory=dict)
    diagnostics: dict[str, str] = field(default_factory=dict)  # client pod -> its events, for errors
    # More to say about a mismatch (the NetworkPolicy features of the rules involved and their CNI canary)
    hints: Callable[[FlowResult], list[str]] | None = None
    apply_s: float = 0.0  # the API calls that deployed the policies under check
    ready_s: float = 0.0  # confirming that the probe pods are still Ready
    shared_from: str = ""  # the check whose observation this one reuses (same objects, same fleet)
    nodes: NodeCoverage | None = None  # where the pods ran; a check with none crossing nodes may fail

    @property
    def retries(self) -> int:
        """Probes run again because they had not settled yet (convergence, or a flake)."""
        return sum(len(r.samples) for r in self.results) - sum(1 for r in self.results if r.samples)

    @property
    def contract_breaks(self) -> list[FlowResult]:
        return [r for r in self.results if r.flow.contract_broken]

    @property
    def mismatches(self) -> list[FlowResult]:
        return [r for r in self.results if not r.settled]

    @property
    def cross_node_problem(self) -> str:
        """Why this check fails although its probes agree: no flow crossed nodes where several could."""
        return self.nodes.problem if self.nodes is not None else ""

    @property
    def ok(self) -> bool:
        return not self.contract_breaks and not self.mismatches and not self.cross_node_problem

    def tables(self) -> str:
        """Expected, observed and difference truth tables, one set per way of reaching the target."""
        out: list[str] = []
        for via in ("pod", "service"):
            results = [r for r in self.results if r.flow.probe.via == via]
            if not results:
                continue
            rows = list(dict.fromkeys(r.flow.probe.client for r in results))
            cols = list(dict.fromkeys(_column(r) for r in results))
            cell = {(r.flow.probe.client, _column(r)): r for r in results}

            def pick(fn, cell=cell):
                return lambda row, col: fn(cell[(row, col)]) if (row, col) in cell else "-"

            head = f"{self.label}: via {via} IP"
            out.append(render_table(rows, cols, pick(_expected_cell), title=f"{head}, expected"))
            if any(r.flow.contract_broken for r in results):
                out.append(
                    render_table(
                        rows,
                        cols,
                        pick(_contract_cell),
                        title=f"{head}, documented contract",
                        symbols=CONTRACT_SYMBOLS,
                    )
                )
            out.append(
                render_table(
                    rows, cols, pick(_observed_cell), title=f"{head}, observed", symbols=OBSERVED_SYMBOLS
                )
            )
            out.append(
                render_table(rows, cols, pick(_diff_cell), title=f"{head}, difference", symbols=DIFF_SYMBOLS)
            )
        return "\n".join(out)

    def explain(self) -> str:
        """Everything a person needs to act on a failure, or '' when the check passed."""
        if self.ok:
            return ""
        if self.cross_node_problem and not self.contract_breaks and not self.mismatches:
            return f"{self.label} [{self.backend}]: {self.cross_node_problem}"
        lines = [
            f"{self.label} [{self.backend}]: {len(self.mismatches)} of {len(self.results)} probes disagree"
        ]
        if self.cross_node_problem:
            lines.append(self.cross_node_problem)
        if self.contract_breaks:
            lines.append(
                f"{len(self.contract_breaks)} flows where the applied policies break the documented contract:"
            )
            for r in self.contract_breaks:
                f = r.flow
                want = "allowed" if f.promise and f.promise.allowed else "blocked"
                lines.append(
                    f"  promise '{f.promise.promise if f.promise else '?'}' broken: {_flow_name(f)} should be"
                    f" {want}; the applied policies say: {f.expected.reason}"
                )
        for why, group in self._by_explanation().items():
            for r in group:
                lines.extend(self._flow_lines(r))
            if len(group) > 1:
                lines.append(f"    these {len(group)} flows, why expected: {why[0]}")
            else:
                lines.append(f"    why expected: {why[0]}")
            lines.extend(f"    {hint}" for hint in why[1])
        lines.append(self.tables())
        return "\n".join(lines)

    def _by_explanation(self) -> dict[tuple[str, tuple[str, ...]], list[FlowResult]]:
        """The mismatches grouped by their explanation (why expected, and the feature hints), in order of
        first appearance: flows that share one are listed together and it is printed once."""
        groups: dict[tuple[str, tuple[str, ...]], list[FlowResult]] = {}
        for r in self.mismatches:
            hints = self.hints(r) if self.hints is not None and not r.infrastructure_error else []
            groups.setdefault((r.flow.expected.reason, tuple(hints)), []).append(r)
        return groups

    def _flow_lines(self, r: FlowResult) -> list[str]:
        """One mismatching flow: what was expected and observed, the probe's detail, how to repeat it."""
        f = r.flow
        kind = "INFRASTRUCTURE ERROR" if r.infrastructure_error else "MISMATCH"
        lines = [
            f"  {kind} {_flow_name(f)}: expected {'connected' if f.expected.allowed else 'blocked'},"
            f" observed [{_samples(r.samples)}]"
        ]
        if r.last and r.last.detail:
            lines.append(f"    detail: {r.last.detail.strip()[:300]}")
        if id(r) in self.repro:
            lines.append(f"    repro: {self.repro[id(r)]}")
        if r.infrastructure_error and f.probe.client in self.diagnostics:
            lines.append(f"    events of {f.probe.client}: {self.diagnostics[f.probe.client]}")
        return lines

    def summary(self) -> dict:
        return {
            "label": self.label,
            "backend": self.backend,
            "probes": len(self.results),
            "mismatches": len(self.mismatches),
            "contract_breaks": len(self.contract_breaks),
            "apply_s": round(self.apply_s, 3),
            "ready_s": round(self.ready_s, 3),
            "converge_s": round(self.converge_s, 3),
            "retries": self.retries,
            "shared_from": self.shared_from,
            # pod-IP probes whose two ends run on the same node / on different nodes
            "same_node": sum(1 for r in self.results if r.flow.probe.via == "pod" and same_node(r.flow)),
            "cross_node": sum(1 for r in self.results if r.flow.probe.via == "pod" and cross_node(r.flow)),
            **(self.nodes.to_json() if self.nodes is not None else {}),
        }


def _samples(samples: Sequence[Observation]) -> str:
    """The outcomes in order, runs folded: 'blocked, connected x3'."""
    runs: list[list] = []
    for o in samples:
        if runs and runs[-1][0] is o.outcome:
            runs[-1][1] += 1
        else:
            runs.append([o.outcome, 1])
    shown = [f"{outcome.value}" + (f" x{n}" if n > 1 else "") for outcome, n in runs[-6:]]
    return ("..., " if len(runs) > 6 else "") + ", ".join(shown) if shown else "nothing"


def _flow_name(f: Flow) -> str:
    p = f.probe
    return f"{p.client} -> {p.target} ({p.via} {p.host}:{p.port}/{p.protocol})"


def _column(r: FlowResult) -> str:
    return f"{r.flow.probe.target}:{r.flow.probe.port}"


def _expected_cell(r: FlowResult) -> str:
    return "." if r.flow.expected.allowed else "X"


def _contract_cell(r: FlowResult) -> str:
    promise = r.flow.promise
    if promise is None:
        return "-"
    return "!" if r.flow.contract_broken else ("." if promise.allowed else "X")


def _observed_cell(r: FlowResult) -> str:
    return OUTCOME_CELL[r.last.outcome] if r.last else "?"


def _diff_cell(r: FlowResult) -> str:
    return "." if r.settled else "!"


def expected_tables(flows: Sequence[Flow], label: str) -> str:
    """The expected truth tables of ``flows`` (one per way of reaching the target); a contract break
    is marked ``!``."""
    out: list[str] = []
    for via in ("pod", "service"):
        chosen = [f for f in flows if f.probe.via == via]
        if not chosen:
            continue
        rows = list(dict.fromkeys(f.probe.client for f in chosen))
        cols = list(dict.fromkeys(f"{f.probe.target}:{f.probe.port}" for f in chosen))
        cells = {(f.probe.client, f"{f.probe.target}:{f.probe.port}"): f for f in chosen}

        def cell(row: str, col: str, cells=cells) -> str:
            f = cells.get((row, col))
            if f is None:
                return "-"
            return "!" if f.contract_broken else ("." if f.expected.allowed else "X")

        out.append(render_table(rows, cols, cell, title=f"{label}: via {via} IP"))
    return "\n".join(out)


def check(
    backend: Backend,
    flows: Sequence[Flow],
    *,
    label: str,
    probe_timeout_s: float,
    deadline_s: float,
    retry_interval_s: float = 1.0,
) -> CheckReport:
    """Probe every flow, then retry only the unsettled ones until all settle or the deadline passes."""
    start = backend.clock.now()
    samples = observe(
        backend,
        [f.probe for f in flows],
        [f.expected.allowed for f in flows],
        probe_timeout_s=probe_timeout_s,
        deadline_s=deadline_s,
        retry_interval_s=retry_interval_s,
        served=[f.destination_serves for f in flows],
    )
    results = [FlowResult(f, s) for f, s in zip(flows, samples, strict=True)]
    report = CheckReport(label, backend.name, results, backend.clock.now() - start, probe_timeout_s)
    for r in report.mismatches:
        report.repro[id(r)] = backend.repro(r.flow.probe, probe_timeout_s)
        if r.infrastructure_error and r.flow.probe.client not in report.diagnostics:
            report.diagnostics[r.flow.probe.client] = backend.diagnose(r.flow.probe.client)
    return report
