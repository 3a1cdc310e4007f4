"""Truth tables like the upstream e2e tests print (kubernetes test/e2e/network/netpol/truthtable.go).

Sources are rows, destinations are columns, one character per cell. Pod names ("ns/pod") are too long
for column headers, so columns are numbered: a row that is also a column carries its number, which
makes a square table read without a legend; columns that are not rows are listed under the table.

    port 8080/TCP
           1 2 3
    1 x/a  - . X
    2 x/b  . - X
    3 y/a  . . -
    . allowed  X blocked  - not probed
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

# What a cell means; callers add their own characters (R refused, E error, ! mismatch...).
SYMBOLS: Mapping[str, str] = {".": "allowed", "X": "blocked", "-": "not probed"}


def render_table(
    rows: Sequence[str],
    cols: Sequence[str],
    cell: Callable[[str, str], str],
    *,
    title: str = "",
    symbols: Mapping[str, str] = SYMBOLS,
) -> str:
    """The table of ``cell(row, col)`` for every row and column, as text (no trailing newline).

    ``cell`` returns one character. The key under the table lists the ``symbols`` that occur.
    """
    number = {col: i for i, col in enumerate(cols, start=1)}
    width = len(str(len(cols))) if cols else 1
    row_numbers = [str(number[r]) if r in number else "" for r in rows]
    num_width = max((len(n) for n in row_numbers), default=0)
    label_width = max((len(r) for r in rows), default=0)

    def label(num: str, name: str) -> str:
        prefix = f"{num:>{num_width}} " if num_width else ""
        return f"{prefix}{name:<{label_width}}  "

    lines = [title] if title else []
    if not rows or not cols:
        return "\n".join([*lines, "(empty table)"])
    pad = " " * len(label("", ""))
    lines.append((pad + " ".join(f"{i:>{width}}" for i in range(1, len(cols) + 1))).rstrip())
    used: set[str] = set()
    for num, row in zip(row_numbers, rows, strict=True):
        marks = []
        for col in cols:
            mark = cell(row, col)
            if len(mark) != 1:
                raise ValueError(f"a cell is one character, got {mark!r} for {row} -> {col}")
            used.add(mark)
            marks.append(f"{mark:>{width}}")
        lines.append((label(num, row) + " ".join(marks)).rstrip())
    row_set = set(rows)
    extra = [col for col in cols if col not in row_set]
    if extra:
        lines.append("columns:")
        lines.extend(f"  {number[col]:>{width}} {col}" for col in extra)
    key = [f"{mark} {meaning}" for mark, meaning in symbols.items() if mark in used]
    if key:
        lines.append("  ".join(key))
    return "\n".join(lines)
