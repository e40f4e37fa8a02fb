"""The documents tab's knowledge-base controls and its confirmation row, without a browser (ui/kb_manage.py,
ui/chunks_view.py): what each event does, and how it refuses what no control sends, changing nothing."""

from __future__ import annotations

import html

import gradio as gr
import pytest

from rag import RAG
from rag.access import Access
from rag.bases import KnowledgeBases
from ui.chunks_view import chunk_text_handler, chunks_handler
from ui.gate import Gate
from ui.handlers import documents_view
from ui.kb_manage import Manager

KEY = "s3cret-key"
SEED_DOC = "000_e58332798fe41e73.txt"


@pytest.fixture
def bases(writable_index, tmp_path):
    return KnowledgeBases(RAG.open(writable_index), tmp_path / "kbs", RAG.open)


@pytest.fixture
def gate(bases):
    return Gate(Access(KEY), bases)  # RAG_API_KEY alone: reading is open, writing needs the key


@pytest.fixture
def manager(gate):
    return Manager(gate, documents_view(gate))


def _choices(update) -> list[str]:
    return [c[0] for c in update.choices]


def test_create_rename_and_delete_a_base_update_every_picker(manager, bases):
    status, box, kb, chat, rt = manager.create(" news ", KEY, "default", ["default"], "default", lang="en")
    assert "Created the knowledge base news" in status and box == ""
    assert kb.value == "news" and _choices(kb) == _choices(chat) == _choices(rt) == ["default", "news"]
    assert chat.value == ["default"] and rt.value == "default"

    status, box, kb, chat, rt = manager.rename("policy", KEY, "news", ["default", "news"], "news", lang="zh")
    assert "已将知识库 news 重命名为 policy" in status
    assert kb.value == "policy" and chat.value == ["default", "policy"] and rt.value == "policy"
    assert bases.names() == ["default", "policy"]

    row, text, pending, status = manager.ask_delete_base(KEY, "policy", lang="en")
    assert row["visible"] is True and pending == {"kind": "base", "kb": "policy"}
    assert "Delete policy? This removes the whole base (0 documents, 0 chunks)." in text
    assert bases.names() == ["default", "policy"]  # asking deletes nothing
    out = manager.confirm(pending, KEY, "policy", ["policy"], "policy", lang="en")
    row, pending, status, *_, kb, chat, rt = out
    assert row["visible"] is False and pending is None and "Deleted the knowledge base policy" in status
    assert bases.names() == ["default"] and kb.value == "default" and chat.value == ["default"]


def test_deleting_a_document_asks_first_and_cancel_keeps_it(manager, bases):
    rag = bases.get("default")
    row, text, pending, status = manager.ask_delete_doc(SEED_DOC, KEY, "default", lang="en")
    chunks = rag.documents()[0]["chunks"]
    assert row["visible"] is True and f"Delete {SEED_DOC}? This removes {chunks} chunks." in text
    row, text, cleared, status = manager.cancel(lang="zh")
    assert row["visible"] is False and cleared is None and "未删除任何内容" in status
    assert [d["doc_id"] for d in rag.documents()] == [SEED_DOC]
    # Confirm with a wrong key: refused, nothing deleted
    out = manager.confirm(pending, "wrong", "default", ["default"], "default", lang="en")
    assert "Wrong or missing API key" in out[2] and [d["doc_id"] for d in rag.documents()] == [SEED_DOC]
    out = manager.confirm(pending, KEY, "default", ["default"], "default", lang="en")
    assert f"Deleted: {SEED_DOC}" in out[2] and rag.documents() == []
    table, choice, chunk_doc, _ = out[3:7]
    assert not any(table.value["data"]) and choice.choices == [] and chunk_doc.choices == []


def test_markup_in_a_document_name_is_text_in_the_confirmation(manager, bases, monkeypatch):
    rag = bases.get("default")
    evil = "<img src=x onerror=alert(1)>.txt"
    monkeypatch.setattr(rag, "documents", lambda: [{"doc_id": evil, "chunks": 3}])
    _, text, pending, _ = manager.ask_delete_doc(evil, KEY, "default", lang="en")
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;.txt" in text and pending["doc"] == evil


ODD_NAMES = ["../x", "default", "a" * 300, "<b>x</b>", "a/b", ".hidden", "", "   ", "新 闻", None, 42, ["x"],
             {"name": "x"}]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_are_refused_and_make_nothing(manager, bases, name):
    before = bases.names()
    status, *_ = manager.create(name, KEY, "default", ["default"], "default", lang="en")
    assert 'class="rag-status-error"' in status or 'class="rag-status-warn"' in status, status
    assert "<b>x" not in status  # markup in a name is escaped in the message
    assert bases.names() == before and not list((bases.root).glob("*x*"))


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_cannot_be_renamed_to_or_deleted(manager, bases, name):
    bases.create("news")
    status, *_ = manager.rename(name, KEY, "news", ["news"], "news", lang="en")
    assert 'class="rag-status-error"' in status or 'class="rag-status-warn"' in status, status
    status = manager.ask_delete_base(KEY, name, lang="en")[3]
    assert 'class="rag-status-error"' in status or 'class="rag-status-warn"' in status, status
    forged = manager.confirm({"kind": "base", "kb": name}, KEY, "news", ["news"], "news", lang="en")[2]
    assert 'class="rag-status-error"' in forged or 'class="rag-status-warn"' in forged, forged
    assert bases.names() == ["default", "news"]


def test_the_default_base_can_be_neither_renamed_nor_deleted(manager, bases):
    status = html.unescape(manager.rename("other", KEY, "default", ["default"], "default", lang="en")[0])
    assert "The default knowledge base (the server's own index) cannot be renamed or deleted" in status
    status = manager.ask_delete_base(KEY, "default", lang="zh")[3]
    assert "默认知识库（服务器自身的索引）不能重命名或删除" in status
    status = manager.confirm({"kind": "base", "kb": "default"}, KEY, "default", [], "default", lang="en")[2]
    assert "cannot be renamed or deleted" in status and bases.get("default").size > 0


@pytest.mark.parametrize("key", [None, "", "wrong", KEY.upper(), KEY[:-1], 42, ["s3cret-key"]])
def test_without_the_key_nothing_is_made_renamed_or_deleted(manager, bases, key):
    bases.create("news")
    for out in (manager.create("other", key, "default", [], "default", lang="en"),
                manager.rename("renamed", key, "news", [], "news", lang="en")):
        assert "Wrong or missing API key" in out[0]
    assert "Wrong or missing API key" in manager.ask_delete_base(key, "news", lang="en")[3]
    assert "Wrong or missing API key" in manager.ask_delete_doc(SEED_DOC, key, "default", lang="en")[3]
    for pending in ({"kind": "base", "kb": "news"}, {"kind": "doc", "kb": "default", "doc": SEED_DOC}):
        assert "Wrong or missing API key" in manager.confirm(pending, key, "news", [], "news", lang="en")[2]
    assert bases.names() == ["default", "news"] and len(bases.get("default").documents()) == 1


def test_a_confirm_without_a_question_asked_deletes_nothing(manager, bases):
    for pending in (None, {}, {"kind": "all"}, "base", {"kind": "doc"}):
        out = manager.confirm(pending, KEY, "default", [], "default", lang="en")
        assert "Nothing is waiting to be deleted" in out[2] or "rag-status-error" in out[2], out[2]
    assert len(bases.get("default").documents()) == 1


def test_the_chunk_browser_shows_a_chunks_full_text_escaped(bases, gate):
    doc_chunks, chunk_text = chunks_handler(gate.read), chunk_text_handler(gate.read)
    table, _, hint = doc_chunks(SEED_DOC, "default", lang="en")
    rows = table.value["data"]
    assert len(rows) == bases.get("default").documents()[0]["chunks"] and "Click a row" in hint
    full = bases.get("default").chunks_of(SEED_DOC)[2].text
    shown = chunk_text(SEED_DOC, "default", lang="zh", evt=gr.SelectData(None, {"index": [2, 0], "value": 3,
                                                                                "row_value": rows[2]}))
    assert "段落 3 / " in shown and 'class="rag-chunk-body"' in shown
    assert shown.split('class="rag-chunk-body">')[1].replace("<br>", "\n").startswith(full.split("\n")[0][:40])
    for forged in ({"index": [999, 0], "value": 1}, {"index": ["x"], "value": 1}, {"index": [0, 0], "value": 1,
                                                                                  "row_value": [10 ** 9]}):
        assert "no longer in the index" in chunk_text(SEED_DOC, "default", lang="en", evt=gr.SelectData(None, forged))
    for doc in ("../../etc/passwd", "<b>x</b>.txt", "nope.txt"):
        out = chunk_text(doc, "default", lang="en", evt=gr.SelectData(None, {"index": [0, 0], "value": 1}))
        assert "rag-status-error" in out and "<b>x" not in out
    out = doc_chunks("x.txt", "../kbs", lang="en")
    assert "rag-status-error" in out[1]


def test_a_long_chunk_scrolls_and_markup_in_it_is_text():
    from ui.render import chunk_text_html

    html = chunk_text_html("head", "<script>alert(1)</script>\n" + "长" * 5000)
    assert "<script>" not in html and "&lt;script&gt;" in html and html.count("长") == 5000
    from ui.app import CSS

    assert ".rag-chunk-body { max-height:" in CSS and "overflow-y: auto" in CSS
