"""Keys per base in the chat page's events (ui/gate.py), called as a raw client would call them: with no key,
a wrong or revoked key, a read-only key, a key for another base, and a session cookie. Each refusal says so
and changes nothing; a base a key may not read is never named to it."""

from __future__ import annotations

import html
import json

import gradio as gr
import pytest

from rag import RAG
from rag.access import SESSION_COOKIE, Access
from rag.bases import KnowledgeBases
from ui.chunks_view import chunk_text_handler, chunks_handler
from ui.gate import Gate
from ui.handlers import ask_handler, documents_view, upload_handler
from ui.kb_manage import Manager
from ui.retrieval_tab import search_handler

SEED_Q = "蓝风微短剧基地从签约到试运营用了多少天？"
SEED_DOC = "000_e58332798fe41e73.txt"


@pytest.fixture
def world(writable_index, tmp_path):
    """Bases default and news, a keys file with a manager, a reader and a writer of news, a key for another
    base only, and one revoked; returns (gate, {name: key})."""
    bases = KnowledgeBases(RAG.open(writable_index), tmp_path / "kbs", RAG.open)
    bases.create("news")
    bases.create("secret")
    access = Access(None, tmp_path / "keys.json")
    ring = access.ring
    keys = {"boss": ring.add("boss", read="*", write="*", manage=True),
            "reader": ring.add("reader", read="news"),
            "writer": ring.add("writer", read="news", write="news"),
            "other": ring.add("other", read="secret", write="secret"),
            "gone": ring.add("gone", read="*", write="*", manage=True)}
    ring.revoke("gone")
    return Gate(access, bases), keys


def req(key: str | None = None, session: str | None = None) -> gr.Request:
    headers = {}
    if key is not None:
        headers["x-api-key"] = key
    if session is not None:
        headers["cookie"] = f"{SESSION_COOKIE}={session}; rag_lang=en"
    return gr.Request(headers=headers, cookies={})


def _shown(value) -> str:
    return html.unescape(json.dumps(value, ensure_ascii=False, default=str))


def test_the_pickers_list_only_the_bases_a_key_may_read(world):
    gate, keys = world
    assert gate.names_for(req()) == []  # a keys file: without a key, nothing
    assert gate.names_for(req(keys["reader"])) == ["news"]
    assert gate.names_for(req(keys["other"])) == ["secret"]
    assert gate.names_for(req(keys["boss"])) == ["default", "news", "secret"]
    assert gate.names_for(req(keys["gone"])) == [] and gate.names_for(req("rag_wrong")) == []
    token = gate.access.open_session(gate.access.grant_for_key(keys["writer"]))
    assert gate.names_for(req(session=token)) == ["news"]  # the key box's session cookie
    assert gate.names_for(req(session="forged")) == []  # an unknown session: a caller without a key
    gate.access.ring.revoke("writer")
    assert gate.names_for(req(session=token)) == [] and gate.grant(req(keys["writer"])) is None


@pytest.mark.parametrize("who", [None, "rag_wrong", "gone", "other"])
def test_reading_events_refuse_callers_that_may_not_read(world, who):
    gate, keys = world
    request = req(keys.get(who, who))
    doc_state = documents_view(gate)
    outputs = [
        doc_state("default", request, "en"),
        chunks_handler(gate.read)(SEED_DOC, "default", request, "en"),
        chunk_text_handler(gate.read)(SEED_DOC, "default", request, "en",
                                      gr.SelectData(None, {"index": [0, 0], "value": 1})),
        search_handler(gate.bases.get, gate.bases.names, gate)("default", SEED_Q, 5, "hybrid", 0.7, True, "", "", "",
                                                                "", request, "en"),
        list(ask_handler(gate)(SEED_Q, [], [], 5, "extractive", True, ["default"], {}, request, "en"))[-1][1][-1],
    ]
    text = _shown(outputs)
    assert "47天" not in text and SEED_DOC not in text  # nothing of the base is shown
    if who != "other":
        assert "secret" not in text  # a base is named only to a key that may read it
    if who in ("rag_wrong", "gone"):
        assert "Wrong or missing API key" in text, text[:600]
    else:
        assert "no knowledge base 'default'" in text or "unknown knowledge base 'default'" in text, text[:600]


def test_a_reader_of_news_reads_it_but_writes_nothing(world):
    gate, keys = world
    request = req(keys["reader"])
    _, _, _, summary = documents_view(gate)("news", request, "en")
    assert "Knowledge base news: 0 documents" in summary
    manager = Manager(gate, documents_view(gate))
    # no key typed: the request's (the session's) grant decides
    refused = [manager.create("made", None, "news", ["news"], "news", request, "en")[0],
               manager.rename("renamed", None, "news", ["news"], "news", request, "en")[0],
               manager.ask_delete_base(None, "news", request, "en")[3],
               manager.ask_delete_doc(SEED_DOC, None, "default", request, "en")[3],
               manager.confirm({"kind": "base", "kb": "news"}, None, "news", [], "news", request, "en")[2],
               manager.confirm({"kind": "doc", "kb": "default", "doc": SEED_DOC}, None, "news", [], "news", request,
                               "en")[2]]
    text = _shown(refused)
    assert text.count("may not create, rename or delete knowledge bases") == 4, text
    assert "no knowledge base 'default' that this key may read" in text  # default: absent to this key
    assert gate.bases.names() == ["default", "news", "secret"] and len(gate.bases.get("default").documents()) == 1
    upload = upload_handler(gate, None, documents_view(gate))
    status = upload(["x.txt"], None, "news", request, "en")[0]
    assert "may read knowledge base 'news' but not change it" in html.unescape(status)


def test_a_writer_of_news_may_delete_its_documents_but_not_manage_bases(world):
    gate, keys = world
    manager = Manager(gate, documents_view(gate))
    request = req(keys["writer"])
    _, _, pending, status = manager.ask_delete_doc("nope.txt", None, "news", request, "en")
    assert "nope.txt is not in this knowledge base" in html.unescape(status) and pending is None
    assert "may not create" in html.unescape(manager.create("x", None, "news", [], "news", request, "en")[0])
    # the key typed in the tab counts too, and wins over the session
    status = manager.create("made", keys["boss"], "news", ["news"], "news", request, "en")[0]
    assert "Created the knowledge base made" in status


def test_a_manager_key_manages_and_the_pickers_follow_its_view(world):
    gate, keys = world
    manager = Manager(gate, documents_view(gate))
    request = req(keys["boss"])
    _, _, kb, chat, rt = manager.create("fresh", None, "default", ["default"], "default", request, "en")
    assert [c[0] for c in chat.choices] == ["default", "fresh", "news", "secret"] and kb.value == "fresh" and rt.value == "default"
    status, _, kb, chat, _ = manager.rename("renamed", None, "fresh", ["fresh"], "fresh", request, "en")
    assert "Renamed the knowledge base fresh to renamed" in status and chat.value == ["renamed"]
    # renaming a base a writer's scope named: the key follows it (Access.rename_base)
    manager.rename("daily", None, "news", ["news"], "news", request, "en")
    assert gate.names_for(req(keys["writer"])) == ["daily"]
    _, _, pending, _ = manager.ask_delete_base(None, "secret", request, "en")
    # another caller's Confirm with the asker's pending deletion (the state is per page; here forged): refused
    stolen = manager.confirm(pending, None, "secret", [], "secret", req(keys["other"]), "en")[2]
    assert "may not create, rename or delete" in html.unescape(stolen) and "secret" in gate.bases.names()
    manager.confirm(pending, None, "secret", [], "secret", request, "en")
    assert gate.bases.names() == ["default", "daily", "renamed"]


def test_a_hidden_base_cannot_be_managed_by_name(world):
    """A manager key whose read scope leaves a base out: that base is absent to it, not deletable by name."""
    gate, _ = world
    limited = gate.access.ring.add("limited", read="news", write="news", manage=True)
    manager = Manager(gate, documents_view(gate))
    request = req(limited)
    status = manager.ask_delete_base(None, "secret", request, "en")[3]
    assert "No knowledge base secret" in status
    status = manager.confirm({"kind": "base", "kb": "secret"}, None, "news", [], "news", request, "en")[2]
    assert "No knowledge base secret" in status and "secret" in gate.bases.names()
    status = manager.rename("mine", None, "secret", [], "secret", request, "en")[0]
    assert "No knowledge base secret" in status and "secret" in gate.bases.names()


def test_feedback_is_stored_only_for_a_caller_that_may_read_the_base(world):
    from ui.feedback_ui import handle_send

    gate, keys = world
    record = {"question": "q", "answer": "a", "abstained": False, "chunk_ids": [], "doc_ids": [], "cited_doc_ids": [],
              "kbs": ["news"], "settings": {}}
    kept = {"1": record}

    def resolve_as(request):
        return lambda names: gate.bases.get((gate.read_many(request, names) or ["default"])[0])

    _, status = handle_send(resolve_as(req(keys["other"])), kept, "1", "up", "", "", False)
    status = html.unescape(status)
    assert "no knowledge base 'news' that this key may read" in status
    _, status = handle_send(resolve_as(req(keys["reader"])), kept, "1", "up", "", "", False)
    assert "your feedback is stored" in status


def test_a_scope_naming_a_base_that_is_gone_names_no_other_base(world):
    gate, _ = world
    ghost = gate.access.ring.add("ghost", read="ghost,news")
    with pytest.raises(Exception) as refused:
        gate.read(req(ghost), "ghost")
    text = f"{refused.value} {getattr(refused.value, 'zh', '')}"
    assert "ghost" in text and "secret" not in text and "default" not in text
