"""Warm ``RAG.search`` with real question embeddings, per embedding engine, in one run.

    python bench/search_real.py [--distractors 1000] [--index-dir DIR] [--rounds 5]

bench/query.py times the index at 100k-1M chunks with precomputed query vectors; this one
times what a warm server does per question on a real index: embed the question with the
real model, then dense + BM25 + fusion (no answer generation).  The index is seeds/ plus
N news articles from shared/data (built in a temp folder, or reused with ``--index-dir``).
Questions are the seed-dev set, each asked ``--rounds`` times after one warm-up round.
Columns: the default engine (OpenVINO) and the torch engine as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import corpus
from rag import RAG

QUESTIONS = ROOT.parent / "shared" / "data" / "seed-dev.jsonl"


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def time_engine(index_dir: Path, engine: str, questions: list[str], rounds: int) -> dict[str, float]:
    os.environ["RAG_EMBED_ENGINE"] = engine
    rag = RAG.open(index_dir, progress=False)
    embed_ms, search_ms = [], []
    for r in range(rounds + 1):
        for q in questions:
            t0 = time.perf_counter()
            rag.embedder.embed_queries([q])
            t1 = time.perf_counter()
            rag.search(q)
            t2 = time.perf_counter()
            if r:  # round 0 warms caches
                embed_ms.append((t1 - t0) * 1000)
                search_ms.append((t2 - t1) * 1000)
    return {
        "question embedding p50 ms": pct(embed_ms, 50), "question embedding p95 ms": pct(embed_ms, 95),
        "RAG.search p50 ms (embeds too)": pct(search_ms, 50), "RAG.search p95 ms (embeds too)": pct(search_ms, 95),
        "chunks": float(rag.size),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--distractors", type=int, default=1000)
    ap.add_argument("--index-dir", type=Path, help="reuse (or build here and keep) this index")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="rag-search-real-"))
    try:
        index_dir = args.index_dir or tmp / "index"
        if not (index_dir / "manifest.json").is_file():
            docs = corpus.build(tmp / "docs", limit=args.distractors)
            t0 = time.perf_counter()
            RAG.open(index_dir, create=True).index([docs])
            print(f"built {index_dir} in {time.perf_counter() - t0:.0f} s")
        cols = {e: time_engine(index_dir, e, questions, args.rounds) for e in ("openvino", "torch")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"warm search, {len(questions)} seed-dev questions x {args.rounds} rounds, index of seeds/ + "
          f"{args.distractors} articles, {cols['openvino']['chunks']:.0f} chunks; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'figure':32} {'OpenVINO':>10} {'torch':>10} {'ratio':>7}")
    for key in cols["openvino"]:
        if key == "chunks":
            continue
        ours, base = cols["openvino"][key], cols["torch"][key]
        print(f"{key:32} {ours:10.1f} {base:10.1f} {ours / base:7.2f}")


if __name__ == "__main__":
    main()
