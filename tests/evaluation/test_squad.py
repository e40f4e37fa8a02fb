"""SQuAD-format sets in `rag eval`: reading them (malformed entries by position), the hold-out, CMRC's F1, the curve.

A tiny file is written here: 3 paragraphs, 5 usable questions, one empty question and one malformed
entry. `rag eval tiny.json` builds an index of its paragraphs (one document each) and asks every
question over it; with `--holdout-every 2` the second paragraph is left out and its two questions
must be refused. The three runs start together, so the model loads overlap.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_eval_cli import rag

from rag.evaluation import DatasetError, load_dataset
from rag.evaluation.metrics import cmrc_f1, cmrc_segments, confidence_curve, contains_gold, evaluate_row, relevant
from rag.evaluation.report import render_html
from rag.types import Answer, Chunk, Passage

TINY = {"version": "v1", "data": [
    {"title": "蓝风", "paragraphs": [
        {"id": "P-A", "context": "蓝风微短剧基地从签约到试运营，仅用时47天。基地年拍摄微短剧可达3000部。",
         "qas": [{"id": "a1", "question": "蓝风微短剧基地从签约到试运营用了多少天？",
                  "answers": [{"text": "47天", "answer_start": 18}, {"text": "47天", "answer_start": 18}]},
                 {"id": "a2", "question": "蓝风基地一年最多能拍摄多少部微短剧？",
                  "answers": [{"text": "3000部", "answer_start": 30}]}]},
        {"id": "P-B", "context": "梵語的學術研究，在歐洲由德國學者陸特和漢斯雷頓開創。",
         "qas": [{"id": "b1", "question": "陸特和漢斯雷頓開創了哪一地區對梵語的學術研究？",
                  "answers": [{"text": "歐洲", "answer_start": 9}]},
                 {"id": "b2", "question": "梵語的學術研究由哪國學者開創？",
                  "answers": [{"text": "德國", "answer_start": 12}]}]},
    ]},
    {"title": "石头", "paragraphs": [
        {"context": "天心经开区党工委书记是唐庆旺。经开区共有高新技术企业224家。",
         "qas": [{"id": "c1", "question": "天心经开区党工委书记是谁？", "answers": [{"text": "唐庆旺", "answer_start": 11}]},
                 {"id": "c2", "question": "  ", "answers": [{"text": "224家", "answer_start": 26}]},
                 {"id": "c3", "question": "经开区有多少家高新技术企业？", "answers": "224家"}]},
    ]},
]}


def _tiny(path: Path) -> Path:
    path.write_text(json.dumps(TINY, ensure_ascii=False), encoding="utf-8")
    return path


def test_rows_paragraphs_and_malformed_entries_by_position(tmp_path):
    ds = load_dataset(_tiny(tmp_path / "tiny.json"))
    assert [r.id for r in ds.rows] == ["a1", "a2", "b1", "b2", "c1"]
    assert ds.errors == ["tiny.json data[1].paragraphs[0].qas[1]: empty question",
                         "tiny.json data[1].paragraphs[0].qas[2]: 'answers' must be a non-empty list"]
    assert [(p.id, p.doc_id) for p in ds.paragraphs] == [("P-A", "p00000.txt"), ("P-B", "p00001.txt"),
                                                        ("data[1].paragraphs[0]", "p00002.txt")]
    a1 = ds.rows[0]
    assert a1.answers == ["47天"] and a1.gold_docs == ["p00000.txt"] and a1.paragraph == "P-A" and a1.answerable
    with pytest.raises(DatasetError, match=r"tiny.json data\[1\].paragraphs\[0\].qas\[1\]: empty question"):
        load_dataset(tmp_path / "tiny.json", strict=True)


def test_holdout_every_2_leaves_the_second_paragraph_out(tmp_path):
    ds = load_dataset(_tiny(tmp_path / "tiny.json")).with_holdout(2)
    assert [p.held_out for p in ds.paragraphs] == [False, True, False]
    assert {r.id: (r.topic, r.answerable) for r in ds.rows} == {
        "a1": ("kept", True), "a2": ("kept", True), "b1": ("left-out", False), "b2": ("left-out", False),
        "c1": ("kept", True)}
    from rag.evaluation.dataset import write_paragraphs

    folder = write_paragraphs(ds, tmp_path / "docs")
    assert sorted(p.name for p in folder.iterdir()) == ["p00000.txt", "p00002.txt"]
    assert [r.id for r in ds.sample(every=2).rows] == ["a1", "b1", "c1"]
    with pytest.raises(DatasetError, match="at least 2"):
        ds.with_holdout(1)


def test_bad_squad_files(tmp_path):
    (tmp_path / "x.json").write_text('{"data": 3}', encoding="utf-8")
    with pytest.raises(DatasetError, match="not a SQuAD-format file"):
        load_dataset(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"data": [{"paragraphs": [{"qas": []}]}]}', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"holds no usable question \(y.json data\[0\].paragraphs\[0\]: missing"):
        load_dataset(tmp_path / "y.json")


# ---- CMRC 2018's F1, hand-computed --------------------------------------------------------


def test_cmrc_segmentation_splits_chinese_characters_and_keeps_other_runs_whole():
    assert cmrc_segments("他生于1963年。") == ["他", "生", "于", "1963", "年"]
    assert cmrc_segments("《泡泡堂》由Nexon开发") == ["泡", "泡", "堂", "由", "nexon", "开", "发"]


@pytest.mark.parametrize(("prediction", "golds", "f1"), [
    ("1963年", ["1963年"], 1.0),
    ("《泡泡堂》", ["泡泡堂"], 1.0),  # punctuation is dropped
    ("他生于1963年。", ["1963年"], 2 * (2 / 5) * 1 / (2 / 5 + 1)),  # LCS 2 of 5 and of 2 pieces: 4/7
    # longest common *substring*: 大学 (2), not the 3 shared characters a bag-of-characters F1 counts
    ("北京大学", ["北大学"], 2 * (2 / 4) * (2 / 3) / (2 / 4 + 2 / 3)),
    ("仅用时47天", ["四十七天", "47天"], 4 / 7),  # the best gold answer counts
    ("Nexon公司", ["Nexon"], 2 * (1 / 3) * 1 / (1 / 3 + 1)),  # a Latin word is one piece, case folded
    ("唐庆旺", ["224家"], 0.0),
    ("", ["47天"], 0.0),
])
def test_cmrc_f1_hand_computed(prediction, golds, f1):
    assert cmrc_f1(prediction, golds) == pytest.approx(f1)


def test_contains_is_normalised_and_relevance_needs_the_paragraph_and_a_gold_answer():
    assert contains_gold(["3,000部"], "年拍摄微短剧可达３，０００ 部。")  # NFKC, whitespace and punctuation
    assert contains_gold(["Nexon"], "由韩国NEXON开发") and not contains_gold(["。"], "任何句子。")
    from rag.evaluation.dataset import Row

    row = Row("q", "问", None, [], ["p00001.txt"], "all", 1, answers=["歐洲"], paragraph="P-B")
    assert relevant(row, "p00001.txt", "在歐洲由德國學者開創")
    assert not relevant(row, "p00001.txt", "德國學者開創")  # its paragraph, but not the part with the answer
    assert not relevant(row, "p00000.txt", "在歐洲")


def _squad_row(**kw):
    from rag.evaluation.dataset import Row

    base = dict(id="x", question="多少天？", answer=None, key_facts=[], gold_docs=["p00000.txt"], topic="all", line=1,
                answers=["47天"], paragraph="P-A")
    return Row(**{**base, **kw})


class _SpanAnswer(Answer):
    """An answer with the ``answer_span`` field another part of the project adds to ``Answer.to_dict()``."""

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "answer_span": {"text": "47天", "start": 18, "end": 21}}


def test_f1_is_on_the_answer_span_when_the_answer_has_one_else_on_the_text():
    text = "蓝风微短剧基地从签约到试运营，仅用时47天。"
    passages = [Passage(Chunk("c1", "p00000.txt", text, 0, len(text)), 1.0, 1)]
    plain = evaluate_row(_squad_row(), Answer("q", text + " [1]", False, [], passages, {"generate_ms": 3.0},
                                              support=0.9), 10.0)
    assert plain["contains"] and plain["f1_source"] == "answer_text" and 0 < plain["span_f1"] < 1
    assert plain["confidence"] == 0.9 and plain["confidence_field"] == "support" and plain["first_relevant_rank"] == 1
    span = evaluate_row(_squad_row(), _SpanAnswer("q", text + " [1]", False, [], passages, {}), 10.0)
    assert span["f1_source"] == "answer_span" and span["span_f1"] == 1.0
    refused = evaluate_row(_squad_row(), Answer("q", "资料中没有找到相关信息。", True, [], passages, {}), 10.0)
    assert not refused["contains"] and refused["span_f1"] == 0.0 and "abstained on an answerable question" in \
        refused["reasons"]
    left_out = evaluate_row(_squad_row(held_out=True, gold_docs=[], topic="left-out"),
                            Answer("q", text, False, [], passages, {}), 10.0)
    assert not left_out["answerable"] and left_out["reasons"] == ["answered an unanswerable question"]


def test_confidence_curve_answered_share_vs_accuracy():
    def r(conf, right, answerable=True, abstained=False):
        return {"confidence": conf, "correct_answer": right, "answerable": answerable, "abstained": abstained}

    results = [r(0.9, True), r(0.8, False), r(0.7, True), r(0.6, True, answerable=False), r(None, False, abstained=True)]
    points = confidence_curve(results, steps=4)
    assert [(p["threshold"], p["n"], p["answered"], p["accuracy"]) for p in points] == [
        (0.9, 1, 0.2, 1.0), (0.8, 2, 0.4, 0.5), (0.7, 3, 0.6, 0.6667), (0.6, 4, 0.8, 0.5)]
    assert confidence_curve([r(None, True)]) == []


# ---- `rag eval tiny.json` end to end --------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("squad")
    tiny = _tiny(tmp / "tiny.json")
    done: dict[str, Any] = {"all": rag("eval", str(tiny), "--json", "--out", str(tmp / "all")),
                            "holdout": rag("eval", str(tiny), "--holdout-every", "2", "--out", str(tmp / "holdout"))}
    # the whole-file index again, now with a hold-out: it holds the left-out paragraph, so it is refused
    done["reuse"] = rag("eval", str(tiny), "--holdout-every", "2", "--index-dir", str(tmp / "all" / "index"))
    yield {**done, "dir": tmp}


@pytest.mark.slow
def test_rag_eval_on_a_squad_file_builds_the_index_and_reports_the_metrics(tiny_runs):
    run: subprocess.CompletedProcess = tiny_runs["all"]
    assert run.returncode == 0, run.stderr
    assert "skipped tiny.json data[1].paragraphs[0].qas[1]: empty question" in run.stderr
    s = json.loads(run.stdout)
    assert s["n"] == 5 and s["run"]["paragraphs"] == 3 and s["run"]["indexed_paragraphs"] == 3
    assert s["retrieval"]["n"] == 5 and s["retrieval"]["hit@k"] == 1.0  # three one-chunk documents, top 5
    assert s["span"]["n"] == 5 and 0 <= s["span"]["contains"] <= 1 and 0 <= s["span"]["span_f1"] <= 1
    assert s["span"]["f1_source"] in ("answer_span", "answer_text") or s["span"]["f1_source"].startswith("mixed")
    assert s["abstention"]["n_answerable"] == 5 and s["abstention"]["n_unanswerable"] == 0
    assert set(s["stages_ms"]) == {"retrieve", "generate"} and s["stages_ms"]["generate"]["p95"] > 0
    assert "points" in s["confidence_curve"]
    out = tiny_runs["dir"] / "all"
    assert sorted(p.name for p in (out / "paragraphs").iterdir()) == ["p00000.txt", "p00001.txt", "p00002.txt"]
    results = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["id"]: r["gold_answers"] for r in results}["a1"] == ["47天"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "span F1" in html and "Answered share vs accuracy" in html and "answer stage p95" in html


@pytest.mark.slow
def test_holdout_every_2_reports_the_two_groups_apart(tiny_runs):
    run = tiny_runs["holdout"]
    assert run.returncode == 0, run.stderr
    s = json.loads((tiny_runs["dir"] / "holdout" / "summary.json").read_text(encoding="utf-8"))
    assert s["run"]["holdout_every"] == 2 and s["run"]["indexed_paragraphs"] == 2
    assert set(s["by_topic"]) == {"kept", "left-out"}
    kept, left = s["by_topic"]["kept"], s["by_topic"]["left-out"]
    assert kept["n"] == 3 and kept["span"]["n"] == 3 and kept["retrieval"]["n"] == 3
    assert left["n"] == 2 and left["abstention"]["n_unanswerable"] == 2 and left["span"]["n"] == 0
    assert left["retrieval"]["n"] == 0  # nothing to find: their paragraph is not in the index
    assert sorted(p.name for p in (tiny_runs["dir"] / "holdout" / "paragraphs").iterdir()) == ["p00000.txt",
                                                                                                "p00002.txt"]
    assert "kept: 3 questions" in run.stdout and "left-out: 2 questions" in run.stdout


@pytest.mark.slow
def test_an_existing_index_holding_left_out_paragraphs_is_refused(tiny_runs):
    run = tiny_runs["reuse"]
    assert run.returncode == 2 and "holds 1 of the left-out paragraphs (e.g. p00001.txt)" in run.stderr


def test_the_report_draws_the_curve_and_escapes(tmp_path):
    summary = {"n": 1, "confidence_curve": {"field": "support", "points": [
        {"threshold": 0.5, "n": 1, "answered": 1.0, "accuracy": 1.0}]}, "run": {"dataset": "<b>x</b>"}}
    html = render_html(summary, [])
    assert html.count("<svg") == 1 and "support ≥" in html and "<b>x</b>" not in html  # no topics, no latencies
