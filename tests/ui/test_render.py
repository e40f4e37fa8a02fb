"""The chat's HTML (ui/render.py): everything a user or a document supplies is escaped."""

from __future__ import annotations

import html
import re

from rag.generation import NOT_FOUND_ZH


def _answer(**kw):
    from rag.types import Answer, Chunk, Citation, Passage

    chunk = Chunk("c1", "<img src=x onerror=alert(1)>.txt", "前文。<script>alert(1)</script>答案是$$42$${{x}}。后文。", 0, 40)
    base = {
        "question": "q", "answer": "答案是<b>42</b> [1]", "abstained": False,
        "citations": [Citation(1, chunk.doc_id, "c1", "<script>alert(1)</script>答案是$$42$${{x}}。", 3, 30)],
        "passages": [Passage(chunk, 0.5, 1), Passage(Chunk("c2", "other.md", "无关段落。", 0, 5), 0.1, 2)],
        "timings": {"total_ms": 12.0}, "warnings": ["LLM <x> failed"],
    }
    return Answer(**{**base, **kw})


def test_answer_html_escapes_everything_user_supplied():
    from ui.render import answer_html, user_message

    out = answer_html(_answer())
    for raw in ("<script>", "<img", "<b>42", "$$", "{{", "<x>"):
        assert raw not in out
    assert "&lt;script&gt;" in out and "&lt;img src=x onerror=alert(1)&gt;.txt" in out
    assert '<mark class="rag-quote">&lt;script&gt;alert(1)&lt;/script&gt;答案是' in out  # quote marked in its passage
    assert '<sup class="rag-ref">[1]</sup>' in out and "score 0.5000" in out
    assert "注意 Warning: LLM &lt;x&gt; failed" in out  # warnings are shown
    assert "其他检索到的段落" in out and "other.md" in out  # uncited passages, folded
    assert "\n\n" not in out  # one raw HTML block for the Markdown renderer
    assert user_message("<i>hi</i>\n\nthere") == '<div class="rag-q">&lt;i&gt;hi&lt;/i&gt;<br><br>there</div>'


def test_answer_html_shows_the_not_found_state():
    from ui.render import NOT_FOUND, answer_html

    out = answer_html(_answer(answer=NOT_FOUND_ZH, abstained=True, citations=[], warnings=[]))
    assert f'<div class="rag-notfound">{NOT_FOUND}</div>' in out
    assert "最接近的段落 Closest passages (2)" in out and "来源 Sources" not in out


def test_each_citation_links_to_its_place_in_the_source_in_a_new_tab():
    from dataclasses import dataclass
    from urllib.parse import parse_qs, urlsplit

    from rag.types import Citation
    from ui.render import answer_html

    out = answer_html(_answer())
    links = re.findall(r'<a class="rag-view" href="([^"]+)" target="_blank" rel="noopener">', out)
    assert len(links) == 3  # the [1] in the text, the [1] of its source, the uncited passage [2]
    cited = urlsplit(html.unescape(links[0]))
    assert cited.path == "/view" and cited.fragment == "cited"
    assert parse_qs(cited.query) == {"doc": ["<img src=x onerror=alert(1)>.txt"], "start": ["3"], "end": ["30"]}
    assert "<img" not in links[0] and "%3Cimg" in links[0]  # URL-encoded, never raw markup in the attribute
    assert html.unescape(links[1]) == html.unescape(links[0])  # the source's number goes to the same place
    assert parse_qs(urlsplit(html.unescape(links[2])).query) == {"doc": ["other.md"], "chunk": ["c2"]}

    @dataclass(frozen=True)
    class KbCitation(Citation):  # what Citation becomes with knowledge bases
        kb: str | None = None

    first = _answer().citations[0]
    with_kb = KbCitation(**{**first.__dict__, "kb": "新闻 kb&x"})
    out = answer_html(_answer(citations=[with_kb]))
    query = parse_qs(urlsplit(html.unescape(re.search(r'href="([^"]+)"', out)[1])).query)
    assert query["kb"] == ["新闻 kb&x"] and query["start"] == ["3"]


def test_a_long_passage_shows_its_quote_with_some_context_not_all_of_it():
    from rag.types import Chunk, Citation, Passage
    from ui.render import CONTEXT_CHARS, answer_html

    quote = "紫藤镇风筝节今年吸引游客两万三千人。"
    text = "前" * 500 + quote + "后" * 500
    chunk = Chunk("c1", "kite.txt", text, 0, len(text))
    out = answer_html(_answer(citations=[Citation(1, "kite.txt", "c1", quote, 500, 500 + len(quote))],
                              passages=[Passage(chunk, 0.9, 1)]))
    assert f'…{"前" * CONTEXT_CHARS}<mark class="rag-quote">{quote}</mark>{"后" * CONTEXT_CHARS}…' in out
    assert "前" * (CONTEXT_CHARS + 1) not in out and "后" * (CONTEXT_CHARS + 1) not in out
    short = Chunk("c2", "short.txt", "短段落。" + quote, 0, 30)  # a short passage is shown whole
    out = answer_html(_answer(citations=[Citation(1, "short.txt", "c2", quote, 4, 22)], passages=[Passage(short, 0.9, 1)]))
    assert f'短段落。<mark class="rag-quote">{quote}</mark>' in out and "…" not in out.split("rag-passage")[1][:80]
