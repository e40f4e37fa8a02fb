"""bench/int8.py, the int8 experiment judged on retrieval: its calibration never touches the texts it is
judged on, its verdict is the 0.005 rule, and its int8 engine really is a quantised model close to bf16."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import int8 as bench
from rag.evaluation.dataset import load_dataset


@pytest.fixture(scope="module")
def evaluation_text() -> str:
    """Every paragraph and question of the two open-domain sets, and the seed questions."""
    parts = []
    for name in ("cmrc", "drcd"):
        ds = load_dataset(bench.SETS[name])
        parts += [p.context for p in ds.paragraphs] + [r.question for r in ds.rows]
    parts += [r.question for r in load_dataset(bench.SETS["seed"]).rows]
    return "\n".join(parts)


def _bare(texts: list[str]) -> list[str]:
    return [t.removeprefix("passage: ").removeprefix("query: ") for t in texts]


@pytest.mark.shared_data("cmrc2018-trial.json", "drcd-dev.json", "seed-dev.jsonl", "news-distractors-dev.jsonl")
@pytest.mark.slow
def test_calibration_texts_are_not_what_is_evaluated(evaluation_text):
    news = _bare(bench.calibration("news", "query: ", "passage: "))
    assert len(news) >= 150 and all(news)
    assert not [t for t in news if t in evaluation_text]
    builtin = bench.CALIBRATION["passage"] + bench.CALIBRATION["query"]
    assert not [t for t in builtin if t in evaluation_text]
    # seed-dev's index holds seeds/ and the distractors: its calibration (CMRC) must be in neither
    cmrc = _bare(bench.calibration("cmrc", "query: ", "passage: "))
    with bench.DEFAULT_DISTRACTORS.open(encoding="utf-8") as f:
        seed_index_text = "\n".join(json.loads(line)["text"] for line in f)
    seed_index_text += "\n".join(p.read_text(encoding="utf-8") for p in (bench.ROOT / "seeds").glob("*.txt"))
    assert cmrc and not [t for t in cmrc if len(t) > 8 and t in seed_index_text]


@pytest.mark.shared_data("cmrc2018-trial.json")
def test_limit_keeps_the_questions_of_the_kept_paragraphs_only():
    ds = bench.limited(load_dataset(bench.SETS["cmrc"]), 5)
    kept = {p.doc_id for p in ds.paragraphs}
    assert len(kept) == 5 and ds.rows and {r.gold_docs[0] for r in ds.rows} <= kept


def _set(**pairs: tuple[float, float]) -> dict:
    results = {tuple(k.split("_")): {"hybrid": v, "dense": v} for k, v in pairs.items()}
    return {"name": "x", "chunks": 1, "questions": 1000, "calibration": "news", "results": results,
            "speed": {"bf16": 1.0, "bf16 again": 1.0, "int8": 1.5}, "cos_p": (1, 1), "cos_q": (1, 1)}


def test_the_verdict_is_the_0005_rule(capsys):
    base = (0.717, 0.911)
    ok = _set(bf16_bf16=base, bf16_int8=(0.712, 0.911), int8_bf16=(0.722, 0.906), int8_int8=base)
    assert bench.report([ok]) is True  # 5 questions in 1,000 either way is within
    worse = _set(bf16_bf16=base, bf16_int8=base, int8_bf16=base, int8_int8=(0.711, 0.911))
    assert bench.report([worse]) is False
    assert "FAIL (worse)" in capsys.readouterr().out
    better = _set(bf16_bf16=base, bf16_int8=base, int8_bf16=base, int8_int8=(0.717, 0.917))
    assert bench.report([better]) is False
    out = capsys.readouterr().out
    assert "FAIL (better)" in out and "more than 0.005 below bf16/bf16: PASS" in out


@pytest.mark.slow
def test_the_int8_engine_is_quantised_and_close_to_bf16(seed_text):
    pytest.importorskip("nncf")
    model_dir = bench.ensure_default_model()
    int8 = bench.int8_embedder(model_dir, None, tag="builtin")  # made once, then cached
    xml = bench.int8_model(bench.read_model_config(model_dir), [int8.passage_prompt + t for t in bench.CALIBRATION[
        "passage"]] + [int8.query_prompt + t for t in bench.CALIBRATION["query"]], tag="builtin")
    assert "FakeQuantize" in xml.read_text() or 'element_type="i8"' in xml.read_text()
    bf16 = bench.OpenVINOEmbedder(model_dir, name="e5")
    texts = [seed_text[i : i + 300] for i in range(0, 4500, 300)]
    p8, pb = int8.embed_passages(texts), bf16.embed_passages(texts)
    cos = (p8 * pb).sum(1)
    assert cos.min() >= 0.98 and cos.mean() >= 0.995, cos  # measured min 0.99, mean 0.998 on the sets
    assert not np.allclose(p8, pb, atol=1e-3)  # another model really ran, not bf16 again
    assert ((p8 @ pb.T).argmax(1) == np.arange(len(texts))).all()  # each passage still finds itself
