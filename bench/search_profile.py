"""Where one ``RAG.search`` spends its time on a large index: latency percentiles and a cProfile of the calls.

    python bench/search_profile.py WORK_DIR [--queries 90] [--top N]

``WORK_DIR`` is an index folder made by ``bench/update.py``/``bench/scale.py`` (``ensure_built``: e.g.
``/tmp/scale/segments-1000000``, holding ``index/`` and ``queries.json``). After 20 warm-up questions, three
sets of ``--queries`` other questions, each question seen once (the embedder remembers a question it embedded):
the first searched one at a time and timed (hybrid retrieval, the real question embedding, top 5: p50/p95),
the second searched under cProfile, the third embedded and searched by BM25 alone, each timed (p50/p95). Printed then: the
``--top`` functions by cumulative time over the profiled set (divide by ``--queries`` for the per-question share;
``SORT=tottime`` in the environment sorts them by their own time instead).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from rag import RAG
from rag.storage.store import search_store

WARMUP = 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path)
    ap.add_argument("--queries", type=int, default=90, help="questions per set (three sets)")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    rag = RAG.open(args.work / "index", progress=False)
    texts = json.loads((args.work / "queries.json").read_text(encoding="utf-8"))["texts"]
    # Three sets of questions, each seen once: the embedder remembers a question it embedded (rag.embedding.
    # batching.Memo), so a question timed twice would cost nothing the second time
    n = args.queries
    timed, profiled, embedded = (texts[WARMUP + i * n : WARMUP + (i + 1) * n] for i in range(3))
    for t in texts[:WARMUP]:
        rag.search(t, top_k=5)
    times = []
    for t in timed:
        t0 = time.perf_counter()
        rag.search(t, top_k=5)
        times.append((time.perf_counter() - t0) * 1000)
    profile = cProfile.Profile()
    for t in profiled:
        profile.enable()
        rag.search(t, top_k=5)
        profile.disable()
    embed, lexical = [], []
    store = search_store(rag.state)
    for t in embedded:
        t0 = time.perf_counter()
        rag.embedder.embed_queries([t])
        embed.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        store.lexical(t, 100, None)  # BM25 alone, as the retriever asks it (its 100 candidates)
        lexical.append((time.perf_counter() - t0) * 1000)
    print(f"{rag.size:,} chunks, {len(timed)} + {len(profiled)} + {len(embedded)} questions, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"RAG.search p50 {statistics.median(times):.1f} ms, p95 {np.percentile(times, 95):.1f} ms (not profiled)")
    if embed:
        print(f"question embedding alone p50 {statistics.median(embed):.1f} ms, p95 {np.percentile(embed, 95):.1f} ms")
        print(f"BM25 alone (store.lexical, k=100) p50 {statistics.median(lexical):.1f} ms, "
              f"p95 {np.percentile(lexical, 95):.1f} ms")
    pstats.Stats(profile).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(args.top)


if __name__ == "__main__":
    main()
