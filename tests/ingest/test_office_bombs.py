"""Hostile and damaged Office files: refused by name, from the zip's directory or at a bound, in bounded
memory and work; never a parser's own exception (which stopped the server's start)."""

from __future__ import annotations

import io
import random
import struct
import tracemalloc
import zipfile

import pytest
from docxs import DOCUMENT, make_docx, malformed_docx, member, rebuild, with_body, zero_bomb

from rag.errors import LoaderError
from rag.ingest.archive import ZipLimits, open_archive
from rag.ingest.docx_reader import docx_text
from rag.ingest.files import SourceFile, load_file
from rag.ingest.limits import MAX_PARAGRAPHS, TextBudget


def _load(tmp_path, name: str, raw: bytes):
    path = tmp_path / name
    path.write_bytes(raw)
    return load_file(SourceFile(path, name))


def _refused_within(tmp_path, name: str, raw: bytes, match: str, peak_mb: float) -> None:
    """``raw`` is refused with ``match`` in the message, and reading it allocates under ``peak_mb``."""
    tracemalloc.start()
    try:
        with pytest.raises(LoaderError, match=match):
            _load(tmp_path, name, raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < peak_mb * 2**20 + 2 * len(raw), f"reading {name} allocated {peak / 2**20:.0f} MB"


def test_a_malformed_docx_is_the_loaders_error_naming_the_file(tmp_path):
    with pytest.raises(LoaderError, match=r"bad\.docx: damaged or unreadable DOCX .*not well-formed XML: mismatched tag"):
        _load(tmp_path, "bad.docx", malformed_docx())


def test_a_dtd_is_refused_so_no_entity_can_expand(tmp_path):
    raw = make_docx("正文。")
    laughs = (b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
              + member(raw).split(b"?>", 1)[1].replace("正文。".encode(), b"&b;"))
    with pytest.raises(LoaderError, match=r"laughs\.docx: .*declares a DTD"):
        _load(tmp_path, "laughs.docx", rebuild(raw, {DOCUMENT: laughs}))


@pytest.mark.slow
def test_a_zero_filled_media_part_is_refused_before_anything_is_unpacked(tmp_path):
    raw = zero_bomb(200)  # about 200 KB; python-docx read it whole (300 MB for the 307 KB)
    assert len(raw) < 2**20
    _refused_within(tmp_path, "zeros.docx", raw, r"zeros\.docx: DOCX part 'word/media/image1\.png' unpacks to "
                    r"[\d,]+ times its packed size, over the limit of 100", peak_mb=5)


def test_many_small_members_cannot_add_up_to_a_bomb(tmp_path):
    each = bytes(900 * 1024)  # each under the size from which one member's ratio is judged
    raw = rebuild(make_docx("正文。"), add={f"word/media/{i}.bin": each for i in range(120)})
    _refused_within(tmp_path, "many.docx", raw, r"many\.docx: DOCX unpacks to [\d,]+ times its size", peak_mb=5)


def test_what_all_members_unpack_to_is_bounded():
    """Members packed no tighter than text is can still add up: the total is capped (here at 2 MB)."""
    each = random.Random(0).randbytes(2**20)  # 1 MB that does not pack
    raw = rebuild(make_docx("正文。"), add={f"word/media/{i}.bin": each for i in range(3)})
    with pytest.raises(LoaderError, match=r"bulky\.docx: DOCX unpacks to 3\.\d MB, over the limit of 2 MB"):
        open_archive(raw, "bulky.docx", "DOCX", ZipLimits(max_unpacked=2 * 2**20))
    open_archive(raw, "bulky.docx", "DOCX").close()  # under the default bound


@pytest.mark.slow
def test_too_many_members_are_refused(tmp_path):
    raw = rebuild(make_docx("正文。"), add={f"extra/item{i}.xml": b"<a/>" for i in range(10_001)})
    with pytest.raises(LoaderError, match=r"members\.docx: DOCX holds 10,0\d\d files, over the limit of 10,000"):
        _load(tmp_path, "members.docx", raw)


def test_empty_paragraphs_packed_tight_are_refused_as_a_bomb(tmp_path):
    raw = with_body(make_docx("正文。"), "<w:p/>" * 500_000)  # the 50 KB that cost 110 s of CPU
    assert len(raw) < 100_000
    _refused_within(tmp_path, "paras.docx", raw, r"paras\.docx: DOCX part 'word/document\.xml' unpacks to", peak_mb=5)


@pytest.mark.slow
def test_empty_paragraphs_stored_unpacked_stop_at_the_paragraph_bound(tmp_path):
    raw = with_body(make_docx("正文。"), "<w:p/>" * 500_000, compression=zipfile.ZIP_STORED)
    _refused_within(tmp_path, "stored.docx", raw,
                    rf"stored\.docx: DOCX has over {MAX_PARAGRAPHS:,} paragraphs, the limit per document", peak_mb=20)


def test_extracted_characters_are_bounded_as_they_are_read():
    raw = make_docx("长" * 600, "沙" * 600)
    with pytest.raises(LoaderError, match=r"big\.docx: DOCX holds over 1,000 characters of text, the limit per doc"):
        docx_text(raw, "big.docx", budget=TextBudget("big.docx", "DOCX", limit=1000))
    with pytest.raises(LoaderError, match=r"big\.docx: DOCX has over 1 paragraphs"):
        docx_text(raw, "big.docx", max_paragraphs=1)
    assert docx_text(raw, "big.docx") == "长" * 600 + "\n\n" + "沙" * 600


@pytest.mark.slow
def test_a_central_directory_that_understates_a_size_unpacks_no_more_than_it_said(tmp_path):
    raw = make_docx("正文。")
    xml = member(raw)
    padded = rebuild(raw, {DOCUMENT: xml + b" " * (64 * 2**20)})  # 64 MB of whitespace after the root element
    lying = _declare_size(padded, DOCUMENT, len(xml))
    with zipfile.ZipFile(io.BytesIO(lying)) as z:
        assert z.getinfo(DOCUMENT).file_size == len(xml)  # the caps see a small, ordinary member
    _refused_within(tmp_path, "lying.docx", lying, r"lying\.docx: damaged or unreadable DOCX .*Bad CRC", peak_mb=5)


@pytest.mark.slow
def test_an_encrypted_member_is_refused(tmp_path):
    raw = make_docx("正文。")
    at = raw.index(b"PK\x01\x02")  # the first central directory entry: set its "encrypted" flag
    flags = struct.unpack_from("<H", raw, at + 8)[0]
    locked = raw[: at + 8] + struct.pack("<H", flags | 1) + raw[at + 10:]
    with pytest.raises(LoaderError, match=r"locked\.docx: DOCX is encrypted"):
        _load(tmp_path, "locked.docx", locked)


def test_any_parser_error_becomes_the_loaders_error(tmp_path, monkeypatch):
    """A parser bug of any kind (here pypdf failing with an AssertionError) refuses the file by name."""
    pypdf = pytest.importorskip("pypdf")

    def broken(*_a, **_k):
        raise AssertionError("internal parser state")

    monkeypatch.setattr(pypdf, "PdfReader", broken)
    with pytest.raises(LoaderError, match=r"odd\.pdf: damaged or unreadable PDF \(AssertionError: internal parser"):
        _load(tmp_path, "odd.pdf", b"%PDF-1.4\n%%EOF\n")


@pytest.mark.slow
def test_a_pdf_over_the_page_bound_is_refused_before_its_text_is_read(tmp_path):
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter()
    for _ in range(10_001):
        writer.add_blank_page(10, 10)
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(LoaderError, match=r"long\.pdf: PDF has 10,001 pages, over the limit of 10,000"):
        _load(tmp_path, "long.pdf", buf.getvalue())


def _declare_size(raw: bytes, name: str, size: int) -> bytes:
    """``raw`` with ``name``'s uncompressed size set to ``size`` in its local header and directory entry."""
    out = bytearray(raw)
    encoded = name.encode()
    for sig, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        at = out.find(sig)
        while at != -1:
            if out[at + name_at: at + name_at + len(encoded)] == encoded:
                struct.pack_into("<I", out, at + size_at, size)
            at = out.find(sig, at + 4)
    return bytes(out)
