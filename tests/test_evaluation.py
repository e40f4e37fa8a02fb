"""Metric functions on hand-made cases, and question-set parsing with line numbers."""

from __future__ import annotations

import json

import pytest

from rag.evaluation import DatasetError, char_f1, evaluate_row, fact_found, load_dataset, summarize
from rag.types import Answer, Chunk, Citation, Passage


def test_fact_split_across_a_line_break_and_full_width_digits():
    assert fact_found(["南洞艺谷"], "打造南洞艺\n\n谷景区")
    assert fact_found(["3000", "3,000"], "年拍摄微短剧可达３０００部")
    assert not fact_found(["224"], "高新技术企业22家")


def test_char_f1():
    assert char_f1("270度", "270度") == 1.0
    assert char_f1("", "x") == 0.0
    assert 0 < char_f1("正在包饺子", "正在包饺子，手上全是面粉") < 1


def _answer(text, abstained, passages_text, cite=(1,)):
    passages = [Passage(Chunk(f"c{i}", "doc.txt", t, 0, len(t)), 1.0 / i, i) for i, t in enumerate(passages_text, 1)]
    cites = [Citation(n, "doc.txt", f"c{n}", text, 0, 1) for n in cite] if not abstained else []
    return Answer("q", text, abstained, cites, passages, {})


def _row(**kw):
    from rag.evaluation import Row

    base = dict(id="x", question="q", answer="47天", key_facts=[["47天"]], gold_docs=[], topic="t", line=1)
    return Row(**{**base, **kw})


def test_an_abstention_on_an_answerable_row_is_wrong_even_if_retrieval_hit():
    r = evaluate_row(_row(), _answer("资料中没有找到相关信息。", True, ["仅用时47天"]), 10.0)
    assert r["first_relevant_rank"] == 1 and r["correct"] is False
    assert "abstained on an answerable question" in r["reasons"]


def test_correct_answer_with_precise_citation():
    r = evaluate_row(_row(), _answer("仅用时47天 [2]", False, ["无关", "仅用时47天"], cite=(2,)), 5.0)
    assert r["correct"] and r["first_relevant_rank"] == 2 and r["citation_precise"] == [True] and r["passed"]
    s = summarize([r], k=5)
    assert s["retrieval"]["hit@1"] == 0.0 and s["retrieval"]["hit@k"] == 1.0 and s["retrieval"]["mrr"] == 0.5
    assert s["answer"]["accuracy"] == 1.0 and s["citation"]["validity"] == 1.0


def test_unanswerable_rows_count_for_abstention_only():
    r = evaluate_row(_row(answer=None, key_facts=[]), _answer("资料中没有找到相关信息。", True, ["x"]), 1.0)
    s = summarize([r], k=5)
    assert s["abstention"]["unanswerable_abstained"] == 1.0 and s["retrieval"]["hit@1"] is None


def test_malformed_rows_are_reported_with_line_numbers(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text("\n".join([
        json.dumps({"id": "a", "question": "好问题？", "answer": "是", "key_facts": [["是"]]}),
        "{broken json",
        json.dumps({"id": "b", "answer": "no question"}),
        json.dumps({"id": "c", "question": "事实格式错", "key_facts": "47天"}),
    ]), encoding="utf-8")
    ds = load_dataset(p)
    assert [r.id for r in ds.rows] == ["a"]
    assert [e.split(":")[0] for e in ds.errors] == ["q.jsonl line 2", "q.jsonl line 3", "q.jsonl line 4"]
    with pytest.raises(DatasetError, match="line 2"):
        load_dataset(p, strict=True)


def test_csv_and_missing_files(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('id,question,answer,key_facts\na,多少天？,47天,"[[""47天""]]"\n', encoding="utf-8")
    assert load_dataset(p).rows[0].key_facts == [["47天"]]
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "none.jsonl")
