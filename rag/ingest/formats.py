"""Formats to text: HTML (main text via trafilatura) and PDF (text layer, pages kept; OCR for scanned pages,
``rag.ingest.scans``); DOCX is ``rag.ingest.docx_reader``."""

from __future__ import annotations

import io
from html.parser import HTMLParser
from typing import ClassVar

from rag.errors import LoaderError
from rag.ingest.limits import TextBudget, check_pages
from rag.ingest.ocr import available as ocr_available
from rag.ingest.pdf_tables import table_pages
from rag.ingest.scans import Box, broken_text_layer, layout, pdf_pages_ocr
from rag.types import Unit

_FORMATS_HINT = "pip install 'rag-zh[formats]'"


class _HTMLText(HTMLParser):
    """Visible text of an HTML page: scripts, styles and navigation dropped, blocks on new lines."""

    _SKIP: ClassVar[frozenset[str]] = frozenset({"script", "style", "noscript", "template", "nav", "header", "footer", "svg"})
    _BLOCK: ClassVar[frozenset[str]] = frozenset(
        {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article", "title"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_main_text(html: str) -> str:
    """The article text of a web page (trafilatura drops menus, ads and footers), headings kept as Markdown."""
    try:
        import lxml.html  # noqa: PLC0415 - optional, heavy (comes with trafilatura)
        import trafilatura  # noqa: PLC0415 - trafilatura (~0.6 s, formats extra) only for web pages
    except ImportError:
        return html_to_text(html)
    try:
        tree = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return html_to_text(html)
    # trafilatura keeps menus of short pages; drop the page furniture before it looks.
    for el in tree.xpath("//nav|//footer|//aside|//header|//script|//style|//form|//noscript|//template"):
        el.drop_tree()
    text = trafilatura.extract(tree, output_format="markdown", include_formatting=True, include_comments=False,
                               include_tables=True, favor_recall=True)
    return text or html_to_text(html)


def pdf_to_text(raw: bytes, name: str) -> str:
    """Text of a PDF, pages separated by form feeds so chunks know their page (``read_pdf``)."""
    return read_pdf(raw, name)[0]


def read_pdf(raw: bytes, name: str) -> tuple[str, tuple[Box, ...], tuple[Unit, ...]]:
    """Text of a PDF, pages separated by form feeds, the boxes of its OCR'd lines and its units: a page's
    text layer where it has one, OCR where it has none or a broken one (when the ocr extra is installed; a
    PDF with no text layer at all needs it). A ruled table in a text layer is read as one unit per row
    (``rag.ingest.pdf_tables``, each with its ``page``) in place of its lines; a PDF without one reads as
    its text layer."""
    try:
        from pypdf import PdfReader  # noqa: PLC0415 - pypdf (~0.4 s, formats extra); missing gives LoaderError
        from pypdf.errors import PdfReadError  # noqa: PLC0415 - pypdf, as above
    except ImportError as exc:
        raise LoaderError("file.needs_package", name=name, kind="PDF", package="pypdf", hint=_FORMATS_HINT) from exc

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoaderError("pdf.encrypted", name=name)
        check_pages(len(reader.pages), name, "PDF")
        budget = TextBudget(name, "PDF")
        pages = []
        for page in reader.pages:  # counted as extracted: the work stops at the bound
            pages.append((page.extract_text() or "").strip())
            budget.spend(len(pages[-1]))
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise LoaderError("file.damaged", name=name, kind="PDF", detail=str(exc)) from exc
    scanned = [n for n, text in enumerate(pages, 1) if broken_text_layer(text)]
    tables = table_pages(raw, [text if n not in scanned else "" for n, text in enumerate(pages, 1)], name)
    for n, page in tables.items():
        pages[n - 1] = page.text
    if not scanned or (any(pages) and not ocr_available()):  # without OCR, a mixed PDF reads as it always did
        if not any(pages):  # no pages at all
            raise LoaderError("ocr.no_text", name=name, kind="PDF")
        text = "\f".join(pages)
        return text, (), _units(text, tables)
    found = pdf_pages_ocr(raw, scanned, name)
    text, boxes = layout([found.get(n) or text for n, text in enumerate(pages, 1)], name, "PDF")
    if not text.replace("\f", "").strip():
        raise LoaderError("ocr.no_text", name=name, kind="PDF")
    return text, boxes, _units(text, tables)


def _units(text: str, tables: dict) -> tuple[Unit, ...]:
    """The row units of the pages in ``tables`` (``table_pages``) at their offsets in the PDF's ``text``."""
    if not tables:
        return ()
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\f"]
    return tuple(Unit(starts[n - 1] + u.start, starts[n - 1] + u.end, u.title, u.meta)
                 for n in sorted(tables) for u in tables[n].units)


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)
