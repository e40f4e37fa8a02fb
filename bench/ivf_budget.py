"""Recall and time of the dense search on a segmented index, by the shared IVF list budget's multiplier.

    python bench/ivf_budget.py WORK_DIR [--questions 100] [--multipliers 1,2,3,4,7]

``WORK_DIR`` holds ``index/`` and ``query_vectors.npy`` (``bench/scale.py``'s folders, e.g.
``WORK/segments-10000000-stream``). The unfiltered IVF segments probe ``nprobe x multiplier`` lists
together (``rag.storage.segments.index.shared_lists``; the code's own multiplier is the cube root of
the segment count, printed as "code"). For each multiplier: recall@10 of ``store.dense(q, 100)`` against
exact search over the stored float16 vectors, and the search's p50/p95.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.scale import kth_of_index
from rag import RAG
from rag.storage.segments import index as segments_index
from rag.storage.store import search_store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path)
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--multipliers", default="1,2,3,4,7")
    args = ap.parse_args()
    rag = RAG.open(args.work / "index", progress=False)
    store = search_store(rag.state)
    qv = np.load(args.work / "query_vectors.npy")[: args.questions].astype(np.float32)
    kth = kth_of_index(args.work / "index", qv)  # the same exact search as bench/scale.py's recall
    code = segments_index.shared_lists
    print(f"{rag.size:,} chunks, {len(store.segments)} segments, {len(qv)} questions")
    print("| multiplier | recall@10 | p50 ms | p95 ms |\n| --- | --- | --- | --- |")
    for m in ["code", *args.multipliers.split(",")]:
        segments_index.shared_lists = code if m == "code" else (lambda nprobe, _n, m=int(m): nprobe * m)
        hits, times = 0, []
        for q, t in zip(qv, kth):
            t0 = time.perf_counter()
            found = store.dense(q, 100, None)[:10]
            times.append((time.perf_counter() - t0) * 1000)
            hits += sum(v >= t - 1e-5 for v in store.cosines([key for key, _ in found], q).values())
        print(f"| {m} | {hits / (10 * len(qv)):.3f} | {np.median(times):.1f} | {np.percentile(times, 95):.1f} |")
    segments_index.shared_lists = code


if __name__ == "__main__":
    main()
