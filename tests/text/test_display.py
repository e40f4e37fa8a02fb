"""What a quote and a source card show of document text: no markup, no control glyphs, no glued sentences."""

from __future__ import annotations

import pytest

from rag.text.display import display


@pytest.mark.parametrize(("raw", "shown"), [
    ("The port handled **2.7 million TEU** last year.", "The port handled 2.7 million TEU last year."),
    ("see [the report](https://example.org/r.pdf \"title\") and ![map](m.png)", "see the report and map"),
    ("an *important* point, 2*3*4 stays", "an important point, 2*3*4 stays"),
    ("run `rag index` first", "run rag index first"),
    ("详见[点此](javascript:alert(1))与[wiki](https://en.wikipedia.org/wiki/Kite_(toy))", "详见点此与wiki"),
    ("## 天心经开区\n> 高新技术企业224家", "天心经开区\n高新技术企业224家"),
    ("<p>园区<b>已落地</b>重点项目82个</p>", "园区已落地重点项目82个"),
    ("a &lt;b&gt; tag and a < b > c", "a <b> tag and a < b > c"),
    ("第一页末尾。\f第二页开头", "第一页末尾。 第二页开头"),
    ("up 5% on the year before.The busiest month was May.", "up 5% on the year before. The busiest month was May."),
    ("U.S.A. and e.g. 3.5 stay as they are", "U.S.A. and e.g. 3.5 stay as they are"),
    ("snake_case_name and 高新技术企业224家", "snake_case_name and 高新技术企业224家"),
    ("", ""),
])
def test_display(raw, shown):
    assert display(raw) == shown


def test_a_quote_is_still_found_in_its_card():
    card = "# Port\n\nThe port handled **2.7 million TEU** last year.The busiest month was May.\f Next page."
    for quote in ("The port handled **2.7 million TEU** last year.", "The busiest month was May.", "Next page."):
        assert display(quote) in display(card)


def test_an_answer_from_a_markdown_page_quotes_without_markup(tmp_path):
    from rag import RAG
    from ui.render import answer_html

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "park.md").write_text(
        "# 天心经开区简报\n\n截至今年十月，园区已落地**重点项目82个**，其中[高新技术企业](https://example.org/a)224家。\f\n"
        "园区还建成了一个人工智能算力中心。\n", encoding="utf-8")
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.index([docs])
    answer = rag.ask("园区已落地重点项目多少个？")
    assert not answer.abstained and "82" in answer.answer
    shown = [answer.answer, *(c.quote for c in answer.citations), (answer.answer_span or {}).get("text", "")]
    assert all("**" not in s and "](" not in s and "\f" not in s for s in shown), shown
    page = answer_html(answer)
    assert "<mark" in page and 'class="rag-cited"' not in page  # the quote was found in its source card
    assert "**" not in page and "\f" not in page
