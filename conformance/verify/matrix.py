"""The expected flows as a grid: source namespaces as rows, GIM pod ports as columns.

A namespace stands for all its pods, so a cell can be mixed (some of its pods allowed, others not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from conformance.verify.expected import ExpectedFlow

ALLOWED, BLOCKED, MIXED, BROKEN, NONE = ".", "X", "~", "!", "-"
SYMBOLS = {
    ALLOWED: "allowed",
    BLOCKED: "blocked",
    MIXED: "allowed for some pods of the namespace only",
    BROKEN: "breaks the documented contract",
    NONE: "no flow",
}


@dataclass
class Grid:
    rows: list[str]  # source namespaces
    cols: list[str]  # "namespace/pod:port/protocol"
    cells: dict[tuple[str, str], str]
    reasons: dict[tuple[str, str], str]  # one reason per cell, for tooltips

    def cell(self, row: str, col: str) -> str:
        return self.cells.get((row, col), NONE)


def column(flow: ExpectedFlow) -> str:
    return f"{flow.destination}:{flow.port}/{flow.protocol}"


def grid(flows: Sequence[ExpectedFlow], *, under_enforce: bool = False) -> Grid:
    """The grid of the verdicts in place, or (``under_enforce``) of the verdicts enforce would give."""
    rows = sorted({f.source_namespace for f in flows})
    cols = sorted({column(f) for f in flows})
    groups: dict[tuple[str, str], list[ExpectedFlow]] = {}
    for f in flows:
        groups.setdefault((f.source_namespace, column(f)), []).append(f)
    cells: dict[tuple[str, str], str] = {}
    reasons: dict[tuple[str, str], str] = {}
    for key, group in groups.items():
        allowed = [f.enforce_allowed if under_enforce else f.allowed for f in group]
        if not under_enforce and any(f.violation for f in group):
            mark = BROKEN
            reasons[key] = next(f.violation for f in group if f.violation) or ""
        else:
            mark = ALLOWED if all(allowed) else BLOCKED if not any(allowed) else MIXED
            first = group[0]
            reasons[key] = first.enforce_reason if under_enforce else first.reason
        cells[key] = mark
    return Grid(rows, cols, cells, reasons)
