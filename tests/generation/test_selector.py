"""The learned answer selector: trained on a small slice it ranks gold sentences first on held-back
questions; the shipped model matches the code's features; traditional questions are answered."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED_DATA

from rag.generation.features import FEATURES, question_type
from rag.generation.selector import MODEL_PATH, Selector, default_selector
from rag.generation.span import answer_span
from rag.generation.train import build_indexes, collect, featurize, fit_logistic, load_squad, logit_of


def test_the_shipped_model_is_data_only_and_matches_the_features():
    model = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    assert model["features"] == list(FEATURES)
    assert len(model["selector"]["coef"]) == len(FEATURES) == len(model["selector"]["mean"])
    assert len(model["answerability"]["coef"]) == len(model["answerability"]["features"])
    assert 0.0 < model["threshold"] < 1.0
    assert MODEL_PATH.stat().st_size < 25_000_000
    assert default_selector().threshold == model["threshold"]


def test_a_model_of_other_features_is_refused():
    from rag.errors import ConfigError

    model = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    model["features"] = model["features"][:-1]
    with pytest.raises(ConfigError, match="retrain"):
        Selector(model)


def test_training_on_a_slice_ranks_gold_first_on_held_back_questions(tmp_path):
    paragraphs, questions = load_squad(SHARED_DATA / "cmrc2018-trial.json")
    questions = questions[:60]
    paragraphs = paragraphs[: max(q["pi"] for q in questions) + 1]
    full, _ = build_indexes("slice", paragraphs, tmp_path)
    qs = featurize(collect(full, questions, tmp_path / "rows.json"), [True] * len(questions))
    train = [q for q in qs if q["row"]["pi"] % 3 != 0 and len(q["cands"])]
    held = [q for q in qs if q["row"]["pi"] % 3 == 0 and q["y"].any()]
    assert len(train) > 20 and len(held) > 5
    model = fit_logistic(np.vstack([q["X"] for q in train]), np.concatenate([q["y"] for q in train]))
    hits = [q["y"][int(np.argmax(logit_of(model, q["X"])))] for q in held]
    chance = np.mean([q["y"].mean() for q in held])
    assert np.mean(hits) > max(2 * chance, 0.4), (np.mean(hits), chance)
    # Deterministic: the same data gives the same weights.
    again = fit_logistic(np.vstack([q["X"] for q in train]), np.concatenate([q["y"] for q in train]))
    assert again["coef"] == model["coef"]


@pytest.mark.parametrize(("question", "kind"), [
    ("誰發明了電話？", "who"), ("谁是董事长？", "who"), ("臺北有幾個區？", "num"), ("这座桥有多少米长？", "num"),
    ("他何時出生？", "when"), ("哪一年建成？", "when"), ("總部位於哪裡？", "where"), ("这是什么东西？", "what"),
    ("為什麼會下雨？", "why"),
])
def test_question_types_in_both_scripts(question, kind):
    assert question_type(question) == kind


@pytest.mark.parametrize(("question", "sentence", "span"), [
    ("蓝风微短剧基地从签约到试运营用了多少天？", "从签约到试运营,仅用时47天,如今,蓝风微短剧基地已建成60多个实景棚。", "47天"),
    ("他是哪一年出生的？", "陈明于1963年出生于长沙。", "1963年"),
    ("機場有幾條跑道？", "機場有三條跑道，主跑道是08/26。", "三條"),
])
def test_the_exact_span_by_question_type(question, sentence, span):
    s, e = answer_span(question, sentence)
    assert sentence[s:e] == span


def test_a_traditional_question_is_answered_with_its_span(seed_rag):
    a = seed_rag.ask("藍風微短劇基地從簽約到試運營用了幾天？")
    assert not a.abstained, a.answer
    assert "47天" in a.answer and a.answer_span and "47" in a.answer_span["text"]
    d = a.to_dict()
    assert 0.0 <= d["confidence"] <= 1.0 and d["answer_span"]["text"] == a.answer_span["text"]
    a2 = seed_rag.ask("天心經開區的數字矩陣包括什麼？")
    assert not a2.abstained, a2.answer


def test_the_answer_span_points_into_the_source_and_is_bold_in_the_quote(seed_rag, seed_text):
    from ui.render import answer_html

    a = seed_rag.ask("蓝风微短剧基地从签约到试运营用了多少天？")
    span = a.answer_span
    assert span and span["text"] == "47天"
    assert seed_text[span["start"] : span["end"]] == "47天"
    assert any(c.start <= span["start"] and span["end"] <= c.end for c in a.citations)
    assert '<strong class="rag-answer-span">47天</strong>' in answer_html(a)
