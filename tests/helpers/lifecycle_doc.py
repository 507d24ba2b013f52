"""docs/lifecycle.md's rule tables read as data: the header and the rows of each marked table.

Why shared: the page is checked twice, each table against the pure functions of
``engine/policy.py`` (tests/unit/test_lifecycle_tables.py) and each row carried out by a real
engine (tests/engine/test_lifecycle_rows.py); both must read the page the same way, so a
table is found by its ``<!-- table: NAME -->`` marker and split here only.
"""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md"
"""The page."""

Row = tuple[list[set[str] | None], str]
"""The input cells (None: ``*``) and the result of one table row."""


def cells(name: str) -> tuple[list[str], list[list[str]]]:
    """The header and each row's cells, as the text the page writes (stripped).

    Raises:
        AssertionError: when the page has no table ``name`` or a row has the wrong width.
    """
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- table: {re.escape(name)} -->\n((?:\|.*\n)+)", text)
    assert match, f"docs/lifecycle.md has no table {name!r}"
    lines = match.group(1).strip().splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows: list[list[str]] = []
    for line in lines[2:]:
        row = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(row) == len(header), f"{name}: row {line!r} has the wrong width"
        rows.append(row)
    return header, rows


def table(name: str) -> tuple[list[str], list[Row]]:
    """The header and rows of the table marked ``<!-- table: NAME -->`` in the page.

    Each input cell is the set of values it matches (``a, b``), or None for ``*``.
    """
    header, rows = cells(name)
    parsed: list[Row] = []
    for row in rows:
        inputs = [None if c == "*" else {v.strip() for v in c.split(",")} for c in row[:-1]]
        parsed.append((inputs, row[-1]))
    return header, parsed


def row_text(row: list[str]) -> str:
    """One row's cells joined as the page writes them: ``a | b, c | result``."""
    return " | ".join(row)
