"""rag.feedback_export: each kind of record → its row, the latest record wins, and the file runs through rag eval."""

from __future__ import annotations

import json

import pytest
from cli_runner import rag as rag_cli
from conftest import SEED_FILE

from rag.evaluation.dataset import load_dataset
from rag.feedback import read_feedback, record_feedback
from rag.feedback_export import MAX_FACT_CHARS, export_rows, is_fact, row_of
from ui.feedback_ui import record_of

BIG = 10 * 1024 * 1024
SEED_Q = "蓝风微短剧基地从签约到试运营用了多少天？"
SEED_Q2 = "蓝风微短剧基地有多少个实景棚？"
MARS_Q = "火星上的第一座微短剧基地叫什么名字？"


def rec(rid: str, **fields):
    base = {"id": rid * 32, "time": "2026-12-02T02:00:00+00:00", "rating": "up", "reason": None,
            "corrected_answer": None, "not_in_documents": False, "question": "问题？", "answer": "答案。 [1]",
            "abstained": False, "chunk_ids": [], "doc_ids": ["a.txt", "b.txt"], "cited_doc_ids": ["a.txt"],
            "kbs": [], "settings": {}}
    return {**base, **fields}


def test_a_thumbs_up_keeps_the_answer_without_markers_and_its_cited_documents():
    row = row_of(rec("a", answer="从签约到试运营,仅用时47天。 [1][2]", cited_doc_ids=["a.txt", "c.txt", "a.txt"]))
    assert row == {"id": "a" * 32, "question": "问题？", "answer": "从签约到试运营,仅用时47天。",
                   "gold_docs": ["a.txt", "c.txt"], "topic": "feedback-up"}
    assert "gold_docs" not in row_of(rec("a", cited_doc_ids=[]))  # the passages' doc_ids are not gold: uncited


def test_a_correction_is_a_key_fact_only_when_short():
    short = row_of(rec("b", rating="down", corrected_answer="47天"))
    assert short == {"id": "b" * 32, "question": "问题？", "answer": "47天", "key_facts": [["47天"]],
                     "topic": "feedback-corrected"}
    sentence = "从签约到试运营只用了四十七天，比原计划提前了两周。"
    long = row_of(rec("b", rating="down", corrected_answer=sentence))
    assert long["answer"] == sentence and long["key_facts"] == [] and "gold_docs" not in long
    assert is_fact("x" * MAX_FACT_CHARS) and not is_fact("x" * (MAX_FACT_CHARS + 1))
    assert not is_fact("47天。其余不变") and not is_fact("甲,乙") and is_fact("3,000")


def test_not_in_the_documents_and_an_approved_abstention_are_unanswerable():
    for record in (rec("c", rating="down", not_in_documents=True), rec("c", abstained=True, answer="资料中没有找到相关信息。")):
        row = row_of(record)
        assert row == {"id": "c" * 32, "question": "问题？", "answer": None, "topic": "feedback-unanswerable"}


def test_a_bare_thumbs_down_is_skipped_and_the_latest_record_of_a_question_wins():
    records = [
        rec("1", question="甲？"),
        rec("2", question="乙？", rating="down"),
        rec("3", question=" 甲？ ", rating="down"),  # the same question (whitespace aside): supersedes 1
        rec("4", question="甲？", rating="down", corrected_answer="正解"),  # the box's details: supersede 3
        rec("5", question="丙？", answer=" [1]"),
    ]
    rows, skipped = export_rows(records)
    assert [(r["id"][0], r["topic"]) for r in rows] == [("4", "feedback-corrected")]
    assert skipped == {"superseded": 2, "down_without_correction": 1, "up_without_answer": 1}


@pytest.fixture(scope="module")
def feedback_index(index_copy, rag):
    """The seed index with one record of each kind, made from real answers (as the chat keeps them)."""
    settings = {"top_k": 5, "retrieval": "hybrid"}
    up = rag.ask(SEED_Q)
    wrong = rag.ask(SEED_Q2)
    mars = rag.ask(MARS_Q)
    record_feedback(index_copy, {**record_of(up, ["seeds"], settings), "rating": "up"}, max_bytes=BIG)
    record_feedback(index_copy, {**record_of(wrong, ["seeds"], settings), "rating": "down"}, max_bytes=BIG)
    record_feedback(index_copy, {**record_of(wrong, ["seeds"], settings), "rating": "down",
                                 "corrected_answer": "60多个"}, max_bytes=BIG)
    record_feedback(index_copy, {**record_of(mars, ["seeds"], settings), "rating": "down",
                                 "not_in_documents": True}, max_bytes=BIG)
    return index_copy


@pytest.mark.slow
def test_the_export_loads_as_a_question_set(feedback_index, tmp_path):
    rows, skipped = export_rows(read_feedback(feedback_index))
    assert skipped["superseded"] == 1
    path = tmp_path / "fb.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    dataset = load_dataset(path, strict=True)
    by_topic = {r.topic: r for r in dataset.rows}
    assert set(by_topic) == {"feedback-up", "feedback-corrected", "feedback-unanswerable"}
    assert by_topic["feedback-up"].gold_docs == [SEED_FILE.name] and by_topic["feedback-up"].answerable
    assert by_topic["feedback-corrected"].key_facts == [["60多个"]]
    assert not by_topic["feedback-unanswerable"].answerable


@pytest.mark.slow
def test_the_export_runs_through_rag_eval(feedback_index, tmp_path):
    out = tmp_path / "fb.jsonl"
    done = rag_cli("feedback", "export", "--index-dir", str(feedback_index), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "3 questions (1 feedback-up, 1 feedback-corrected, 1 feedback-unanswerable) from 4 records" in done.stdout
    assert "1 superseded" in done.stdout
    run = rag_cli("eval", str(out), "--index-dir", str(feedback_index), "--json", "--strict")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["n"] == 3
    assert summary["abstention"]["n_unanswerable"] == 1
    assert summary["abstention"]["unanswerable_abstained"] == 1.0  # the Mars question is refused
    assert summary["retrieval"]["hit@1"] == 1.0  # the thumbs-up's cited page is found first
