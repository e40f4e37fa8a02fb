"""Every error a chat user can meet reads Chinese first: each raised by the code that writes it.

If a message is reworded, its pattern in ui.messages.ERRORS_ZH stops matching and this test says
which; a pattern no raised error uses is reported too (reworded, or dead).
"""

from __future__ import annotations

import io
import re
import sys

import pytest

from rag.errors import RagError
from rag.http.redact import public_message
from ui.messages import ERRORS_ZH, bilingual, error_zh

KITE = "紫藤镇风筝节于每年四月十八日举行。\n".encode()


def _raised(fn) -> str:
    with pytest.raises(RagError) as exc:
        fn()
    return str(exc.value)


def _file_errors(tmp_path, monkeypatch) -> list[str]:
    from pypdf import PdfWriter

    from rag.ingest.files import SourceFile, load_file

    def load(name: str, content: bytes | None, **kw) -> str:
        path = tmp_path / name
        if content is None:
            path.mkdir()  # reading a folder: an OSError
        else:
            path.write_bytes(content)
        return _raised(lambda: load_file(SourceFile(path, name), **kw))

    blank, locked = PdfWriter(), PdfWriter()
    blank.add_blank_page(200, 200)
    locked.add_blank_page(200, 200)
    locked.encrypt("secret")
    pdfs = {}
    for name, writer in (("blank.pdf", blank), ("locked.pdf", locked)):
        buf = io.BytesIO()
        writer.write(buf)
        pdfs[name] = buf.getvalue()
    messages = [
        load("empty.txt", b""), load("blank.txt", "\u3000\u3000\n".encode()),
        load("noise.txt", bytes(range(128, 256)) * 20), load("nul.bin.txt", b"ab\x00cd" * 50),
        load("ctrl.txt", bytes(range(1, 9)) * 40), load("bad16.txt", b"\xff\xfe\x00\xd8"),
        load("big.txt", KITE * 100, max_bytes=100), load("folder.txt", None), load("empty.html", b"<html></html>"),
        load("blank.pdf", pdfs["blank.pdf"]), load("locked.pdf", pdfs["locked.pdf"]),
        load("bad.pdf", b"%PDF-1.4 garbage"), load("bad.docx", b"PK\x03\x04 not a zip"),
    ]
    messages += _office_errors(load)
    monkeypatch.setitem(sys.modules, "pypdf", None)  # as on an install without the formats extra
    messages.append(load("any.pdf", pdfs["blank.pdf"]))
    monkeypatch.delitem(sys.modules, "pypdf")
    return messages


def _office_errors(load) -> list[str]:
    """The caps on zip-based files and the work bounds, each hit by a file made to hit it."""
    import zipfile

    from rag.ingest import limits
    from rag.ingest.archive import ZipLimits, check_members

    def docx(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression) as z:
            for name, data in members.items():
                z.writestr(name, data)
        return buf.getvalue()

    def cap(members: list[zipfile.ZipInfo], packed: int, **kw) -> str:
        return _raised(lambda: check_members(members, packed, "big.docx", "DOCX", ZipLimits(**kw)))

    infos = []
    for i, (size, packed) in enumerate([(5_000_000, 100), (10, 10)]):
        info = zipfile.ZipInfo(f"part{i}")
        info.file_size, info.compress_size = size, packed
        infos.append(info)
    locked = zipfile.ZipInfo("word/document.xml")
    locked.flag_bits |= 0x1
    body = "<w:p><w:r><w:t>字</w:t></w:r></w:p>"
    return [
        load("tags.docx", docx({"word/document.xml": b"<a><b></a>"})),
        load("bomb.docx", docx({"word/document.xml": b"<a/>", "word/media/z.bin": bytes(50 * 2**20)})),
        cap(infos, 200, max_members=1), cap(infos, 200, max_unpacked=1000), cap([infos[1]], 1, ratio_from=5, max_ratio=2),
        cap([locked], 10),
        _raised(lambda: limits.check_paragraphs(11, "p.docx", "DOCX", limit=10)),
        _raised(lambda: limits.check_pages(12, "p.pdf", "PDF", limit=10)),
        _raised(lambda: limits.TextBudget("c.docx", "DOCX", limit=3).spend(len(body))),
    ]


def _upload_errors(rag) -> list[str]:
    from rag.uploads import MAX_UPLOAD_FILES, add_uploads, safe_filename

    one = [("kite.txt", io.BytesIO(KITE))]
    return [
        _raised(lambda: add_uploads(rag, [("a.exe", io.BytesIO(KITE))])),
        _raised(lambda: add_uploads(rag, one, max_bytes=4)),
        _raised(lambda: add_uploads(rag, one * (MAX_UPLOAD_FILES + 1))),
        _raised(lambda: add_uploads(rag, [("a.txt", io.BytesIO(KITE)), ("sub/a.txt", io.BytesIO(KITE))])),
        _raised(lambda: add_uploads(rag, [])),
        _raised(lambda: safe_filename("")), _raised(lambda: safe_filename("a\x00.txt")),
        _raised(lambda: safe_filename("...")),
    ]


def _question_errors(rag) -> list[str]:
    from rag.config import Settings

    return [
        _raised(lambda: rag.ask("   ")), _raised(lambda: rag.ask("\ud800")), _raised(lambda: rag.ask("问" * 3000)),
        _raised(lambda: rag.search("问题", filters={"date_from": "yesterday"})),
        _raised(lambda: rag.search("问题", filters={"doc": "*" * 40})),
        _raised(lambda: rag.search("问题", filters={"doc": "d" * 300})),
        _raised(lambda: rag.search("问题", filters={"article": "a\x00b"})),
        _raised(lambda: Settings().check_network_generator("openai:gpt-4o-mini")),
        _raised(lambda: rag.ask("问题", generator="openai:gpt-4o-mini")),  # no credentials, no server here
    ]


def _server_errors(rag, tmp_path) -> list[str]:
    from rag import RAG
    from rag.feedback import record_feedback
    from rag.storage.bases import KnowledgeBases
    from rag.storage.lock import write_lock

    bases = KnowledgeBases(rag, tmp_path / "kbs", RAG.open)
    messages = [_raised(lambda: bases.get("nope")), _raised(lambda: bases.get("../up")),
                _raised(lambda: bases.create("字" * 90)), _raised(lambda: bases.create("𝐀" * 62)),
                _raised(lambda: rag.delete("nope.txt"))]
    with write_lock(rag.index_dir):
        import subprocess

        probe = ("from pathlib import Path; from rag.storage.lock import write_lock\n"
                 f"with write_lock(Path({str(rag.index_dir)!r})): pass")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
        messages.append(out.stderr.strip().splitlines()[-1].split(": ", 1)[1])  # the IndexLockedError's text
    entry = {"rating": "up", "question": "问题", "answer": "答案"}
    record_feedback(rag.index_dir, entry, max_bytes=10_000)
    messages.append(_raised(lambda: record_feedback(rag.index_dir, entry, max_bytes=10)))
    return messages


def test_every_error_a_chat_user_can_meet_reads_chinese_first(writable_index, tmp_path, monkeypatch):
    from rag import RAG

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    rag = RAG.open(writable_index, progress=False)
    (tmp_path / "files").mkdir()
    raised = _file_errors(tmp_path / "files", monkeypatch)
    raised += _upload_errors(rag) + _question_errors(rag) + _server_errors(rag, tmp_path)
    untranslated = [m for m in raised if error_zh(m) is None]
    assert not untranslated, f"errors with no Chinese in the chat: {untranslated}"
    unused = [p.pattern for p, _ in ERRORS_ZH if not any(p.fullmatch(m) for m in raised)]
    assert not unused, f"Chinese for errors this test did not raise (reworded?): {unused}"
    for m in raised:
        zh = error_zh(m)
        assert re.search(r"[\u4e00-\u9fff]", zh) and bilingual(m) == f"{zh} · {public_message(m)}", m


def test_an_unknown_error_stays_english_and_the_chat_escapes_both_halves():
    from ui.render import error_message

    assert bilingual("something new went wrong") == "something new went wrong"
    html = error_message("<b>x</b>.txt: file is empty")
    assert "&lt;b&gt;x&lt;/b&gt;.txt：文件是空的 · &lt;b&gt;x&lt;/b&gt;.txt: file is empty" in html and "<b>" not in html
