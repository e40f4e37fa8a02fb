"""The page's texts (ui/texts.py): every key in both languages, with the same fields, and the switch's plumbing."""

from __future__ import annotations

import re
import string
from pathlib import Path

import gradio as gr
import pytest

from ui.texts import LANG_COOKIE, TEXTS, Labels, lang_of, request_lang, t

CJK = re.compile(r"[\u4e00-\u9fff]")
UI = Path(__file__).resolve().parents[2] / "ui"


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_text_has_both_languages_with_the_same_fields(key):
    zh, en = TEXTS[key]
    assert zh.strip() and en.strip(), key
    assert _fields(zh) == _fields(en), key
    assert not CJK.search(en), f"{key}: Chinese in the English text {en!r}"
    if CJK.search(en + zh) or re.search("[A-Za-z]{3}", zh.replace("HTTP API", "").replace("BM25", "")
                                         .replace("top-k", "").replace("ms", "")):
        assert CJK.search(zh), f"{key}: the Chinese text {zh!r} has no Chinese"


def test_every_key_the_ui_uses_is_in_the_table():
    """A key typed in ui/*.py (t("…"), tx("…"), a label="…" of Labels.add) that the table lacks would fail
    only when that line runs: found here by reading the sources."""
    used = set()
    for path in UI.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'\b(?:t|tx)\(\s*"([a-z]+\.[a-z_]+)"', source))
        used |= set(re.findall(r'\b(?:label|info|placeholder|value)="([a-z]+\.[a-z_]+)"', source))
    assert used, "no keys found: the pattern is stale"
    missing = sorted(k for k in used if k not in TEXTS)
    assert not missing, missing


def test_the_language_of_an_event_is_the_cookie_or_english():
    assert lang_of("zh") == "zh" and lang_of("en") == "en"
    for odd in (None, "", "ZH", "fr", ["zh"], {"x": 1}, 3):
        assert lang_of(odd) == "en"
    assert request_lang(gr.Request(cookies={LANG_COOKIE: "zh"})) == "zh"
    assert request_lang(gr.Request(cookies={LANG_COOKIE: "<script>"})) == "en"
    assert request_lang(gr.Request(cookies={})) == "en" and request_lang(None) == "en"
    assert request_lang(gr.Request(cookies={LANG_COOKIE: "en"}), "zh") == "zh"  # given: it wins
    assert t("chunks.title", "zh", name="a", n=2) == "**a**：2 个段落"


def test_labels_relabel_every_registered_property():
    tx = Labels("en")
    with gr.Blocks():
        button = tx.add(gr.Button(tx("chat.ask")), value="chat.ask")
        box = tx.add(gr.Textbox(label=tx("rt.query"), placeholder=tx("rt.query_placeholder")), label="rt.query",
                     placeholder="rt.query_placeholder")
        radio = tx.add(gr.Radio([("a", "a")]), choices=lambda lang: [(t("rt.mode_dense", lang), "dense")])
    assert tx.components == [button, box, radio] and button.value == "Ask"
    zh = tx.updates("zh")
    assert zh[0] == {"__type__": "update", "value": "提问"}
    assert zh[1]["label"] == "查询" and zh[1]["placeholder"] == "输入查询，回车检索"
    assert zh[2]["choices"] == [("向量", "dense")]
    assert tx.updates("anything")[0]["value"] == "Ask"


def test_the_whole_page_relabels_tabs_included(seed_rag):
    """Switching the language is one event whose outputs are every registered component, the tabs among them."""
    from ui.app import create_app

    demo = create_app(seed_rag)
    relabel = next(f for f in demo.fns.values() if f.name == "relabel")
    outputs = relabel.outputs
    tabs = [o for o in outputs if isinstance(o, gr.Tab)]
    assert len(tabs) == 3
    out = relabel.fn("zh", "default", None)
    assert len(out) == len(outputs)
    labels = {getattr(o, "elem_id", None): u for o, u in zip(outputs, out, strict=True) if isinstance(u, dict)}
    assert labels["rag-chat-tab"]["label"] == "问答" and labels["rag-documents-tab"]["label"] == "文档"
    assert labels["rag-ask"]["value"] == "提问" and labels["rag-question"]["placeholder"] == "输入问题，回车提问"
    assert labels["rag-kb-create"]["value"] == "新建知识库" and labels["rag-confirm-yes"]["value"] == "确认删除"
    table = out[-4]
    assert table.headers == ["文档", "大小", "段落", "索引时间"]
    english = relabel.fn("en", "default", None)
    assert english[-4].headers == ["Document", "Size", "Chunks", "Indexed at"]
