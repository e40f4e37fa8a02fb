"""Where one ``RAG.search`` spends its time on a large index: latency percentiles and a cProfile of the calls.

    python bench/search_profile.py WORK_DIR [--queries 150] [--top N]

``WORK_DIR`` is an index folder made by ``bench/update.py``/``bench/scale.py`` (``ensure_built``: e.g.
``/tmp/scale/segments-1000000``, holding ``index/`` and ``queries.json``). After 20 warm-up questions,
each question is searched once under the profiler (hybrid retrieval, the real question embedding, top 5),
then embedded alone: printed are search p50/p95, the embedding's p50/p95, and the ``--top`` functions by
cumulative time (divide by ``--queries`` for the per-question share). cProfile adds its own overhead to
Python-heavy parts; the percentiles are measured around the profiled calls, so read them as upper bounds.
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

WARMUP = 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path)
    ap.add_argument("--queries", type=int, default=150)
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    rag = RAG.open(args.work / "index", progress=False)
    texts = json.loads((args.work / "queries.json").read_text(encoding="utf-8"))["texts"]
    asked = texts[WARMUP:WARMUP + args.queries]
    for t in texts[:WARMUP]:
        rag.search(t, top_k=5)
    profile, times = cProfile.Profile(), []
    for t in asked:
        t0 = time.perf_counter()
        profile.enable()
        rag.search(t, top_k=5)
        profile.disable()
        times.append((time.perf_counter() - t0) * 1000)
    embed = []
    for t in asked:
        t0 = time.perf_counter()
        rag.embedder.embed_queries([t])
        embed.append((time.perf_counter() - t0) * 1000)
    print(f"{rag.size:,} chunks, {len(asked)} questions, load average {os.getloadavg()[0]:.1f}")
    print(f"RAG.search p50 {statistics.median(times):.1f} ms, p95 {np.percentile(times, 95):.1f} ms")
    print(f"question embedding alone p50 {statistics.median(embed):.1f} ms, p95 {np.percentile(embed, 95):.1f} ms")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
