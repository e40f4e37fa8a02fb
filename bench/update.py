"""Cost of changing a built index: add one file, then delete it, with and without BM25's term cache.

    python bench/update.py [--distractors 1000] [--index-dir DIR] [--rounds 3]

bm25s rebuilds its index on every change.  The index keeps each chunk's BM25 terms
(``bm25/doc_terms.*``) so that a rebuild segments only new chunks with jieba; the baseline,
in the same run, is the same change on a copy of the index whose term cache was removed
(what every change cost before the cache).  The index is seeds/ plus N news articles
(built in a temp folder, or reused with ``--index-dir``, which is copied, never changed).
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

NEW_TEXT = "新华社长沙电 长沙市今天召开数字经济大会，发布二十项支持人工智能产业的新政策，涉及算力、数据和人才。"


def drop_term_cache(index_dir: Path) -> None:
    gen = json.loads((index_dir / "manifest.json").read_text())["generation"]
    for f in (index_dir / gen / "bm25").glob("doc_terms.*"):
        f.unlink()


def time_changes(index_dir: Path, docs: Path, rounds: int, cached: bool) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"add one file, s": [], "delete it, s": []}
    rag = RAG.open(index_dir, progress=False)
    for r in range(rounds):
        if not cached:
            drop_term_cache(index_dir)
            rag = RAG.open(index_dir, progress=False)
        new = docs / f"update-{r}.txt"
        new.write_text(NEW_TEXT, encoding="utf-8")
        t0 = time.perf_counter()
        rag.add([new])
        out["add one file, s"].append(time.perf_counter() - t0)
        if not cached:
            drop_term_cache(index_dir)
            rag = RAG.open(index_dir, progress=False)
        t0 = time.perf_counter()
        rag.delete(new.name)
        out["delete it, s"].append(time.perf_counter() - t0)
    out["chunks"] = [float(rag.size)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--distractors", type=int, default=1000)
    ap.add_argument("--index-dir", type=Path, help="copy this built index instead of building one")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rag-update-"))
    try:
        base = tmp / "base"
        if args.index_dir:
            shutil.copytree(args.index_dir, base)
        else:
            RAG.open(base, create=True, progress=False).index([corpus.build(tmp / "docs", limit=args.distractors)])
        (tmp / "new").mkdir()
        warm = tmp / "new" / "warm-up.txt"  # one change gives an index from before the cache its cache
        warm.write_text(NEW_TEXT, encoding="utf-8")
        RAG.open(base, progress=False).add([warm])
        RAG.open(base, progress=False).delete(warm.name)
        cols = {}
        for label, cached in (("term cache", True), ("no cache (baseline)", False)):
            shutil.copytree(base, tmp / label)
            cols[label] = time_changes(tmp / label, tmp / "new", args.rounds, cached)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chunks = int(cols["term cache"]["chunks"][0])
    print(f"changes to an index of {chunks:,} chunks, median of {args.rounds}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'figure':22} {'term cache':>11} {'baseline':>9} {'ratio':>6}")
    for key in ("add one file, s", "delete it, s"):
        ours, base_s = (statistics.median(cols[c][key]) for c in cols)
        print(f"{key:22} {ours:11.2f} {base_s:9.2f} {ours / base_s:6.2f}")


if __name__ == "__main__":
    main()
