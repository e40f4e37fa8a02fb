"""The chat's HTML (ui/render.py): everything a user or a document supplies is escaped."""

from __future__ import annotations

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
