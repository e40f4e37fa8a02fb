"""The readers of formats made of units (rows, slides, chapters, mail parts, tables in a page), by file suffix.

``rag.ingest.files`` reads the formats it always read itself and hands these here; each reader
returns the text and its units (``rag.ingest.units.Extracted``) and the encoding the manifest
records (the format's name for a packed one).
"""

from __future__ import annotations

from collections.abc import Callable

from rag.ingest.docx_reader import docx_units
from rag.ingest.html_tables import html_units
from rag.ingest.markdown_tables import markdown_units
from rag.ingest.sheets import delimited_text, workbook_text
from rag.ingest.units import Extracted

Reader = Callable[[bytes, str], tuple[Extracted, str]]


def _packed(read: Callable[[bytes, str, str], Extracted], kind: str) -> Reader:
    return lambda raw, name: (read(raw, name, kind), kind.lower())


READERS: dict[str, tuple[str, Reader]] = {
    ".xlsx": ("XLSX", _packed(workbook_text, "XLSX")),
    ".xls": ("XLS", _packed(workbook_text, "XLS")),
    ".csv": ("CSV", lambda raw, name: delimited_text(raw, name, ",")),
    ".tsv": ("TSV", lambda raw, name: delimited_text(raw, name, "\t")),
    ".docx": ("DOCX", lambda raw, name: (docx_units(raw, name), "docx")),  # tables by row
    ".html": ("HTML", html_units),
    ".htm": ("HTML", html_units),
    ".md": ("Markdown", markdown_units),
    ".markdown": ("Markdown", markdown_units),
}
UNIT_SUFFIXES = frozenset(READERS)
KINDS = {suffix: kind for suffix, (kind, _) in READERS.items()}


def read_units(raw: bytes, suffix: str, name: str) -> tuple[Extracted, str]:
    """The text and units of a file of one of ``UNIT_SUFFIXES``, and its encoding."""
    return READERS[suffix][1](raw, name)
