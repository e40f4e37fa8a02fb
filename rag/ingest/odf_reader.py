"""OpenDocument text (ODT) and spreadsheets (ODS), streamed from ``content.xml``.

The package is opened behind ``rag.ingest.archive``'s caps and ``content.xml`` is read as a bounded
stream through expat (``rag.ingest.xml_stream``), as the DOCX reader does. An ODT gives its headings
(``text:h``, as Markdown headings by outline level) and paragraphs in order, its tables one unit per
row (``rag.ingest.tables``: ``table`` = the table's number, titled by the short paragraph before it);
an ODS gives every sheet's rows (``sheet``, ``row``). ``table:number-columns-spanned``/``-rows-spanned``
are merged ranges (the covered cells are placeholders); ``number-columns-repeated`` and
``number-rows-repeated`` are expanded only where there is content after them, so the million empty
rows an office suite writes at a sheet's end cost nothing, and every cell made counts against
``MAX_CELLS``. A package whose manifest lists encrypted parts is refused as protected by a password.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.errors import LoaderError
from rag.ingest.archive import find_member, member_blocks, open_archive, read_member
from rag.ingest.limits import MAX_PARAGRAPHS, TextBudget, check_paragraphs
from rag.ingest.sheets import MAX_CELLS
from rag.ingest.tables import Grid, Merge, add_rows, table_title
from rag.ingest.units import Extracted, UnitText
from rag.ingest.xml_stream import parse_xml

_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_MIMETYPES = {"ODT": "application/vnd.oasis.opendocument.text",
              "ODS": "application/vnd.oasis.opendocument.spreadsheet"}
_ZIP_MAGIC = b"PK\x03\x04"
_SMALL_PART = 16 * 2**20  # the manifest and the mimetype: a few hundred bytes in real files
_NO_DTD = "declares a DTD, which OpenDocument files never do"
# Subtrees whose text is not the document's: tracked deletions, comments, the text:sequence declarations.
_IGNORED = frozenset({(_TEXT, "tracked-changes"), (_OFFICE, "annotation"), (_TEXT, "sequence-decls"),
                      (_TEXT, "note-citation"), (_OFFICE, "forms")})


def odf_units(raw: bytes, name: str, kind: str) -> Extracted:
    """The text and units of an ODT or ODS (``kind``)."""
    if not raw:
        raise LoaderError("file.empty", name=name)
    if not raw.startswith(_ZIP_MAGIC):
        raise LoaderError("file.wrong_format", name=name, kind=kind)
    with open_archive(raw, name, kind) as archive:
        mimetype = find_member(archive, "mimetype")
        if mimetype is not None:
            declared = read_member(archive, mimetype, name, kind, _SMALL_PART).decode("ascii", "replace").strip()
            if declared != _MIMETYPES[kind] and not declared.startswith(_MIMETYPES[kind] + "-"):  # -template
                raise LoaderError("file.wrong_format", name=name, kind=kind)
        manifest = find_member(archive, "META-INF/manifest.xml")
        if manifest is not None and b"encryption-data" in read_member(archive, manifest, name, kind, _SMALL_PART):
            raise LoaderError("office.encrypted", name=name, kind=kind)
        content = find_member(archive, "content.xml")
        if content is None:
            raise LoaderError("file.damaged", name=name, kind=kind, detail="it has no content.xml")
        body = _Content(name, kind)
        parse_xml(member_blocks(archive, content, name, kind, limit=archive.getinfo(content).file_size),
                  content, name, kind, body.start, body.end, body.data, doctype=_NO_DTD)
    return body.result()


@dataclass
class _Table:
    name: str | None
    rows: list[list[str]] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    empty_rows: int = 0  # empty rows read and not yet placed (placed only when a row with content follows)
    row: list[str] = field(default_factory=list)
    empty_cells: int = 0  # likewise, the empty cells of the open row
    row_repeat: int = 1


@dataclass
class _Cell:
    lines: list[str] = field(default_factory=list)
    across: int = 1
    down: int = 1
    repeat: int = 1


def _int(value: str | None, default: int = 1) -> int:
    return int(value) if value and value.isdigit() and int(value) > 0 else default


class _Content:
    """Expat handlers over ``content.xml``: paragraphs and headings into body lines (or into the open
    table cell), tables into grids; body-level tables become units when the text is put together."""

    def __init__(self, name: str, kind: str) -> None:
        self._name, self._kind = name, kind
        self._items: list[str | _Table] = []  # the body's lines and tables, in order
        self._paras: list[tuple[int, list[str]]] = []  # open paragraphs: heading level (0: none), text parts
        self._tables: list[_Table] = []
        self._cells: list[_Cell] = []
        self._skip = 0
        self._count = 0  # paragraphs
        self._made = 0  # table cells made
        self._budget = TextBudget(name, kind)

    # ---- expat handlers
    def start(self, tag: str, attrs: dict[str, str]) -> None:
        uri, _, local = tag.rpartition(" ")
        if self._skip or (uri, local) in _IGNORED:
            self._skip += 1
            return
        if uri == _TEXT and local in ("p", "h"):
            self._count += 1
            check_paragraphs(self._count, self._name, self._kind, MAX_PARAGRAPHS)
            level = _int(attrs.get(f"{_TEXT} outline-level")) if local == "h" else 0
            self._paras.append((min(level, 6), []))
        elif uri == _TEXT and self._paras:
            if local == "s":
                self._text(" " * min(_int(attrs.get(f"{_TEXT} c")), 100))
            elif local == "tab":
                self._text("\t")
            elif local == "line-break":
                self._text("\n")
        elif uri == _TABLE and local == "table":
            self._tables.append(_Table(attrs.get(f"{_TABLE} name")))
        elif uri == _TABLE and local == "table-row" and self._tables:
            table = self._tables[-1]
            table.row, table.empty_cells = [], 0
            table.row_repeat = _int(attrs.get(f"{_TABLE} number-rows-repeated"))
        elif uri == _TABLE and local in ("table-cell", "covered-table-cell") and self._tables:
            self._cells.append(_Cell(
                across=_int(attrs.get(f"{_TABLE} number-columns-spanned")),
                down=_int(attrs.get(f"{_TABLE} number-rows-spanned")),
                repeat=_int(attrs.get(f"{_TABLE} number-columns-repeated"))))

    def end(self, tag: str) -> None:
        if self._skip:
            self._skip -= 1
            return
        uri, _, local = tag.rpartition(" ")
        if uri == _TEXT and local in ("p", "h") and self._paras:
            level, parts = self._paras.pop()
            text = "".join(parts).strip()
            if not text:
                return
            if self._cells:
                self._cells[-1].lines.append(text)
            else:  # a frame's paragraph inside another goes before it, as the body's
                self._items.append(f"{'#' * level} {text}" if level and not self._tables else text)
        elif uri == _TABLE and local in ("table-cell", "covered-table-cell") and self._cells and self._tables:
            self._end_cell(self._tables[-1], self._cells.pop())
        elif uri == _TABLE and local == "table-row" and self._tables:
            self._end_row(self._tables[-1])
        elif uri == _TABLE and local == "table" and self._tables:
            table = self._tables.pop()
            if not self._tables:
                self._items.append(table)
            elif self._cells:  # a table in a cell: its rows are lines of that cell
                self._cells[-1].lines.extend(" | ".join(c for c in row if c) for row in table.rows if any(row))

    def data(self, text: str) -> None:
        if self._paras and not self._skip:
            self._text(text)

    def _text(self, text: str) -> None:
        self._budget.spend(len(text))
        self._paras[-1][1].append(text)

    # ---- tables: repeats expanded only before content
    def _made_cells(self, n: int) -> None:
        self._made += n
        if self._made > MAX_CELLS:
            raise LoaderError("doc.too_many_cells", name=self._name, kind=self._kind, limit=MAX_CELLS)

    def _end_cell(self, table: _Table, cell: _Cell) -> None:
        text = " ".join(" ".join(cell.lines).split())
        if not text and cell.across == 1 and cell.down == 1:
            table.empty_cells += cell.repeat
            return
        self._made_cells(table.empty_cells + cell.repeat)
        table.row.extend([""] * table.empty_cells)
        table.empty_cells = 0
        for _ in range(cell.repeat):
            if cell.across > 1 or cell.down > 1:
                r, c = len(table.rows) + table.empty_rows, len(table.row)
                table.merges.append(Merge(r, c, r + cell.down - 1, c + cell.across - 1))
            table.row.append(text)

    def _end_row(self, table: _Table) -> None:
        if not any(table.row) and not any(m.top == len(table.rows) + table.empty_rows for m in table.merges):
            table.empty_rows += table.row_repeat
            return
        self._made_cells(table.empty_rows + len(table.row) * table.row_repeat)
        table.rows.extend([] for _ in range(table.empty_rows))
        table.empty_rows = 0
        table.rows.extend(list(table.row) for _ in range(table.row_repeat))

    # ---- the document
    def result(self) -> Extracted:
        out = UnitText(TextBudget(self._name, self._kind))
        tables = 0
        for i, item in enumerate(self._items):
            if isinstance(item, str):
                out.text(item)
                continue
            grid = Grid(item.rows, item.merges)
            if self._kind == "ODS":
                add_rows(out, grid, item.name, sheet=item.name)
                continue
            tables += 1
            before = self._items[i - 1] if i and isinstance(self._items[i - 1], str) else None
            add_rows(out, grid, table_title(before), table=tables)
        return out.result()
