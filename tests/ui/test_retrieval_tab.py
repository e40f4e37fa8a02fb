"""The retrieval test tab's event without a browser: what it shows, and how it refuses what no control sends."""

from __future__ import annotations

import re

import pytest

from ui.retrieval_tab import NO_PASSAGES, search_handler

SEED_Q = "蓝风微短剧基地从签约到试运营用了多少天？"


@pytest.fixture(scope="module")
def run(rag):
    return search_handler(lambda name: rag, lambda: ["default", "other"])


def _search(run, lang=None, **change):
    args = {"base": "default", "query": SEED_Q, "top_k": 5, "mode": "hybrid", "weight": 0.7, "rerank": True,
            "doc": "", "article": "", "date_from": "", "date_to": ""} | change
    return run(*args.values(), lang=lang)


def test_the_table_has_a_row_per_passage_with_every_score(run, rag):
    html = _search(run)
    assert html.count("<tr data-rank=") == 5 and "47天" in html and "000_e58332798fe41e73.txt" in html
    first = re.search(r'<tr data-rank="1">(.*?)</tr>', html, re.DOTALL).group(1)
    expected = rag.search(SEED_Q, 5, explain=True)[0].explain
    assert f'{expected["fused"]:.4f}' in first and f'{expected["dense"]:.4f}' in first
    assert f'{expected["bm25"]:.4f} <span class="rt-rank">#{expected["bm25_rank"]}</span>' in first
    assert '<mark class="rt-term">基地</mark>' in first  # the question's words marked in the passage
    assert "coverage" in html and "time" in html and "覆盖率" not in html
    zh = run(*{"base": "default", "query": SEED_Q, "top_k": 5, "mode": "hybrid", "weight": 0.7, "rerank": True,
               "doc": "", "article": "", "date_from": "", "date_to": ""}.values(), lang="zh")
    assert "覆盖率" in zh and "用时" in zh and "<th>排名</th>" in zh and "coverage" not in zh


def test_document_text_is_escaped(run, rag, monkeypatch):
    from rag.types import Chunk, Passage

    chunk = Chunk("c1", "<b>doc</b>.txt", "<script>alert(1)</script> 短剧 ${x}", 0, 10)
    facts = {"mode": "dense", "fusion": None, "coverage": None, "lexical_weight": 0.7, "lexical_weight_used": 0.0,
             "rerank_weight": 0.5, "rerank_weight_used": 0.0, "candidates": 100, "pool": 1, "dense_candidates": 1,
             "lexical_candidates": 0, "exact_match": False}
    explain = {"dense": 0.5, "dense_rank": 1, "bm25": None, "bm25_rank": None, "fused": 0.5, "rerank_bonus": 0.0,
               "exact_boost": 0.0, "score": 0.5, "rank": 1, "query": facts}
    monkeypatch.setattr(rag, "search", lambda *a, **k: [Passage(chunk, 0.5, 1, 0.5, None, explain=explain)])
    html = _search(run)
    assert "<script>" not in html and "<b>doc" not in html and "${" not in html
    assert "&lt;script&gt;" in html and '<mark class="rt-term">短剧</mark>' in html


def test_no_passages_is_said_in_the_pages_language(run):
    html = _search(run, doc="nothing-*.md")
    assert NO_PASSAGES in html and "No passages" in html and "<table" not in html
    assert "没有找到段落" in _search(run, doc="nothing-*.md", lang="zh")


@pytest.mark.parametrize(("change", "message"), [
    ({"weight": 1.5}, "lexical_weight must be between 0 and 1"),
    ({"weight": "heavy"}, "lexical_weight must be a number"),
    ({"top_k": 51}, "top_k must be a whole number from 1 to 50"),
    ({"top_k": 2.5}, "top_k must be a whole number"),
    ({"top_k": float("inf")}, "top_k must be a whole number"),
    ({"rerank": "false"}, "rerank must be true or false"),
    ({"mode": "fuzzy"}, "retrieval mode must be one of"),
    ({"base": "../etc"}, "unknown knowledge base"),
    ({"query": ["a"]}, "the query must be text"),
    ({"query": "  "}, "empty"),
    ({"date_to": "31.12.2023"}, "date_to must be a date like"),
])
def test_bad_values_are_a_plain_message_not_a_crash(run, change, message):
    html = _search(run, **change)
    assert html.startswith('<div class="rt-error">Search failed: ') and message in html, html
    assert _search(run, lang="zh", **change).startswith('<div class="rt-error">检索出错：')
