"""DOCX files made in the test: real ones (python-docx), and damaged or hostile ones rebuilt from a real one."""

from __future__ import annotations

import io
import zipfile

import pytest

DOCUMENT = "word/document.xml"


def make_docx(*paragraphs: str, heading: str | None = None) -> bytes:
    """A real DOCX written by python-docx: an optional level-1 heading, then ``paragraphs``."""
    docx = pytest.importorskip("docx")
    document = docx.Document()
    if heading is not None:
        document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def member(raw: bytes, name: str = DOCUMENT) -> bytes:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return z.read(name)


def rebuild(raw: bytes, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None,
            compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """``raw`` with some members replaced and others added (each written whole)."""
    replace = replace or {}
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(buf, "w", compression) as out:
        for info in src.infolist():
            out.writestr(info.filename, replace.get(info.filename, src.read(info.filename)))
        for name, data in (add or {}).items():
            out.writestr(name, data)
    return buf.getvalue()


def with_body(raw: bytes, body: str, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """``raw`` with the document's body replaced by ``body`` (WordprocessingML, ``w:`` prefix)."""
    xml = member(raw).decode()
    head, rest = xml.split("<w:body>", 1)
    tail = rest[rest.index("<w:sectPr"):]
    return rebuild(raw, {DOCUMENT: f"{head}<w:body>{body}{tail}".encode()}, compression=compression)


def malformed_docx() -> bytes:
    """A small DOCX whose document part has mismatched tags (lxml's XMLSyntaxError in python-docx)."""
    raw = make_docx("正文。")
    return rebuild(raw, {DOCUMENT: member(raw).replace(b"</w:body>", b"</w:bodyx>")})


def zero_bomb(zeros_mb: int) -> bytes:
    """A real DOCX with a media part of ``zeros_mb`` MB of zeros, written in blocks (never held whole)."""
    raw = make_docx("正文。")
    buf = io.BytesIO(raw)
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as z, z.open("word/media/image1.png", "w") as f:
        block = bytes(2**20)
        for _ in range(zeros_mb):
            f.write(block)
    return buf.getvalue()
