"""The seed page split into its four articles, with headlines, bylines, sections and datelines."""

from __future__ import annotations

import numpy as np
import pytest

from rag.ingest.chunking import ChunkSettings, chunk_document
from rag.ingest.cleaning import CleanText, clean
from rag.ingest.structure import analyse
from rag.types import Chunk


@pytest.fixture(scope="module")
def structure(seed_text):
    return analyse(clean(seed_text), seed_text, "seed.txt")


def test_four_articles_are_found(structure):
    titles = [a.title for a in structure.articles]
    assert len(titles) == 4
    assert titles[0] == "数字潮涌产业兴 营商沃土育新机"
    assert titles[1].startswith("（上接）习近平总书记走进一户人家")
    assert titles[2].startswith("（上接）中国式现代化迈出新的重要步伐")
    assert titles[3].startswith("（上接）在政治忠诚上达到新高度")
    assert [a.continued for a in structure.articles] == [False, True, True, True]


def test_bylines_datelines_and_sections(structure):
    tianxin, xinhua = structure.articles[:2]
    assert tianxin.byline == "匡小娟 成柳静"
    assert [t for _, t in tianxin.sections] == ["文化科技融合,激活产业新动能", "服务超前一步,为企业“硬支撑”", "布局未来赛道,培育新质生产力"]
    assert xinhua.byline == "黄玥 张研 董博婷 王明玉" and xinhua.date_text == "2月13日"
    assert len(xinhua.sections) == 2


def _clean_span(c: CleanText, ch: Chunk) -> tuple[int, int]:
    """Where a chunk lies in the clean text (the articles' coordinates), from its source offset."""
    start = int(np.searchsorted(c.offsets, ch.meta["offset_runs"][0][1]))
    assert c.text[start : start + len(ch.text)] == ch.text
    return start, start + len(ch.text)


def test_chunks_carry_their_article_and_section(seed_text, structure):
    c = clean(seed_text)
    chunks = chunk_document("seed.txt", c, ChunkSettings(), structure)
    assert {ch.meta["article"] for ch in chunks} == {a.title for a in structure.articles}
    hit = next(ch for ch in chunks if "高新技术企业224家" in ch.text)
    assert hit.meta["article"] == "数字潮涌产业兴 营商沃土育新机"
    rel = hit.text.index("高新技术企业224家")  # the chunk may begin in the section before: the fact's place decides
    assert hit.place_at(hit.source_span(rel, rel + 1)[0])[0] == "布局未来赛道,培育新质生产力"
    assert hit.meta["byline"] == "匡小娟 成柳静"
    for ch in chunks:
        s, e = _clean_span(c, ch)
        home = [a for a in structure.articles if a.start <= s and e <= a.end]
        assert len(home) == 1, ch.text[:30]  # inside one article, never across two
        art = home[0]
        assert ch.meta["article"] == art.title, ch.text[:30]
        # Its section is the last subheading printed before it in its article (none before the first).
        before = [(pos, name) for pos, name in art.sections if pos <= s]
        assert ch.meta.get("section") == (before[-1][1] if before else None), ch.text[:30]
        if before:
            assert c.text.startswith(before[-1][1], before[-1][0])
        # A subheading inside the chunk is listed at its source offset, so a quote after it names it.
        inner = [[int(c.offsets[pos]), name] for pos, name in art.sections if s < pos < e]
        assert ch.meta.get("section_breaks", []) == inner, ch.text[:30]
    assert sum("section_breaks" in ch.meta for ch in chunks) >= 4
    assert sum(ch.meta.get("section") is None for ch in chunks) < len(chunks) // 2


def test_full_dates_and_plain_documents():
    text = "2023-08-03，正文：南京通报死龙虾加工出售。\n\n有人举报称，有人在批发市场收购死龙虾。"
    s = analyse(clean(text), text, "news.txt")
    assert len(s.articles) == 1 and s.articles[0].date == "2023-08-03"
    assert s.articles[0].title.startswith("2023-08-03，正文：南京通报死龙虾加工出售")


def test_markdown_headings_are_titles_and_sections():
    text = "# 湘江新区年度报告\n\n## 交通\n\n地铁三号线已经通车。\n\n## 教育\n\n新建学校五所。"
    s = analyse(clean(text), text, "r.md")
    art = s.articles[0]
    assert art.title == "湘江新区年度报告" and [t for _, t in art.sections] == ["交通", "教育"]
