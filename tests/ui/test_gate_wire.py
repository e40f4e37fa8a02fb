"""The chat page's new events sent raw through Gradio's queue (/gradio_api/queue/join with the event's
fn_index), as an attacker would, against `rag serve` with a keys file: without a key, with a wrong key, a
read-only key, a key for another base, and with odd names. Each is refused in words and changes nothing.

A page's pickers hold only what its caller may read, and Gradio refuses a dropdown value its session's
choices do not hold ("Value: … is not in the list of choices"): a raw client that names a base it was
never offered is refused there, before the handler. The handler's own refusals are reached with the
values a fresh page holds (no base chosen), or after the page's listing for a key offered the base."""

from __future__ import annotations

import html
import json

import httpx
import pytest
from gradio_raw import call, new_session
from test_ui_browser import _rag_serve

from rag.access import Access

pytestmark = [pytest.mark.server, pytest.mark.slow]

SEED_DOC = "000_e58332798fe41e73.txt"


@pytest.fixture(scope="module")
def keyed(seed_index, tmp_path_factory):
    """`rag serve` with RAG_KEYS_FILE: a manager, a reader of news, and a key for the base secret only."""
    from rag import RAG

    tmp = tmp_path_factory.mktemp("keyed")
    root = tmp / "kbs"
    for name in ("news", "secret"):
        RAG.open(root / name, create=True, progress=False).index([])
    ring = Access(None, tmp / "keys.json").ring
    keys = {"boss": ring.add("boss", read="*", write="*", manage=True), "reader": ring.add("reader", read="news"),
            "other": ring.add("other", read="secret", write="secret")}
    env = {"RAG_KB_ROOT": str(root), "RAG_KEYS_FILE": str(tmp / "keys.json")}
    for base, log in _rag_serve(seed_index, tmp_path_factory, api_key=None, extra_env=env):
        yield base, log.parent / "index", root, keys


def _out(r: dict) -> str:
    """What an event answered (its output, or its error), as text."""
    result = r["result"] or {}
    return html.unescape(json.dumps(result.get("output") or r["join"].text, ensure_ascii=False))


GRADIO_REFUSED = "is not in the list of choices"


def _bases(root) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_reading_events_show_nothing_without_a_key_or_with_one_for_another_base(keyed):
    base, _, _, keys = keyed
    for headers in ({}, {"X-API-Key": keys["other"]}):
        for kb in ("default", None):
            listing = _out(call(base, "doc_state", [kb], headers=headers))
            chunks = _out(call(base, "doc_chunks", [None, kb], headers=headers))
            answer = _out(call(base, "respond", ["蓝风微短剧基地从签约到试运营用了多少天？", [], [], 5, "extractive", True,
                                                 [kb] if kb else [], {}], headers=headers))
            search = _out(call(base, "run", [kb, "基地", 5, "hybrid", 0.7, True, "", "", "", ""], headers=headers))
            for shown in (listing, chunks, answer, search):
                assert SEED_DOC not in shown and "47天" not in shown, shown[:400]
                assert "news" not in shown  # a base is named only to a key that may read it
            refused = ("may read" in listing or "Wrong or missing" in listing or GRADIO_REFUSED in listing)
            assert refused and "documents," not in listing, listing[:400]
    page = new_session()
    ok = _out(call(base, "listing", [None], headers={"X-API-Key": keys["reader"]}, session=page))
    assert "Knowledge base news: 0 documents" in ok and "default" not in ok.replace('"default"', "")


@pytest.mark.parametrize(("who", "said"), [(None, "Wrong or missing API key"), ("rag_wrong", "Wrong or missing API key"),
                                           ("reader", "may not create, rename or delete"),
                                           ("other", "may not create, rename or delete")])
def test_base_changes_are_refused_to_keys_that_may_not_manage(keyed, who, said):
    base, _, root, keys = keyed
    key = keys.get(who, who) or ""
    before = _bases(root)
    page = new_session()
    outs = [call(base, "create", ["made", key, None, [], None], session=page),
            call(base, "rename", ["renamed", key, None, [], None], session=page),
            call(base, "ask_delete_base", [key, None], session=page),
            call(base, "confirm", [None, key, None, [], None], session=page)]
    for r in outs[:3]:
        assert said in _out(r), _out(r)[:400]
    assert "Nothing is waiting" in _out(outs[3]) or said in _out(outs[3])
    assert _bases(root) == before


@pytest.mark.parametrize("name", ["../x", "default", "a" * 300, "<b>x</b>", "a/b", ".hidden", " "])
def test_odd_names_are_refused_even_to_a_manager(keyed, name):
    base, _, root, keys = keyed
    before = _bases(root)
    page = new_session()
    call(base, "listing", [None], headers={"X-API-Key": keys["boss"]}, session=page)  # the page offers news
    for r in (call(base, "create", [name, keys["boss"], None, [], None], session=page),
              call(base, "rename", [name, keys["boss"], "news", [], None], session=page)):
        shown = _out(r)
        assert "rag-status-error" in shown or "rag-status-warn" in shown, shown[:400]
        assert "<b>x" not in json.dumps(r["result"]["output"], ensure_ascii=False)  # escaped as it is shown
    assert _bases(root) == before


def test_deleting_takes_the_question_and_the_confirm_of_one_page_with_a_key_that_may(keyed):
    base, _, root, keys = keyed
    page = new_session()
    asked = _out(call(base, "ask_delete_doc", [None, keys["reader"], None], session=page))
    assert "no knowledge base 'default' that this key may read" in asked
    assert GRADIO_REFUSED in _out(call(base, "ask_delete_base", [keys["boss"], "secret"], session=page))  # not offered
    call(base, "listing", [None], headers={"X-API-Key": keys["boss"]}, session=page)  # now the page offers it
    confirmed = _out(call(base, "confirm", [None, keys["boss"], None, [], None], session=page))
    assert "Nothing is waiting" in confirmed  # the pending deletion is the page's own state: none was asked
    assert any(d["doc_id"] == SEED_DOC for d in httpx.get(f"{base}/api/documents",
                                                           headers={"X-API-Key": keys["boss"]}).json())
    asked = _out(call(base, "ask_delete_base", [keys["boss"], "secret"], session=page))
    assert "Delete secret? This removes the whole base" in asked
    stolen = _out(call(base, "confirm", [None, keys["other"], None, [], None], session=page))
    assert "may not create, rename or delete" in stolen and "secret" in _bases(root)
    assert "Delete secret?" in _out(call(base, "ask_delete_base", [keys["boss"], "secret"], session=page))
    done = _out(call(base, "confirm", [None, keys["boss"], None, [], None], session=page))
    assert "Deleted the knowledge base secret" in done and "secret" not in _bases(root)
