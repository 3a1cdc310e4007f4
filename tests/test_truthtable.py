"""Truth tables read like the upstream e2e tests' and stay readable with long pod names."""

from __future__ import annotations

import pytest

from conformance.netpol.truthtable import render_table

PODS = ["x/a", "x/b", "y/a"]


def blocked_to_y(src: str, dst: str) -> str:
    if src == dst:
        return "-"
    return "X" if dst.startswith("y/") else "."


def test_square_table_numbers_columns_on_the_rows() -> None:
    table = render_table(PODS, PODS, blocked_to_y, title="port 80/TCP")
    assert table.splitlines() == [
        "port 80/TCP",
        "       1 2 3",
        "1 x/a  - . X",
        "2 x/b  . - X",
        "3 y/a  . . -",
        ". allowed  X blocked  - not probed",
    ]


def test_every_cell_is_under_its_column_number() -> None:
    names = [f"gim-namespace-with-a-long-name/pod-{i}" for i in range(12)]
    table = render_table(names, names, lambda s, d: "X" if (s, d) == (names[3], names[10]) else ".")
    lines = table.splitlines()
    header, rows = lines[0], lines[1:13]
    col = header.index("11")  # the right-aligned number "11" ends over the cells of column 11
    assert [row[col + 1] for row in rows] == ["."] * 3 + ["X"] + ["."] * 8
    assert all(len(row) == len(header) for row in rows)
    # each row names its pod in full and carries the pod's column number
    assert rows[10].split()[:2] == ["11", names[10]]


def test_columns_that_are_not_rows_get_a_legend() -> None:
    table = render_table(["ingress-nginx/controller"], ["gim/nginx", "gim/api"], lambda s, d: ".")
    assert table.splitlines() == [
        "                          1 2",
        "ingress-nginx/controller  . .",
        "columns:",
        "  1 gim/nginx",
        "  2 gim/api",
        ". allowed",
    ]


def test_key_lists_only_the_marks_used_and_callers_add_their_own() -> None:
    symbols = {".": "allowed", "X": "blocked", "R": "refused", "!": "mismatch"}
    table = render_table(PODS, PODS, lambda s, d: "R" if s == d else "!", symbols=symbols)
    assert table.splitlines()[-1] == "R refused  ! mismatch"


def test_output_is_deterministic_and_keeps_the_given_order() -> None:
    rows = ["z/c", "x/a"]
    first = render_table(rows, rows, blocked_to_y)
    assert first == render_table(rows, rows, blocked_to_y)
    assert [line.split()[1] for line in first.splitlines()[1:3]] == ["z/c", "x/a"]


def test_a_cell_is_one_character() -> None:
    with pytest.raises(ValueError, match="one character"):
        render_table(PODS, PODS, lambda s, d: "ok")


def test_empty_table() -> None:
    assert render_table([], PODS, blocked_to_y, title="port 80/TCP") == "port 80/TCP\n(empty table)"
