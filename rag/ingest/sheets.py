"""Spreadsheets (XLSX, XLS) and delimited text (CSV, TSV) to one passage per row (``rag.ingest.tables``).

Workbooks are read with python-calamine (Rust; XLSX and the old binary XLS alike, merged ranges
included): openpyxl builds a Python object per cell and reads no XLS. An XLSX is a zip, so it is
opened behind ``rag.ingest.archive``'s caps first; every workbook's cells are counted against
``MAX_CELLS`` before they are turned into text, and its text against the document's ``TextBudget``.
"""

from __future__ import annotations

import csv
import io
from pathlib import PurePosixPath

from rag.errors import LoaderError
from rag.ingest.archive import open_archive
from rag.ingest.decoding import decode_bytes
from rag.ingest.limits import TextBudget
from rag.ingest.optional import optional_module
from rag.ingest.tables import Grid, Merge, add_rows, cell_text
from rag.ingest.units import Extracted, UnitText

MAX_CELLS = 5_000_000  # a full 1,000-column sheet of 5,000 rows; what is over is split, not truncated
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an XLS, or an encrypted XLSX (Office wraps those in OLE)


def workbook_text(raw: bytes, name: str, kind: str) -> Extracted:
    """The rows of every visible sheet of an XLSX or XLS (``kind``), each a unit with ``sheet`` and ``row``."""
    python_calamine = optional_module("python_calamine", "python-calamine", name, kind)
    if not raw:
        raise LoaderError("file.empty", name=name)
    if raw.startswith(_ZIP_MAGIC):
        open_archive(raw, name, kind).close()  # the zip's caps, before calamine unpacks anything
    elif raw.startswith(_OLE_MAGIC) and kind == "XLSX":
        raise LoaderError("office.encrypted", name=name, kind=kind)
    elif not raw.startswith(_OLE_MAGIC):
        raise LoaderError("file.wrong_format", name=name, kind=kind)
    try:
        book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(raw))
    except python_calamine.PasswordError as exc:
        raise LoaderError("office.encrypted", name=name, kind=kind) from exc
    out = UnitText(TextBudget(name, kind))
    cells = 0
    try:
        for meta in book.sheets_metadata:
            if (meta.visible != python_calamine.SheetVisibleEnum.Visible
                    or meta.typ != python_calamine.SheetTypeEnum.WorkSheet):
                continue  # a hidden sheet is not what the workbook shows; a chart sheet has no cells
            sheet = book.get_sheet_by_name(meta.name)
            cells += sheet.height * sheet.width
            if cells > MAX_CELLS:
                raise LoaderError("doc.too_many_cells", name=name, kind=kind, limit=MAX_CELLS)
            top, left = sheet.start or (0, 0)
            rows = [[cell_text(v) for v in row] for row in sheet.to_python(skip_empty_area=True)]
            merges = [Merge(a[0] - top, a[1] - left, b[0] - top, b[1] - left)
                      for a, b in sheet.merged_cell_ranges or ()]
            add_rows(out, Grid(rows, merges, first_row=top + 1), meta.name, sheet=meta.name)
    except python_calamine.CalamineError as exc:
        raise LoaderError("file.damaged", name=name, kind=kind, detail=str(exc)[:300]) from exc
    finally:
        book.close()
    return out.result()


def delimited_text(raw: bytes, name: str, delimiter: str) -> tuple[Extracted, str]:
    """The rows of a CSV (``,``) or TSV (tab) file, each a unit with ``row`` (its line as a spreadsheet
    numbers it: the header is row 1), and the encoding it was decoded with."""
    text, encoding = decode_bytes(raw, name)
    kind = "TSV" if delimiter == "\t" else "CSV"
    budget = TextBudget(name, kind)
    rows: list[list[str]] = []
    cells = 0
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            cells += len(row)
            if cells > MAX_CELLS:
                raise LoaderError("doc.too_many_cells", name=name, kind=kind, limit=MAX_CELLS)
            rows.append([cell_text(c) for c in row])
    except csv.Error as exc:
        raise LoaderError("file.damaged", name=name, kind=kind, detail=str(exc)) from exc
    out = UnitText(budget)
    add_rows(out, Grid(rows), PurePosixPath(name).stem)  # a CSV has no sheet name: its file's names its rows
    return out.result(), encoding
