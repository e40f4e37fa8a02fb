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
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in out  # a name is escaped
    # a document's markup is left out of its card and its quote (rag.text.display), the rest escaped
    assert '前文。<mark class="rag-quote">alert(1)答案是&#36;&#36;42&#36;&#36;&#123;&#123;x&#125;&#125;。</mark>后文。' in out
    assert '<sup class="rag-ref">[1]</sup>' in out and "score 0.5000" in out
    assert "Warning: LLM &lt;x&gt; failed" in out  # warnings are shown
    assert "Other retrieved passages" in out and "other.md" in out  # uncited passages, folded
    zh = answer_html(_answer(), "zh")
    assert "注意： LLM &lt;x&gt; failed" in zh and "其他检索到的段落" in zh and "相关度 0.5000" in zh
    assert "Warning" not in zh and "Sources" not in zh and "来源" in zh
    assert "\n\n" not in out  # one raw HTML block for the Markdown renderer
    assert user_message("<i>hi</i>\n\nthere") == '<div class="rag-q">&lt;i&gt;hi&lt;/i&gt;<br><br>there</div>'


def test_answer_html_shows_the_not_found_state():
    from ui.render import answer_html

    out = answer_html(_answer(answer=NOT_FOUND_ZH, abstained=True, citations=[], warnings=[]), "zh")
    assert '<div class="rag-notfound">资料中没有找到相关信息</div>' in out
    assert "最接近的段落 (2)" in out and "来源" not in out
    out = answer_html(_answer(answer=NOT_FOUND_ZH, abstained=True, citations=[], warnings=[]), "en")
    assert '<div class="rag-notfound">Not found in the documents</div>' in out
    assert "Closest passages (2)" in out and "Sources" not in out


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


def test_only_the_answers_own_markers_are_citations():
    """A ``[3]`` quoted from a document is text, not a superscript next to another document's passage 3
    (issue 23, bug 10); the marker the generator placed after the quote is the citation."""
    from rag.types import Chunk, Citation, Passage
    from ui.render import answer_html

    quote = "紫藤镇风筝节今年吸引游客两万三千人，\n  详见[3]与[1]。"
    evil = Chunk("c1", "evil.md", quote, 0, len(quote))
    others = [Passage(Chunk(f"o{i}", "other.txt", f"段落{i}。", 0, 4), 0.1, i) for i in (2, 3)]
    answer = _answer(answer=f"{quote.replace(chr(10) + '  ', ' ')} [1]",  # the extractive answer: the quote, tidied
                     citations=[Citation(1, "evil.md", "c1", quote, 0, len(quote))],
                     passages=[Passage(evil, 0.9, 1), *others])
    text = answer_html(answer).split('<div class="rag-text">')[1].split("</div>")[0]
    assert text.count('<sup class="rag-ref">') == 1 and text.endswith('[1]</sup></a>')
    assert "详见[3]与[1]。" in text  # the document's own brackets, as text
    llm = _answer(answer="游客两万三千人 [1]。另见 [2] 和 [9]。", citations=[Citation(1, "evil.md", "c1", quote, 0, 5)],
                  passages=[Passage(evil, 0.9, 1), *others])
    text = answer_html(llm).split('<div class="rag-text">')[1].split("</div>")[0]
    assert text.count('<sup class="rag-ref">') == 1 and "另见 [2] 和 [9]。" in text  # cited: [1] only


def test_the_chunk_title_shows_a_file_name_not_a_link(tmp_path):
    """The documents tab's Markdown title names the chosen document: a file named like a link stays text."""
    from markdown_it import MarkdownIt

    from rag import RAG
    from rag.access import Access
    from rag.bases import KnowledgeBases
    from ui.chunks_view import chunks_handler
    from ui.gate import Gate

    name = "[点此查看原文](https:evil.example).md"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / name).write_text("灯会在元宵节举行，共展出彩灯八百组。", encoding="utf-8")
    rag = RAG.open(tmp_path / "index", create=True, progress=False)
    rag.index([tmp_path / "src"])
    doc_chunks = chunks_handler(Gate(Access(), KnowledgeBases(rag, tmp_path / "kbs", RAG.open)).read)
    for lang, shown in (("zh", f"<strong>{name}</strong>：1 个段落"), ("en", f"<strong>{name}</strong>: 1 chunks")):
        _, title, _ = doc_chunks(name, lang=lang)
        rendered = MarkdownIt("commonmark").render(title)
        assert "<a " not in rendered, rendered
        assert html.unescape(rendered) == f"<p>{shown}</p>\n"


def test_no_text_can_end_the_html_block_and_start_markdown():
    """A blank line in a quote or a name ended the chat message's raw HTML block: what followed was
    Markdown, so a document's ``[x](javascript:…)`` became a live link (issue 23, bug 10)."""
    from rag.types import Answer, Chunk, Citation, Passage
    from ui.render import answer_html, error_message, status_html

    name = "a\n\n[点此](javascript:alert(1)).txt"
    chunk = Chunk("c1", name, "无关。\r\n\r\n**粗体**", 0, 12)
    quote = "段一。\n\n[点此](javascript:alert(1))"  # not in the passage: shown on its own
    out = answer_html(Answer("q", "答 [1]", False, [Citation(1, name, "c1", quote, 0, 3)], [Passage(chunk, 0.5, 1)],
                             {}, warnings=["x\n\ny"]))
    for html_text in (out, error_message("bad\n\n[x](javascript:1)"), status_html([("ok", "a\n\nb")])):
        assert "\n\n" not in html_text and "\r" not in html_text, html_text


def test_an_uncertain_answer_is_shown_with_its_doubt_and_without_a_bold_answer():
    from rag.generation.extractive import UNCERTAIN_WARNING
    from ui.render import answer_html

    span = {"text": "42", "start": 20, "end": 22, "n": 1}
    sure = answer_html(_answer(warnings=[], answer_span=span))
    assert "rag-answer-span" in sure and "答案不确定" not in sure
    doubtful = answer_html(_answer(warnings=[UNCERTAIN_WARNING.format(p=0.41)], answer_span=span), "zh")
    assert "rag-answer-span" not in doubtful and "答案不确定（置信度 0.41）" in doubtful
    doubtful = answer_html(_answer(warnings=[UNCERTAIN_WARNING.format(p=0.41)], answer_span=span), "en")
    assert "rag-answer-span" not in doubtful and "uncertain answer (confidence 0.41)" in doubtful


def test_the_answer_shows_its_confidence_and_a_doubtful_one_asks_to_be_checked():
    """The meta line carries the calibrated confidence (none when the generator gives none); an answer
    below the doubt threshold says 再确认 · please check in its warning and bolds nothing."""
    from rag.generation.extractive import UNCERTAIN_WARNING
    from ui.render import answer_html

    span = {"text": "42", "start": 20, "end": 22, "n": 1}
    for lang, confidence, check in (("zh", "置信度", "再确认"), ("en", "confidence", "please check")):
        sure = answer_html(_answer(warnings=[], answer_span=span, confidence=0.873), lang)
        meta = sure.split('<div class="rag-meta">')[1]
        assert f"{confidence} 0.87" in meta and check not in sure
        assert confidence not in answer_html(_answer(confidence=None), lang)  # an LLM's answer: no number made up
        doubtful = answer_html(_answer(warnings=[UNCERTAIN_WARNING.format(p=0.31)], answer_span=span, confidence=0.31),
                               lang)
        warning = re.search(r'<div class="rag-warning rag-doubt">(.*?)</div>', doubtful)[1]
        assert re.search(f"<strong>[^<]*{check}</strong>", warning) and "0.31" in warning
        assert "rag-answer-span" not in doubtful and f"{confidence} 0.31" in doubtful
        other = answer_html(_answer(warnings=["LLM x failed"], confidence=0.9), lang)  # others ask for nothing
        assert check not in other and "rag-doubt" not in other


def test_the_generator_box_speaks_plain_words_not_setting_names(tmp_path):
    from rag import RAG
    from ui.app import create_app

    rag = RAG.open(tmp_path / "index", create=True, progress=False)
    demo = create_app(rag)
    boxes = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "rag-generator"]
    assert len(boxes) == 1
    from ui.texts import t

    words = f"{boxes[0].label} {boxes[0].info} {t('chat.generator', 'zh')} {t('chat.generator_info', 'zh')}"
    assert "生成器" in words and "Generator" in words
    for setting in ("RAG_", "allowed_generators", "ALLOWED", "_"):
        assert setting not in words, words
