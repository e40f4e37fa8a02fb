"""The readers of formats made of units (rows, slides, chapters, mail parts, tables in a page), by file suffix.

``rag.ingest.files`` reads the formats it always read itself and hands these here; each reader
returns the text and its units (``rag.ingest.units.Extracted``) and the encoding the manifest
records (the format's name for a packed one).
"""

from __future__ import annotations

from collections.abc import Callable

from rag.ingest.docx_reader import docx_units
from rag.ingest.epub_reader import epub_units
from rag.ingest.html_tables import html_units
from rag.ingest.mail import eml_units
from rag.ingest.markdown_tables import markdown_units
from rag.ingest.msg_reader import msg_units
from rag.ingest.odf_reader import odf_units
from rag.ingest.pptx_reader import pptx_units
from rag.ingest.rtf_reader import rtf_text
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
    ".pptx": ("PPTX", lambda raw, name: (pptx_units(raw, name), "pptx")),  # a unit per slide
    ".eml": ("EML", lambda raw, name: (eml_units(raw, name), "eml")),  # the message, its text attachments
    ".msg": ("MSG", lambda raw, name: (msg_units(raw, name), "msg")),
    ".epub": ("EPUB", lambda raw, name: (epub_units(raw, name), "epub")),  # a unit per chapter
    ".odt": ("ODT", _packed(odf_units, "ODT")),  # tables by row
    ".ods": ("ODS", _packed(odf_units, "ODS")),  # a unit per row of each sheet
    ".rtf": ("RTF", lambda raw, name: (Extracted(rtf_text(raw, name)), "rtf")),
}
UNIT_SUFFIXES = frozenset(READERS)
KINDS = {suffix: kind for suffix, (kind, _) in READERS.items()}


def read_units(raw: bytes, suffix: str, name: str) -> tuple[Extracted, str]:
    """The text and units of a file of one of ``UNIT_SUFFIXES``, and its encoding."""
    return READERS[suffix][1](raw, name)
