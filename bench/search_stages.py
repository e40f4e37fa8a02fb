"""Where one ``RAG.search`` spends its time, stage by stage, timed without a profiler's overhead.

    python bench/search_stages.py WORK_DIR [--questions 270]

``WORK_DIR`` holds ``index/`` and ``queries.json`` (``bench/scale.py``'s or ``bench/update.py``'s folders).
After 20 warm-up questions, each question is searched once (hybrid, top 5, the real question embedding)
with a clock around the store's calls (dense, BM25, chunk reads, cosines), the embedding, the fusion and
the exact-match boost. Printed per stage: p50, p95, mean, and the mean over the slowest tenth of the
searches (what the tail is made of).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import rag.retrieval.retrieve as retrieve_module
from rag import RAG
from rag.storage.store import search_store

WARMUP = 20
STAGES = ("total", "embed", "dense", "lexical", "chunks", "cosines", "_fuse", "_boost_exact")


def _clock(owner, name: str, spent: dict[str, float]) -> None:
    inner = getattr(owner, name)

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - t0

    setattr(owner, name, timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path)
    ap.add_argument("--questions", type=int, default=270)
    args = ap.parse_args()
    rag = RAG.open(args.work / "index", progress=False)
    spent: dict[str, float] = collections.defaultdict(float)
    store_type = type(search_store(rag.state))
    for name in ("dense", "lexical", "chunks", "cosines"):
        _clock(store_type, name, spent)
    _clock(retrieve_module, "_fuse", spent)
    _clock(retrieve_module, "_boost_exact", spent)
    embed = rag.embedder.embed_queries

    def embed_timed(texts):
        t0 = time.perf_counter()
        try:
            return embed(texts)
        finally:
            spent["embed"] += time.perf_counter() - t0

    rag.embedder.embed_queries = embed_timed
    texts = json.loads((args.work / "queries.json").read_text(encoding="utf-8"))["texts"]
    for t in texts[:WARMUP]:
        rag.search(t, top_k=5)
    rows = []
    for t in texts[WARMUP : WARMUP + args.questions]:
        spent.clear()
        t0 = time.perf_counter()
        rag.search(t, top_k=5)
        rows.append(dict(spent, total=time.perf_counter() - t0))
    total = np.array([r["total"] for r in rows])
    slow = total >= np.percentile(total, 90)
    print(f"{rag.size:,} chunks, {len(rows)} questions, load average {os.getloadavg()[0]:.1f}")
    print("| stage | p50 ms | p95 ms | mean ms | mean in the slowest tenth, ms |\n| --- | --- | --- | --- | --- |")
    for stage in STAGES:
        v = np.array([r.get(stage, 0.0) for r in rows]) * 1000
        print(f"| {stage.lstrip('_')} | {np.median(v):.2f} | {np.percentile(v, 95):.2f} | {v.mean():.2f} | "
              f"{v[slow].mean():.2f} |")


if __name__ == "__main__":
    main()
