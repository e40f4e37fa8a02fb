"""Tables to passages, one per row: each row carries its table's title and its column headers.

A question such as "2023年二季度的营收是多少" names a row by its cells ("二季度") and a column by its
header ("营收"), so a row is indexed as a unit of its own (``rag.ingest.units``) whose text says both:

    【季度营收 · 第5行】
    季度：2023年二季度 | 营收（万元）/产品：1234 | 营收（万元）/服务：56

Merged cells are resolved first: a merged cell's value fills every cell it covers, so a header merged
across two columns heads both (joined with the sub-header under it), and a value merged down several
rows (a year beside its quarters) is in each of them. Every table format (DOCX, HTML, Markdown,
spreadsheets, CSV) is read into a ``Grid`` and goes through here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from rag.ingest.units import UnitText

_NUMBERISH = frozenset("0123456789.,-+% ¥$€")
TITLE_MAX = 60  # characters: a line longer than this before a table is prose, not its title


@dataclass(frozen=True)
class Merge:
    """A merged range of a grid, inclusive, 0-based row and column indices into ``Grid.rows``."""

    top: int
    left: int
    bottom: int
    right: int


@dataclass
class Grid:
    """A table as its source holds it: cell text by row, its merged ranges, the source's number for
    ``rows[0]`` (a sheet's first used row may be row 3) and the title found around it, if any."""

    rows: list[list[str]]
    merges: list[Merge] = field(default_factory=list)
    first_row: int = 1
    title: str | None = None


def cell_text(value: object) -> str:
    """A cell's value as people read it: 1234 not 1234.0, a date without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return " ".join(str(value).split())  # a cell's own line breaks would split its row into sentences


def table_title(line: str | None) -> str | None:
    """A table's title from its caption or the line before it (``表1 各街道人口：``, ``## 人口``): its
    heading marks and closing colon or stop taken off; None for a line too long to be a title."""
    if not line:
        return None
    text = " ".join(line.strip().lstrip("#").split()).rstrip("：:。.")
    return text if 0 < len(text) <= TITLE_MAX else None


def add_rows(out: UnitText, grid: Grid, title: str | None, **place: object) -> int:
    """Each data row of ``grid`` as a unit of ``out``, titled ``title`` (else the title row the grid
    opens with), with ``place`` (``sheet=`` or ``table=``) and its ``row`` number in its meta.
    Returns the number of rows added."""
    rows = _filled(grid)
    width = max((len(r) for r in rows), default=0)
    rows = [r + [""] * (width - len(r)) for r in rows]
    filled = [i for i, r in enumerate(rows) if any(r)]
    if not filled:
        return 0
    first = filled[0]
    heading = grid.title
    if width > 1 and len({c for c in rows[first] if c}) == 1 and len(filled) > 1:
        heading = heading or next(c for c in rows[first] if c)  # a title row spread over the table
        first = filled[1]
    last_header = _header_end(grid, rows, first)
    labels = _labels(rows, first, last_header)
    title = " · ".join(t for t in (title, heading) if t) or None
    added = 0
    for i in range(last_header + 1, len(rows)):
        cells = [f"{label}：{value}" if label else value for label, value in zip(labels, rows[i]) if value]
        if not cells:
            continue
        number = grid.first_row + i
        head = f"【{title} · 第{number}行】" if title else f"【第{number}行】"
        out.unit(f"{head}\n{' | '.join(cells)}", title, **place, row=number)
        added += 1
    return added


def _filled(grid: Grid) -> list[list[str]]:
    rows = [list(r) for r in grid.rows]
    for m in grid.merges:
        if m.top >= len(rows) or m.left >= len(rows[m.top]):
            continue
        value = rows[m.top][m.left]
        for r in range(m.top, min(m.bottom, len(rows) - 1) + 1):
            row = rows[r]
            row.extend([""] * (m.right + 1 - len(row)))
            for c in range(m.left, m.right + 1):
                row[c] = value
    return rows


def _header_end(grid: Grid, rows: list[list[str]], first: int) -> int:
    """The last header row: the first row, down to where its merged cells end (a header merged down
    two rows), and one row further while a header merged across columns has sub-headers under it.
    A first row of numbers is data: the table has no header then (``first - 1``)."""
    if _numbers(rows[first]):
        return first - 1
    end = first
    while True:
        inside = [m for m in grid.merges if first <= m.top <= end and (m.bottom > m.top or m.right > m.left)]
        new_end = max([end, *(m.bottom for m in inside)])
        if (any(m.right > m.left and m.bottom == new_end for m in inside) and new_end + 1 < len(rows)
                and not _numbers(rows[new_end + 1])):
            new_end += 1  # the sub-headers under a header merged across
        if new_end == end:
            return end
        end = new_end


def _numbers(row: list[str]) -> bool:
    """Mostly numbers: a row of data, not of headers."""
    cells = [c for c in row if c]
    return bool(cells) and sum(all(ch in _NUMBERISH for ch in c) for c in cells) * 2 > len(cells)


def _labels(rows: list[list[str]], first: int, last: int) -> list[str]:
    """Each column's header: its header cells top to bottom, a repeat (a merged cell's fill) once."""
    labels = []
    for c in range(len(rows[0]) if rows else 0):
        parts: list[str] = []
        for r in range(first, last + 1):
            if rows[r][c] and (not parts or parts[-1] != rows[r][c]):
                parts.append(rows[r][c])
        labels.append("/".join(parts))
    return labels
