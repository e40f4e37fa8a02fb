"""The learned answer selector: trained on a small slice it ranks gold sentences first on held-back
questions; the shipped model matches the code's features; traditional questions are answered."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import shared_data

from rag.generation.features import FEATURES, question_type
from rag.generation.selector import MODEL_PATH, Selector, default_selector
from rag.generation.span import answer_span
from rag.training.train import build_indexes, collect, featurize, fit_selector, load_squad, score_of


def test_the_shipped_model_is_data_only_and_matches_the_features():
    model = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    assert model["features"] == list(FEATURES)
    assert model["selector"]["kind"] == "trees" and model["selector"]["trees"]
    used = {f for tree in model["selector"]["trees"] for f in tree["feature"]}
    assert max(used) < len(FEATURES) and min(used) == -1  # feature numbers of this schema, and leaves
    stage2 = {f for tree in model["answerability"]["trees"] for f in tree["feature"]}
    assert max(stage2) < len(model["answerability"]["features"])
    assert 0.0 < model["threshold"] < 1.0
    assert MODEL_PATH.stat().st_size < 25_000_000
    assert default_selector().threshold == model["threshold"]


def test_a_model_of_other_features_is_refused():
    from rag.errors import ConfigError

    model = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    model["features"] = model["features"][:-1]
    with pytest.raises(ConfigError, match="retrain"):
        Selector(model)


@pytest.mark.train
def test_training_on_a_slice_ranks_gold_first_on_held_back_questions(tmp_path):
    paragraphs, questions = load_squad(shared_data("cmrc2018-trial.json"))
    questions = questions[:60]
    paragraphs = paragraphs[: max(q["pi"] for q in questions) + 1]
    full, _ = build_indexes("slice", paragraphs, tmp_path)
    qs = featurize(collect(full, questions, tmp_path / "rows.json"), [True] * len(questions))
    train = [q for q in qs if q["row"]["pi"] % 3 != 0 and len(q["cands"])]
    held = [q for q in qs if q["row"]["pi"] % 3 == 0 and q["y"].any()]
    assert len(train) > 20 and len(held) > 5
    model = fit_selector(np.vstack([q["X"] for q in train]), np.concatenate([q["y"] for q in train]))
    hits = [q["y"][int(np.argmax(score_of(model, q["X"])))] for q in held]
    chance = np.mean([q["y"].mean() for q in held])
    assert np.mean(hits) > max(2 * chance, 0.4), (np.mean(hits), chance)
    # Deterministic: the same data gives the same weights.
    again = fit_selector(np.vstack([q["X"] for q in train]), np.concatenate([q["y"] for q in train]))
    assert again == model
    shipped = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    logits = Selector({**shipped, "selector": model}).rank(held[0]["cands"])  # the answering side reads it alike
    assert np.allclose(logits, score_of(model, held[0]["X"]))


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


@pytest.mark.slow
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


def test_two_adjacent_sentences_are_one_candidate_too():
    from rag.generation.features import candidates
    from rag.types import Chunk, Passage

    text = "长沙有一座古老的书院。它建于公元976年，是四大书院之一。"
    chunk = Chunk(chunk_id="c0", doc_id="d.txt", text=text, start=0, end=len(text))
    cands = candidates("长沙的古老书院建于哪一年？", [Passage(chunk, 1.0, 1, 0.9, 3.0)], lambda t: 1.0)
    spans = [(c.start, c.end, c.index, c.last) for c in cands]
    assert (0, len(text), 0, 1) in spans  # the pair: the question's words in one, the year in the next
    assert all(text[c.start : c.end] == c.text and len(c.x) == len(FEATURES) for c in cands)
    assert sum(c.last > c.index for c in cands) == 1


@pytest.mark.train
def test_rag_train_answerer_trains_a_loadable_model_and_refuses_bad_input(tmp_path):
    from cli_runner import rag

    out = tmp_path / "model.json"
    r = rag("train-answerer", str(shared_data("cmrc2018-trial.json")), "--limit", "50", "--folds", "2",
            "--cache", str(tmp_path / "cache"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "top-1 sentence accuracy" in r.stdout
    assert "skipped: cmrc2018-trial.json data[188].paragraphs[0].qas[4]: empty question" in r.stdout  # named, as by rag eval
    model = Selector.load(out)  # the shipped format: it loads, with a threshold chosen on held-back data
    assert model.model["features"] == list(FEATURES) and 0.0 < model.threshold < 1.0
    assert model.model["cv"]["folds"] == 2 and model.model["trained_on"][0] == "cmrc2018-trial.json"
    bad = rag("train-answerer", str(tmp_path / "missing.json"), "--out", str(out))
    assert bad.returncode == 2 and "no such question set" in bad.stderr
    assert Selector.load(out).threshold == model.threshold  # the model written before is untouched


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read the answer selector model"),
    ("{broken", "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"features": FEATURES}', "KeyError"),
])
def test_a_bad_answerer_model_is_refused_at_open_with_the_file_named(tmp_path, seed_index, monkeypatch, content, message):
    from cli_runner import rag

    from rag import RAG
    from rag.errors import ConfigError

    path = tmp_path / "model.json"
    if content is not None:
        path.write_text(content.replace("FEATURES", json.dumps(list(FEATURES))), encoding="utf-8")
    monkeypatch.setenv("RAG_ANSWERER", str(path))
    with pytest.raises(ConfigError, match=message) as exc:
        RAG.open(seed_index, progress=False)
    assert str(path) in str(exc.value)
    if content is None:  # the CLI: one line, exit 2
        r = rag("ask", "--index-dir", str(seed_index), "天心经开区有多少家高新技术企业？")
        assert r.returncode == 2 and r.stderr.startswith("error: cannot read the answer selector model")
        assert "Traceback" not in r.stderr


def test_the_selector_remembers_a_candidate_set_it_ranked(monkeypatch):
    """The same candidates again (a question asked again): the same logits, the forest not walked again;
    other candidates are scored afresh."""
    from rag.generation.features import Candidate

    sel = Selector(json.loads(MODEL_PATH.read_text(encoding="utf-8")))
    rng = np.random.default_rng(0)

    def cands(seed_rows):
        return [Candidate(n=1, start=0, end=1, text=f"s{i}", index=i, x=list(row)) for i, row in enumerate(seed_rows)]

    X = rng.random((6, len(FEATURES)))
    walks = []
    real = sel.selector.logit
    monkeypatch.setattr(sel.selector, "logit", lambda m: walks.append(len(m)) or real(m))
    first = sel.rank(cands(X))
    again = cands(X)
    assert sel.rank(again).tobytes() == first.tobytes() and walks == [6]
    assert [c.score for c in again] == first.tolist()  # each candidate's score set from the remembered logits
    other = X.copy()
    other[2, 0] += 1e-12
    sel.rank(cands(other))
    assert walks == [6, 6]
