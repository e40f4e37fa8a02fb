"""HTML pages with data tables: each table row a unit (``rag.ingest.tables``), the prose as before.

A page's data tables (those holding no other table: a table of tables is page layout) are taken out
of the parsed page before trafilatura looks for its main text, each replaced by a marker paragraph;
the main text is extracted as always (``rag.ingest.formats.html_main_text``) and each marker is
replaced by its table's rows, so rows stand where the table stood. A table whose marker trafilatura
dropped as boilerplate still has its rows, after the text. ``colspan``/``rowspan`` become the grid's
merged ranges; the table's title is its ``<caption>``, else the short heading or paragraph before it.
A page without data tables reads exactly as before (no units).
"""

from __future__ import annotations

import re

from rag.errors import LoaderError
from rag.ingest.decoding import decode_bytes
from rag.ingest.formats import html_main_text
from rag.ingest.limits import TextBudget
from rag.ingest.sheets import MAX_CELLS
from rag.ingest.tables import Grid, Merge, add_rows, table_title
from rag.ingest.units import Extracted, UnitText

KIND = "HTML"
_MARKER = "RAGTABLE{:04d}XQ"
_MARKER_RE = re.compile(r"RAGTABLE(\d{4})XQ")
_MAX_TABLES = 9999  # what the marker can number; more tables than that stay in the text as trafilatura reads them
_MAX_SPAN = 1000  # columns or rows one cell may span (browsers cap colspan at 1000, rowspan at 65534)
_FURNITURE = "//nav|//footer|//aside|//header|//script|//style|//form|//noscript|//template"


def html_units(raw: bytes, name: str) -> tuple[Extracted, str]:
    """The main text of a web page, its data tables' rows as units (``table`` = the table's number on
    the page, ``row`` = the row's, the header row 1), and the encoding it was decoded with."""
    text, encoding = decode_bytes(raw, name)
    try:
        import lxml.html  # noqa: PLC0415 - optional, heavy (comes with trafilatura, the formats extra)
    except ImportError:
        return Extracted(html_main_text(text)), encoding
    try:
        tree = lxml.html.fromstring(text)
    except (ValueError, lxml.etree.ParserError):
        return Extracted(html_main_text(text)), encoding
    for el in tree.xpath(_FURNITURE):
        el.drop_tree()
    tables = [t for t in tree.iter("table") if not t.xpath(".//table") and len(_rows(t)) > 1][:_MAX_TABLES]
    if not tables:
        return Extracted(html_main_text(text)), encoding
    cells = 0
    grids: list[tuple[Grid, str | None]] = []
    for n, table in enumerate(tables, 1):
        grid, covered = _grid(table)
        cells += covered
        if cells > MAX_CELLS:
            raise LoaderError("doc.too_many_cells", name=name, kind=KIND, limit=MAX_CELLS)
        grids.append((grid, _title(table)))
        marker = lxml.html.Element("p")
        marker.text, marker.tail = _MARKER.format(n), table.tail
        table.getparent().replace(table, marker)
    main = html_main_text(lxml.html.tostring(tree, encoding="unicode"))
    out = UnitText(TextBudget(name, KIND))
    placed: set[int] = set()
    pos = 0
    for m in _MARKER_RE.finditer(main):
        n = int(m.group(1))
        out.text(main[pos:m.start()])
        pos = m.end()
        if 1 <= n <= len(grids) and n not in placed:
            placed.add(n)
            add_rows(out, grids[n - 1][0], grids[n - 1][1], table=n)
    out.text(main[pos:])
    for n, (grid, title) in enumerate(grids, 1):
        if n not in placed:
            add_rows(out, grid, title, table=n)
    return out.result(), encoding


def _rows(table) -> list:
    """The table's own rows (not those of a table nested in a cell)."""
    return table.xpath("./tr|./thead/tr|./tbody/tr|./tfoot/tr")


def _span(cell, attr: str, limit: int) -> int:
    value = (cell.get(attr) or "1").strip()
    if not value.isdigit():
        return 1
    return min(int(value), limit) if int(value) > 0 else limit  # rowspan="0": to the end of the table


def _grid(table) -> tuple[Grid, int]:
    """The table's cells on a grid, each at the first free column of its row, its ``colspan``×``rowspan``
    a merged range (the rows it spans below are taken up by it); and the number of grid cells covered."""
    rows = _rows(table)
    busy: dict[int, int] = {}  # column -> the last row a cell spanning down takes in it
    grid: list[list[str]] = [[] for _ in rows]
    merges: list[Merge] = []
    covered = 0
    for r, tr in enumerate(rows):
        col = 0
        for cell in tr.xpath("./th|./td"):
            while busy.get(col, -1) >= r:
                col += 1
            across = _span(cell, "colspan", _MAX_SPAN)
            down = _span(cell, "rowspan", len(rows) - r)
            row = grid[r]
            row.extend([""] * (col + 1 - len(row)))
            row[col] = " ".join(cell.text_content().split())
            if across > 1 or down > 1:
                merges.append(Merge(r, col, r + down - 1, col + across - 1))
            for c in range(col, col + across):
                busy[c] = r + down - 1
            covered += across * down
            col += across
    return Grid(grid, merges), covered


def _title(table) -> str | None:
    """The table's ``<caption>``, else the heading or short paragraph right before it."""
    caption = table.find("caption")
    if caption is not None and (title := table_title(caption.text_content())):
        return title
    before = table.getprevious()
    while before is not None and not isinstance(before.tag, str):
        before = before.getprevious()  # a comment
    if before is not None and before.tag in {"h1", "h2", "h3", "h4", "h5", "h6", "p", "div", "strong", "b"}:
        return table_title(before.text_content())
    return None
