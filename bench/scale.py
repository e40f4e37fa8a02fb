"""Memory, disk and query time at scale: the segmented index next to today's FAISS snapshot, same chunks, same run.

    python bench/scale.py [--chunks 1000000] [--queries 300] [--work DIR]

The indexes are bench/synth_index.py's (reused from ``--work`` when bench/update.py built them
there): synthetic texts and BM25 terms, FAKE vectors, 10 chunks a document. Each index is then
served in a fresh process: ``RAG.open``, then ``RAG.search(question, top_k=5)`` for each synthetic
question one at a time, the real question embedding included (hybrid retrieval, the default),
after 20 warm-up questions. Printed per index: build seconds and peak RSS (its own process), disk
bytes per chunk, serving RSS per chunk (VmRSS after the questions; the embedding model included),
query p50/p95, the question embedding's own p50, and recall@10 of the dense retriever against exact
search over the float32 vectors.

Targets at 1M (issue 17): serving RSS <= 1.5 KB per chunk, disk <= 2.5 KB per chunk, build peak
<= 4 GB, recall@10 >= 0.95, query p95 <= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

from bench.update import STORES, ensure_built, log

WARMUP = 20


def vm_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve(work: Path, m: int) -> dict:
    """Runs in its own process: open the index in ``work``, ask the questions, return the figures."""
    from rag import RAG
    from rag.storage.store import search_store

    t0 = time.perf_counter()
    rag = RAG.open(work / "index", progress=False)
    out: dict = {"open_s": time.perf_counter() - t0}
    q = json.loads((work / "queries.json").read_text(encoding="utf-8"))
    texts = q["texts"][: m + WARMUP]
    for t in texts[:WARMUP]:
        rag.search(t, top_k=5)
    times, embed = [], []
    for t in texts[WARMUP:]:
        t0 = time.perf_counter()
        rag.search(t, top_k=5)
        times.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        rag.embedder.embed_queries(["问：" + t])  # not t itself: the embedder remembers the question just searched
        embed.append((time.perf_counter() - t0) * 1000)
    qv = np.load(work / "query_vectors.npy")[:100]
    store = search_store(rag.state)
    found = [[k for k, _ in store.dense(v, 10, None)] for v in qv]
    out |= {"p50_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95)),
            "embed_p50_ms": statistics.median(embed), "serving_rss_mib": vm_rss_mib(),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "found": found,
            "chunks": rag.size}
    return out


def recall(work: Path, found: list[list[int]]) -> float:
    """Share of the dense top-10 that scores at least the exact 10th score (ties count), by exact search."""
    from rag.storage.vectors import exact_top

    x = np.load(work / "vectors.npy", mmap_mode="r")
    qv = np.load(work / "query_vectors.npy")[: len(found)]
    kth = exact_top(np.asarray(x), qv, 10)[0][:, -1]
    hits = total = 0
    for q, ids, t in zip(qv, found, kth):
        sims = np.asarray(x[np.array(ids, np.int64)], np.float32) @ q if ids else np.zeros(0)
        hits += int((sims >= t - 1e-5).sum())
        total += 10
    return hits / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(serve(args.child, args.queries)))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="rag-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    n = args.chunks
    rows = {}
    for store in STORES:
        build = ensure_built(n, store, work)
        log(f"serving {store} ({n:,} chunks)")
        res = subprocess.run([sys.executable, __file__, "--child", str(work / f"{store}-{n}"), "--queries",
                              str(args.queries)], capture_output=True, text=True, check=False)
        if res.returncode:
            raise SystemExit(f"serving {store} failed:\n{res.stderr[-3000:]}")
        served = json.loads(res.stdout.strip().splitlines()[-1])
        served["recall@10"] = recall(work / f"{store}-{n}", served.pop("found"))
        rows[store] = build | served
    b, o = rows["faiss"], rows["segments"]
    kb = lambda mib: mib * 1024 * 1024 / n / 1000  # noqa: E731 - MiB over n chunks, in KB per chunk
    lines = [
        ("build, s", b["build_s"], o["build_s"], None),
        ("build peak RSS, GB", b["build_peak_rss_mib"] / 1024, o["build_peak_rss_mib"] / 1024, ("<=", 4.0)),
        ("disk, KB per chunk", b["disk_per_chunk"] / 1000, o["disk_per_chunk"] / 1000, ("<=", 2.5)),
        ("open, s", b["open_s"], o["open_s"], None),
        ("serving RSS, KB per chunk", kb(b["serving_rss_mib"]), kb(o["serving_rss_mib"]), ("<=", 1.5)),
        ("query p50, ms", b["p50_ms"], o["p50_ms"], None),
        ("query p95, ms", b["p95_ms"], o["p95_ms"], ("<=", 20.0)),
        ("question embedding p50, ms", b["embed_p50_ms"], o["embed_p50_ms"], None),
        ("dense recall@10 vs exact", b["recall@10"], o["recall@10"], (">=", 0.95)),
    ]
    print(f"\n{n:,} synthetic chunks ({b['mean_chars']:.0f} characters each on average), {args.queries} questions")
    print("| | today: FAISS snapshot (baseline) | segments (ours) | ours / baseline | target (ours) |")
    print("|---|---|---|---|---|")
    for name, x, y, target in lines:
        verdict = ""
        if target:
            ok = y <= target[1] if target[0] == "<=" else y >= target[1]
            verdict = f"{target[0]} {target[1]}: {'PASS' if ok else 'FAIL'}"
        print(f"| {name} | {x:,.3f} | {y:,.3f} | {y / x if x else float('nan'):.2f} | {verdict} |")
    (work / f"scale-{n}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
