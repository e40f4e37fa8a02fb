"""Ruled tables in a PDF's text layer, one unit per row (``rag.ingest.tables``), found by pdfplumber.

pypdf reads a table as lines of cells with nothing to say which header a number is under; pdfplumber
finds the table's ruling lines (``find_tables`` with its default lattice settings) and its cells, merged
ones included. Each table of 2+ rows and 2+ columns becomes a ``Grid`` titled by the text line just above
it, and its rows replace the table's lines in the page's pypdf text; the rest of the page stays as pypdf
read it, and a page without such a table is not touched at all.

pdfplumber lays out every character of a page (seconds for a long PDF), so the work is bounded twice:
only pages whose pypdf text looks tabular are opened (``looks_tabular``: ``TABULAR_LINES`` lines of 3+
whitespace-separated fields, or ``SHORT_LINES`` short lines, as pypdf gives a table read a cell a line), and at most ``MAX_TABLE_PAGES`` of them per PDF; further pages keep their text as it is.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from rag.ingest.limits import TextBudget
from rag.ingest.tables import Grid, Merge, add_rows, cell_text, table_title
from rag.ingest.units import UnitText
from rag.types import Unit

TABULAR_LINES = 3  # lines of 3+ fields on a page before pdfplumber looks at it for tables
SHORT_LINES = 8  # or this many lines of at most SHORT_CHARS characters, none a sentence's end
SHORT_CHARS = 16
MAX_TABLE_PAGES = 100  # pages of one PDF looked at for tables; later pages keep their pypdf text
_MIN_SIZE = 2  # rows and columns: a smaller ruled box is a frame, not a table
_EDGE = 1.0  # points: slack when matching cell edges to the grid's lines


@dataclass(frozen=True)
class PageText:
    """A page's text and its units (offsets in that text)."""

    text: str
    units: tuple[Unit, ...] = ()


def looks_tabular(text: str) -> bool:
    """Whether a page's pypdf text may hold a table: rows of 3+ fields, or many short lines (cells)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if sum(len(line.split()) >= 3 for line in lines) >= TABULAR_LINES:
        return True
    return sum(len(line) <= SHORT_CHARS and line[-1] not in "。！？.!?" for line in lines) >= SHORT_LINES


def table_pages(raw: bytes, pages: list[str], name: str) -> dict[int, PageText]:
    """The pages (1-based) of ``pages`` (pypdf's text, one per page) that hold ruled tables, with their
    tables as row units; {} without pdfplumber (the formats extra) or without tabular pages."""
    wanted = [n for n, text in enumerate(pages, 1) if text and looks_tabular(text)][:MAX_TABLE_PAGES]
    if not wanted:
        return {}
    try:
        import pdfplumber  # noqa: PLC0415 - pdfplumber (pdfminer, ~0.3 s) only for PDFs with tabular pages
        from pdfminer.psexceptions import PSException  # noqa: PLC0415 - comes with pdfplumber, as above
        from pdfplumber.utils.exceptions import MalformedPDFException, PdfminerException  # noqa: PLC0415 - as above
    except ImportError:
        return {}
    budget = TextBudget(name, "PDF")  # the rows repeat headers: what they become is bounded too
    found: dict[int, PageText] = {}
    count = 0
    try:
        with pdfplumber.open(io.BytesIO(raw)) as pdf:
            for n in wanted:
                if n > len(pdf.pages):
                    break
                page = pdf.pages[n - 1]
                tables = [t for t in page.find_tables() if len(t.rows) >= _MIN_SIZE and max(len(r.cells) for r in t.rows) >= _MIN_SIZE]
                if tables:
                    found[n] = _page_with_rows(page, pages[n - 1], sorted(tables, key=lambda t: t.bbox[1]), count, n, budget)
                    count += len(tables)
    except (PdfminerException, MalformedPDFException, PSException, ValueError, KeyError, TypeError, IndexError):
        return {}  # a file pdfminer cannot lay out: pypdf's text stands
    return found


def _page_with_rows(page, text: str, tables: list, before: int, number: int, budget: TextBudget) -> PageText:
    lines = text.split("\n")
    out = UnitText(budget)
    pos = 0  # the next line of ``lines`` not yet written
    for i, table in enumerate(tables):
        grid = _grid(table)
        start, end = _span(lines, pos, grid)
        title = _line_above(page, table)
        if start is not None:
            out.text("\n".join(lines[pos:start]))
            pos = end
        add_rows(out, grid, table_title(title), table=before + i + 1, page=number)
    out.text("\n".join(lines[pos:]))
    result = out.result()
    return PageText(result.text, result.units)


def _grid(table) -> Grid:
    """pdfplumber's cells as a grid: a merged cell is one cell (its top-left) and None in the places it
    covers; the places are found from the cell's box, and each merged range becomes a ``Merge``."""
    rows = [list(r.cells) for r in table.rows]
    width = max(len(r) for r in rows)
    lefts: list[float | None] = [min((r[c][0] for r in rows if c < len(r) and r[c]), default=None) for c in range(width)]
    tops = [r.bbox[1] for r in table.rows]
    texts = table.extract()
    cells = [[cell_text(v) for v in row] + [""] * (width - len(row)) for row in texts]
    merges = []
    for r, row in enumerate(rows):
        for c, box in enumerate(row):
            if box is None:
                continue
            x0, top, x1, bottom = box
            right = max((k for k in range(c, width) if lefts[k] is not None and x0 - _EDGE <= lefts[k] < x1 - _EDGE), default=c)
            low = max((k for k in range(r, len(rows)) if top - _EDGE <= tops[k] < bottom - _EDGE), default=r)
            if right > c or low > r:
                merges.append(Merge(r, c, low, right))
    return Grid(cells, merges)


def _key(text: str) -> str:
    return "".join(text.split())


def _span(lines: list[str], pos: int, grid: Grid) -> tuple[int | None, int]:
    """The lines of pypdf's text (from ``pos`` on) that are the table: the first run of lines made of
    the table's cell text that holds at least half of it; (None, pos) when pypdf read it otherwise."""
    cells = _key("".join(c for row in grid.rows for c in row))
    if not cells:
        return None, pos
    i = pos
    while i < len(lines):
        j, held = i, 0
        while j < len(lines) and _key(lines[j]) and all(part in cells for part in lines[j].split()):
            held += len(_key(lines[j]))
            j += 1
        if held * 2 >= len(cells):
            return i, j
        i = max(j, i + 1)
    return None, pos


def _line_above(page, table) -> str | None:
    """The text line just above ``table`` on ``page``, if any."""
    top = table.bbox[1]
    if top <= 1:
        return None
    above = page.crop((0, 0, page.width, top), strict=False).extract_text() or ""
    lines = [line for line in above.splitlines() if line.strip()]
    return lines[-1] if lines else None
