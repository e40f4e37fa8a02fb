"""Every error a chat user can meet reads Chinese first, from one catalogue (rag.catalogue) keyed by code.

Each error is raised by the code that writes it: it must carry its code (its text alone must give the same
Chinese, as when it travelled as text), and every code the catalogue has for errors must be met (a code no
raise site uses is reported: renamed, or dead).
Each code's English and Chinese use the same parameters; HTTP statuses and exit codes come from the class.
"""

from __future__ import annotations

import ast
import hashlib
import io
import re
import sys
from pathlib import Path

import pytest

from rag.catalogue import CATALOGUE, recognise
from rag.errors import RagError
from rag.http.redact import public_message
from ui.messages import bilingual, catalogued, chinese

ROOT = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u4e00-\u9fff]")
CODE = re.compile(r"[a-z0-9_]+\.[a-z0-9_]+")

KITE = "紫藤镇风筝节于每年四月十八日举行。\n".encode()


def _raised(fn) -> RagError:
    with pytest.raises(RagError) as exc:
        fn()
    return exc.value


def _file_errors(tmp_path, monkeypatch) -> list[RagError]:
    import struct
    import zlib

    import PIL.Image
    from pypdf import PdfWriter

    from rag.ingest import ocr
    from rag.ingest.files import SourceFile, load_file

    def load(name: str, content: bytes | None, **kw) -> RagError:
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
    png = io.BytesIO()
    PIL.Image.new("RGB", (60, 20), "white").save(png, "PNG")
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0)  # the header says 81 MP
    huge = png.getvalue()[:8] + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png.getvalue()[33:]
    messages.append(load("huge.png", huge))
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # as on an install without the ocr extra
    monkeypatch.setattr(ocr, "_engine", None)
    messages.append(load("scan.png", png.getvalue()))
    monkeypatch.setitem(sys.modules, "pypdf", None)  # as on an install without the formats extra
    messages.append(load("any.pdf", pdfs["blank.pdf"]))
    monkeypatch.delitem(sys.modules, "pypdf")
    return messages


def _office_errors(load) -> list[RagError]:
    """The caps on zip-based files and the work bounds, each hit by a file made to hit it."""
    import zipfile

    from rag.ingest import limits
    from rag.ingest.archive import ZipLimits, check_members, read_member

    def docx(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression) as z:
            for name, data in members.items():
                z.writestr(name, data)
        return buf.getvalue()

    def cap(members: list[zipfile.ZipInfo], packed: int, **kw) -> RagError:
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
        _raised(lambda: read_member(zipfile.ZipFile(io.BytesIO(docx({"big.xml": bytes(3000)}))), "big.xml", "b.docx",
                                    "DOCX", limit=2000)),
        _raised(lambda: limits.check_paragraphs(11, "p.docx", "DOCX", limit=10)),
        _raised(lambda: limits.check_pages(12, "p.pdf", "PDF", limit=10)),
        _raised(lambda: limits.TextBudget("c.docx", "DOCX", limit=3).spend(len(body))),
    ]


def _upload_errors(rag) -> list[RagError]:
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


def _question_errors(rag, tmp_path) -> list[RagError]:
    import argparse

    from rag.config import Settings
    from rag.feedback import record_feedback
    from ui.cli import _resolve_kb

    entry = {"rating": "up", "question": "问题", "answer": "答案" * 60_000}
    return [
        _raised(lambda: record_feedback(rag.index_dir, entry, max_bytes=10_000_000)),
        _raised(lambda: _resolve_kb(argparse.Namespace(kb="nope", command="ask"), Settings(kb_root=str(tmp_path)))),
        _raised(lambda: rag.ask("问题", history=[{"role": "user", "content": "\ud800"}])),
        _raised(lambda: rag.ask("   ")), _raised(lambda: rag.ask("\ud800")), _raised(lambda: rag.ask("问" * 3000)),
        _raised(lambda: rag.search("问题", filters={"date_from": "yesterday"})),
        _raised(lambda: rag.search("问题", filters={"doc": "*" * 40})),
        _raised(lambda: rag.search("问题", filters={"doc": "d" * 300})),
        _raised(lambda: rag.search("问题", filters={"article": "a\x00b"})),
        _raised(lambda: Settings().check_network_generator("openai:gpt-4o-mini")),
        _raised(lambda: rag.ask("问题", generator="openai:gpt-4o-mini")),  # no credentials, no server here
    ]


def _server_errors(rag, tmp_path) -> list[RagError]:
    from rag import RAG
    from rag.bases import KnowledgeBases, existing_base
    from rag.feedback import record_feedback
    from rag.storage.lock import write_lock

    bases = KnowledgeBases(rag, tmp_path / "kbs", RAG.open)
    bases.create("news")
    (tmp_path / "kbs" / "broken").mkdir()
    (tmp_path / "kbs" / "broken" / "manifest.json").write_text("{", encoding="utf-8")
    messages: list[RagError] = [
        _raised(lambda: bases.get("nope")), _raised(lambda: bases.get("../up")), _raised(lambda: bases.delete("nope")),
        _raised(lambda: existing_base(tmp_path / "kbs", "nope")),
        _raised(lambda: bases.create("字" * 90)), _raised(lambda: bases.create("𝐀" * 62)),
        _raised(lambda: bases.get("")), _raised(lambda: bases.create("news")), _raised(lambda: bases.create("default")),
        _raised(lambda: bases.delete("default")), _raised(lambda: bases.get_many([f"kb{i}" for i in range(21)])),
        _raised(lambda: bases.get("broken")), _raised(lambda: bases.rename("default", "x")),
        _raised(lambda: rag.delete("nope.txt"))]
    messages += _access_errors(tmp_path / "keys.json")
    with write_lock(rag.index_dir):  # an flock: a second descriptor, even in this process, is refused
        messages.append(_raised(lambda: write_lock(rag.index_dir).__enter__()))
    entry = {"rating": "up", "question": "问题", "answer": "答案"}
    record_feedback(rag.index_dir, entry, max_bytes=10_000)
    messages.append(_raised(lambda: record_feedback(rag.index_dir, entry, max_bytes=10)))
    return messages


def _access_errors(keys_file) -> list[RagError]:
    from rag.access import Access

    access = Access(None, keys_file)
    access.ring.add("reader", read="news")
    reader = access.grant_for_key(access.ring.add("reader2", read="news"))
    errors = [_raised(lambda: access.ring.add("reader")), _raised(lambda: access.ring.revoke("nobody")),
              _raised(lambda: access.ring.add("bad name")), _raised(lambda: access.ring.add("admin")),
              _raised(lambda: access.require_read(reader, "policy")), _raised(lambda: access.require_write(reader, "news")),
              _raised(lambda: access.require_manage(reader))]
    keys_file.write_text("{", encoding="utf-8")
    errors.append(_raised(lambda: access.grant_for_key("rag_x")))
    return errors


def _key_route_errors(keys_file, monkeypatch) -> list[RagError]:
    """What the server's routes and `rag keys` say about keys (rag.access.BasesView, Access.caller, ui.keys_cmd)."""
    import argparse

    from rag.access import Access
    from ui.keys_cmd import keys_file as keys_path

    monkeypatch.delenv("RAG_KEYS_FILE", raising=False)
    access = Access(None, keys_file)
    reader = access.grant_for_key(access.ring.add("reader", read="news"))
    errors = [_raised(lambda: access.view(None, access.anonymous).require_key()),
              _raised(lambda: access.caller({"authorization": "Bearer rag_wrong"})),
              _raised(lambda: access.require_some_write(reader, ["default", "news"])),
              _raised(lambda: keys_path(argparse.Namespace(file=None)))]
    keys_file.write_text("{", encoding="utf-8")
    errors.append(_raised(lambda: access.caller({"x-api-key": "rag_x"})))
    return errors


def _index_errors(rag, tmp_path) -> list[RagError]:
    import json

    from rag import RAG
    from rag.storage.manifest import check_embedder, read_manifest

    def manifest(name: str, text: str):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(text, encoding="utf-8")
        return lambda: read_manifest(tmp_path / name)

    keys = {"format_version": 99, "generation": "g", "embedder": {}, "counts": {}, "checksums": {}}
    return [
        _raised(lambda: RAG.open(tmp_path / "none", progress=False)), _raised(lambda: read_manifest(tmp_path / "none")),
        _raised(manifest("bad", "{")), _raised(manifest("keyless", "{}")), _raised(manifest("future", json.dumps(keys))),
        _raised(lambda: check_embedder(read_manifest(rag.index_dir), "other-model", 3, rag.index_dir)),
    ]


def _client_errors(rag, tmp_path, monkeypatch) -> list[RagError]:
    """What an API client, the chat's documents and retrieval tabs, the file box and the settings refuse."""
    from types import SimpleNamespace

    import ui.retrieval_tab
    from rag.config import Settings
    from rag.feedback import MAX_KBS, validate_entry
    from rag.filters import parse
    from rag.generation.llm import LLMSettings, load_chat_model
    from rag.http import viewer
    from rag.http.app import create_api
    from rag.uploads import check_doc_id, max_upload_bytes
    from ui.staging import Staging, _stage_all

    doc_id = rag.documents()[0]["doc_id"]
    app = create_api(rag, api_key="")
    stored_file = next(r.endpoint for r in app.routes if getattr(r, "path", "") == "/api/file")
    everything = app.state.access.view(app.state.bases, app.state.access.anonymous)  # no keys: the open grant
    full, shared = Staging(max_bytes=10, client_share=1.0), Staging(max_bytes=100, client_share=0.1)
    full.stage("a.txt", io.BytesIO(b"12345678"), 8)
    shared.stage("a.txt", io.BytesIO(b"12345"), 5)
    shown: list[RagError] = []
    monkeypatch.setattr(ui.retrieval_tab, "error_html", lambda error, lang: shown.append(error))  # the error it caught
    ui.retrieval_tab.search_handler(lambda kb: rag, lambda: ["default"])("gone", "问题", 5, "hybrid", 0.5, True,
                                                                         "", "", "", "")
    feedback = {"rating": "up", "question": "问题"}
    monkeypatch.setenv("RAG_TOP_K", "many")
    errors = [
        *shown,
        _raised(lambda: full.stage("b.txt", io.BytesIO(b"1"), 8)), _raised(lambda: shared.stage("b.txt", io.BytesIO(b"1"), 50)),
        _raised(lambda: _stage_all(full, ["b.txt"], [SimpleNamespace(size=2 * 2**20, file=io.BytesIO())], 2**20, "")),
        _raised(lambda: max_upload_bytes(0)),
        _raised(lambda: parse(["doc"])), _raised(lambda: rag.search("问题", filters={"bogus": "x"})),
        _raised(lambda: rag.search("问题", top_k=0)), _raised(lambda: rag.ask("问题", top_k=0)),
        _raised(lambda: ui.retrieval_tab._top_k(0.5)), _raised(lambda: rag.ask("问题", history=[42])),
        _raised(lambda: load_chat_model("anthropic:claude-3-5-haiku-latest", LLMSettings())),
        _raised(lambda: viewer._rag(lambda kb: rag, "a\x01b")), _raised(lambda: viewer.document_entry(rag, "nope.txt")),
        _raised(lambda: stored_file(doc=doc_id, bases=everything)),
        _raised(lambda: viewer.cited_span(viewer.load_source(rag, doc_id), None, None, "no-such-chunk")),
        _raised(lambda: check_doc_id("")), _raised(lambda: check_doc_id("a\x01b")),
        _raised(lambda: validate_entry({"rating": "up"})), _raised(lambda: validate_entry({**feedback, "question": " "})),
        _raised(lambda: validate_entry({**feedback, "question": "\ud800"})),
        _raised(lambda: validate_entry({**feedback, "question": "问\x01题"})),
        _raised(lambda: validate_entry({**feedback, "kbs": ["news"] * (MAX_KBS + 1)})),
        _raised(lambda: Settings(bogus=1)), _raised(lambda: Settings(top_k=0)),
        _raised(lambda: Settings(top_k=0, chunk_tokens=1)), _raised(lambda: Settings.from_env()),
    ]
    monkeypatch.delenv("RAG_TOP_K")
    return errors


def _page_and_sheet_errors(index, tmp_path, monkeypatch) -> list[RagError]:
    """What the viewer's page picture, the spreadsheet and the mail readers refuse."""
    from rag.http import page_image, viewer
    from rag.ingest import sheets as sheet_reader
    from rag.ingest.files import SourceFile, load_file
    from tests.pdfs import make_pdf

    pdf = tmp_path / "report.pdf"
    make_pdf(pdf, [["第一页。"]])
    sha = hashlib.sha256(pdf.read_bytes()).hexdigest()
    from tests.ingest.test_office_formats import _encrypted_eml, _many_parts_eml

    sheets = {"密.xlsx": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "假.xlsx": "这其实是一段文字。".encode(),
              "大.csv": b"a,b\n1,2\n3,4\n", "密.eml": _encrypted_eml(), "多.eml": _many_parts_eml()}
    for name, raw in sheets.items():
        (tmp_path / name).write_bytes(raw)
    monkeypatch.setattr(sheet_reader, "MAX_CELLS", 3)
    errors = [_raised(lambda: page_image.page_png(pdf, "0" * 64, 1, "")),
              _raised(lambda: page_image.page_png(pdf, sha, 5, "")),
              _raised(lambda: viewer.page_file(index, index.documents()[0]["doc_id"]))]
    errors += [_raised(lambda name=name: load_file(SourceFile(tmp_path / name, name))) for name in sheets]
    return errors


@pytest.mark.slow
def test_every_error_a_chat_user_can_meet_reads_chinese_first(writable_index, tmp_path, monkeypatch):
    from rag import RAG

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    rag = RAG.open(writable_index, progress=False)
    (tmp_path / "files").mkdir()
    raised = _file_errors(tmp_path / "files", monkeypatch)
    raised += _upload_errors(rag) + _question_errors(rag, tmp_path) + _server_errors(rag, tmp_path)
    raised += _key_route_errors(tmp_path / "route-keys.json", monkeypatch)
    (tmp_path / "indexes").mkdir()
    raised += _index_errors(rag, tmp_path / "indexes") + _client_errors(rag, tmp_path, monkeypatch)
    (tmp_path / "pages").mkdir()
    raised += _page_and_sheet_errors(rag, tmp_path / "pages", monkeypatch)
    met: set[str] = set()
    for error in raised:
        assert isinstance(error, RagError) and error.code is not None, f"raised without its code: {error}"
        found = catalogued(error)
        met.add(found.code)
        text = str(error)
        assert (text, error.zh) == (found.text("en"), found.text("zh"))
        # the same Chinese when only the text travels (an index report's skipped reasons, an HTTP reply)
        assert chinese(text) == error.zh, text
        zh = chinese(error)
        assert CJK.search(zh) and bilingual(error) == f"{public_message(zh)} · {public_message(text)}", text
    unused = sorted(code for code in CATALOGUE if not code.startswith("answer.") and code not in met)
    assert not unused, f"codes this test did not raise (renamed, or dead?): {unused}"


def test_every_code_has_both_texts_with_the_same_parameters():
    for code, entry in CATALOGUE.items():
        assert CODE.fullmatch(code), code
        assert CJK.search(entry.zh.text) and not CJK.search(entry.en.text), code
        assert entry.details <= entry.en.fields, code  # an English-only field the English does not have
        assert entry.zh.fields == entry.en.fields - entry.details, code
        # each field formatted alike in both, so a recognised English text gives its Chinese
        assert entry.zh.shown_fields <= entry.en.shown_fields, code
        assert all(CJK.search(t) for t in entry.zh_terms.values()), code


@pytest.mark.slow
def test_every_code_a_raise_site_names_is_in_the_catalogue():
    """A mistyped code with no parameters would otherwise be the message itself."""
    named = []
    for path in [*ROOT.joinpath("rag").rglob("*.py"), *ROOT.joinpath("ui").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str) and CODE.fullmatch(node.args[0].value)
                    and _called(node).endswith(("Error", "TooLarge", "english", "message"))):
                named.append((path.relative_to(ROOT), node.lineno, node.args[0].value))
    assert len(named) > 40
    assert not [n for n in named if n[2] not in CATALOGUE]


def _called(call: ast.Call) -> str:
    return call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")


def test_a_code_renders_its_parameters_and_an_unknown_one_is_refused():
    from rag.errors import LoaderError

    error = LoaderError("file.too_large", name="a.txt", mb=61.234, limit=50.0)
    assert (error.code, dict(error.params)) == ("file.too_large", {"name": "a.txt", "mb": 61.234, "limit": 50.0})
    assert str(error) == error.message == "a.txt: file is 61.2 MB, over the 50 MB limit (max_file_mb)"
    assert error.zh == error.text("zh") == "a.txt：文件 61.2 MB，超过 50 MB 的上限"
    plain = LoaderError("something new went wrong")
    assert (plain.code, plain.zh, str(plain)) == (None, None, "something new went wrong")
    with pytest.raises(TypeError, match="file.emtpy"):
        LoaderError("file.emtpy", name="a.txt")
    with pytest.raises(KeyError):
        LoaderError("file.too_large", name="a.txt")  # a parameter missing


def test_an_error_keeps_its_code_across_processes():
    import pickle

    from rag.errors import LoaderError

    copy = pickle.loads(pickle.dumps(LoaderError("zip.encrypted", name="a.docx", kind="DOCX", part="word/x.xml")))
    assert type(copy) is LoaderError and copy.code == "zip.encrypted" and copy.params["part"] == "word/x.xml"
    assert str(copy) == "a.docx: DOCX is encrypted (its part 'word/x.xml' needs a password)"
    assert str(pickle.loads(pickle.dumps(RagError("plain text")))) == "plain text"


def test_an_unknown_error_stays_english_and_the_chat_escapes_both_halves():
    from ui.render import error_message

    assert bilingual("something new went wrong") == "something new went wrong"
    assert recognise("something new went wrong") is None
    zh, en = error_message("<b>x</b>.txt: file is empty", "zh"), error_message("<b>x</b>.txt: file is empty", "en")
    assert "错误： &lt;b&gt;x&lt;/b&gt;.txt：文件是空的" in zh and "<b>" not in zh
    assert "Error: &lt;b&gt;x&lt;/b&gt;.txt: file is empty" in en and "<b>" not in en
    assert error_message("something new went wrong", "zh").endswith("something new went wrong</div></div>")


# Today's statuses and exit codes, which API clients and scripts rely on.
STATUS_AND_EXIT = {
    "ConfigError": (400, 2), "LoaderError": (400, 1), "DocumentNotFoundError": (404, 6),
    "KnowledgeBaseNotFoundError": (404, 3), "IndexNotFoundError": (503, 3), "IndexLockedError": (503, 5),
    "IndexCorruptError": (500, 4), "IndexMismatchError": (500, 4), "EmbedderError": (500, 7), "RagError": (500, 1),
    "AccessDeniedError": (403, 8),
}


def test_each_error_class_says_its_http_status_and_exit_code():
    import rag.errors
    from rag.evaluation.dataset import DatasetError
    from rag.feedback import FeedbackFullError
    from rag.generation.base import GeneratorError
    from rag.uploads import UploadTooLarge

    for name, expected in STATUS_AND_EXIT.items():
        cls = getattr(rag.errors, name)
        assert (cls.http_status, cls.exit_code) == expected, name
    for cls, expected in ((UploadTooLarge, (413, 1)), (FeedbackFullError, (507, 1)), (DatasetError, (400, 2)),
                          (GeneratorError, (500, 1))):
        assert (cls.http_status, cls.exit_code) == expected, cls.__name__


class Teapot(RagError):
    """An error class of a test's own: the CLI and the HTTP API must take its status and exit code from it."""

    http_status = 418
    exit_code = 42


def test_the_cli_and_the_http_api_take_them_from_the_class(writable_index, monkeypatch, capsys):
    from fastapi.testclient import TestClient

    import ui.cli
    from rag import RAG
    from rag.errors import IndexNotFoundError
    from rag.http.app import create_api

    def refuse(args):
        raise Teapot("no tea here")

    assert ui.cli.main(["documents", "--index-dir", str(writable_index / "missing")]) == IndexNotFoundError.exit_code == 3
    monkeypatch.setattr(ui.cli, "cmd_documents", refuse)
    capsys.readouterr()
    assert ui.cli.main(["documents", "--index-dir", str(writable_index)]) == 42
    assert capsys.readouterr().err == "error: no tea here\n"

    app = create_api(RAG.open(writable_index, progress=False), api_key="")
    app.get("/teapot")(lambda: (_ for _ in ()).throw(Teapot("no tea here")))
    with TestClient(app) as client:
        r = client.get("/teapot")
        assert (r.status_code, r.json()) == (418, {"error": "no tea here"})
        r = client.delete("/api/documents/nope.txt")
        assert (r.status_code, r.json()["error"]) == (404, "no such document(s) in the index: nope.txt")
