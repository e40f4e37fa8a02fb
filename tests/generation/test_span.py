"""The exact answer span: the learned scorer (rag/generation/span.json) and the rules it falls back to."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.generation import span as span_mod
from rag.generation.span import FEATURES, MODEL_PATH, answer_span, candidates, load_model, rule_span
from rag.text.normalize import fold_script


def test_the_shipped_model_matches_the_feature_schema():
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    assert data["features"] == list(FEATURES)
    assert len(data["mean"]) == len(data["std"]) == len(data["coef"]) == len(FEATURES)
    assert all(np.isfinite(data["coef"])) and min(data["std"]) > 0
    assert load_model() is not None
    # its cross-validated figures are recorded beside the weights
    assert all(0 < r["f1"] <= 100 for r in data["cv"].values())


def test_a_model_for_another_feature_list_is_refused_and_the_rules_answer(tmp_path, monkeypatch):
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    data["features"] = data["features"][:-2] + ["something_else", "bias"]
    bad = tmp_path / "span.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    assert load_model(str(bad)) is None
    assert load_model(str(tmp_path / "missing.json")) is None
    monkeypatch.setattr(span_mod, "load_model", lambda: None)
    q, s = "他是哪一年出生的？", "陈明于1963年出生于长沙。"
    assert answer_span(q, s) == rule_span(q, s)


def test_candidates_have_one_feature_row_each_with_valid_offsets():
    sentence = "1988年被聯合國教科文組織列為世界文化遺產，這也是首次有一個城市獲此榮譽。"
    cand, X = candidates("史特拉斯堡大教堂被哪個單位列為世界文化遺產?", sentence)
    assert X.shape == (len(cand), len(FEATURES)) and len(set(cand)) == len(cand)
    assert all(0 <= s < e <= len(sentence) for s, e in cand)
    assert (0, len(sentence)) in cand  # the whole sentence is always a candidate
    assert np.all(X[:, FEATURES.index("bias")] == 1.0)


@pytest.mark.parametrize(("question", "sentence", "span"), [
    # the question's pattern around its interrogative: 被哪個單位列為 ↔ 被…列為
    ("史特拉斯堡大教堂與小法蘭西被哪個單位列為世界文化遺產?",
     "包括史特拉斯堡大教堂與小法蘭西，1988年被聯合國教科文組織列為世界文化遺產，這也是首次有一個城市的整個市中心區域獲此榮譽。",
     "聯合國教科文組織"),
    ("《小和尚一家親》是誰的作品?", "隨著漫畫及動畫越來越風行，更除了佛教漫畫，豐子愷的《護生畫集》被視為鼻祖，"
     "蔡志忠的連續佛教漫畫也佔了一席位，其他還有李百智的動畫《小和尚一家親》。", "李百智"),
    # a question asking for a description gets the clauses, not a word of them
    ("塞内加尔国徽的图案是怎样的？", "塞内加尔国徽（）由一个侧面靠著棕榈枝条的盾、一枚勋章以及一个在最上方的绿色五角星组成，"
     "其中盾内的物件包含一只位于左半边的狮子和一棵位于右方的猴面包树。",
     "塞内加尔国徽（）由一个侧面靠著棕榈枝条的盾、一枚勋章以及一个在最上方的绿色五角星组成，"
     "其中盾内的物件包含一只位于左半边的狮子和一棵位于右方的猴面包树"),
    ("史都華在哪一年獲頒奧斯卡終身成就獎?", "1985年，當史都華得到奧斯卡終身成就獎時，曾對當時還健在的卡普拉表示感謝。", "1985年"),
    ("蓝风微短剧基地从签约到试运营用了多少天？", "从签约到试运营,仅用时47天,如今,蓝风微短剧基地已建成60多个实景棚。", "47天"),
])
def test_the_learned_span(question, sentence, span):
    s, e = answer_span(question, sentence)
    assert sentence[s:e] == span


def test_traditional_and_simplified_give_the_same_span():
    q = "邊防派出所是哪一個部隊設置的單位?"
    sentence = "公安邊防部隊沿海設邊防檢查站、邊防派出所、二線檢查站、海警部隊等，主要負責沿海地區的治安管理。"
    simplified = fold_script(sentence)
    assert len(simplified) == len(sentence) and simplified != sentence
    assert answer_span(q, sentence) == answer_span(fold_script(q), simplified)


@pytest.mark.parametrize("sentence", ["", "   ", "。。", "abc", "Hello world, 2024.", "（）", "他。", "１２３４年"])
def test_offsets_stay_inside_any_sentence(sentence):
    s, e = answer_span("什么时候？", sentence)
    assert 0 <= s <= e <= len(sentence)
    if sentence.strip():
        assert e > s


def test_the_trainer_is_deterministic():
    from rag.training.span_train import fit_listwise

    rng = np.random.default_rng(3)
    data = []
    for _ in range(20):
        X = rng.normal(size=(6, len(FEATURES)))
        X[:, FEATURES.index("bias")] = 1.0
        y = np.zeros(6)
        y[int(np.argmax(X[:, 0]))] = 1.0
        data.append((X, y, [(i, i + 1) for i in range(6)]))
    a, b = fit_listwise(data, 1e-2), fit_listwise(data, 1e-2)
    assert a["coef"] == b["coef"]
    assert a["coef"][0] / a["std"][0] > 0  # it learns that feature 0 marks the answer
