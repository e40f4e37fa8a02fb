"""Markdown pipe tables (a header row, an alignment row ``| --- | :-: |``, body rows) to one unit per row.

The rows go through ``rag.ingest.tables`` as every table does: each carries the table's title (the
heading or short line right before it) and its column headers. Text around the tables stays as
written; a file without a pipe table is its decoded text, untouched, as before. Lines inside fenced
code blocks are never a table.
"""

from __future__ import annotations

import re

from rag.errors import LoaderError
from rag.ingest.decoding import decode_bytes
from rag.ingest.limits import TextBudget
from rag.ingest.sheets import MAX_CELLS
from rag.ingest.tables import Grid, add_rows, table_title
from rag.ingest.units import Extracted, UnitText

KIND = "Markdown"
_ALIGN_CELL = re.compile(r"^\s*:?-+:?\s*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_SPLIT = re.compile(r"(?<!\\)\|")


def markdown_units(raw: bytes, name: str) -> tuple[Extracted, str]:
    """The text of a Markdown file with each pipe table's rows as units (``table`` = the table's number
    in the file, ``row`` = the row's, the header row 1), and the encoding it was decoded with."""
    text, encoding = decode_bytes(raw, name)
    lines = text.splitlines(keepends=True)
    tables = _tables(lines)
    if not tables:
        return Extracted(text), encoding
    out = UnitText(TextBudget(name, KIND))
    cells = 0
    pos = 0
    for n, (first, last) in enumerate(tables, 1):
        rows = [_cells(line) for i, line in enumerate(lines[first:last]) if i != 1]  # the alignment row is no row
        cells += sum(len(r) for r in rows)
        if cells > MAX_CELLS:
            raise LoaderError("doc.too_many_cells", name=name, kind=KIND, limit=MAX_CELLS)
        before = "".join(lines[pos:first])
        out.text(before)
        above = [line for line in before.splitlines() if line.strip()]
        add_rows(out, Grid(rows), table_title(above[-1] if above else None), table=n)
        pos = last
    out.text("".join(lines[pos:]))
    return out.result(), encoding


def _tables(lines: list[str]) -> list[tuple[int, int]]:
    """``(first, end)`` line ranges of the pipe tables: a header row with a pipe, an alignment row of as
    many cells, then the rows up to a blank line or a line without a pipe."""
    found: list[tuple[int, int]] = []
    fenced = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            fenced = not fenced
        elif (not fenced and "|" in line and i + 1 < len(lines) and _is_alignment(lines[i + 1])
              and len(_cells(line)) == len(_cells(lines[i + 1]))):
            end = i + 2
            while end < len(lines) and lines[end].strip() and "|" in lines[end]:
                end += 1
            found.append((i, end))
            i = end
            continue
        i += 1
    return found


def _is_alignment(line: str) -> bool:
    cells = _cells(line)
    return "-" in line and all(_ALIGN_CELL.match(c) for c in cells) and ("|" in line or len(cells) > 1)


def _cells(line: str) -> list[str]:
    """A row's cells: split at unescaped pipes, the outer pipes dropped, ``\\|`` read as a pipe."""
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    return [" ".join(c.replace("\\|", "|").split()) for c in _SPLIT.split(s)]
