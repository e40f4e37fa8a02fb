"""Crash safety, proven by killing it: SIGKILL `rag index` at random moments and check what is left.

    python bench/kill_test.py [--trials 20] [--articles 60] [--seed 7]

Each trial copies a base index (the seed page only), starts `rag index` on the seed
plus N distractor articles, kills it with SIGKILL after a random delay, then checks
that the index opens, passes `rag verify`, and is exactly the old index or exactly
the new one (document and chunk counts, FAISS size, checksums agree), and that a
rerun completes.  Prints one line per trial and a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RAG_BIN = Path(sys.executable).parent / "rag"


def run_index(corpus: Path, index: Path) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.Popen([str(RAG_BIN), "index", str(corpus), "--index-dir", str(index), "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def state(index: Path) -> tuple[int, int]:
    """(documents, chunks) of an index that opens and verifies; raises if it does not."""
    from rag import RAG
    from rag.storage.verify import verify

    report = verify(index, check_embedder=False)
    if not report.ok:
        raise AssertionError("; ".join(report.errors))
    rag = RAG.open(index, progress=False)
    return len(rag.documents()), rag.size


def trial(base: Path, corpus: Path, work: Path, delay: float, old: tuple[int, int], new: tuple[int, int]) -> str:
    index = work / "index"
    shutil.rmtree(index, ignore_errors=True)
    shutil.copytree(base, index)
    proc = run_index(corpus, index)
    time.sleep(delay)
    finished = proc.poll() is not None
    if not finished:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    got = state(index)
    if got not in (old, new):
        raise AssertionError(f"index is neither old {old} nor new {new}: {got}")
    outcome = "old" if got == old else "new"
    rerun = run_index(corpus, index)
    if rerun.wait(timeout=1800) != 0:
        raise AssertionError(f"rerun exited with {rerun.returncode}")
    if state(index) != new:
        raise AssertionError(f"after the rerun the index is {state(index)}, expected {new}")
    return ("finished before the kill, " if finished else "") + outcome


def prepare(work: Path, articles: int) -> tuple[Path, Path, tuple[int, int], tuple[int, int]]:
    from bench.corpus import build

    corpus = build(work / "corpus", limit=articles)
    base = work / "base"
    subprocess.run([str(RAG_BIN), "index", str(ROOT / "seeds"), "--index-dir", str(base), "--json"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    old = state(base)
    full = work / "full"
    shutil.copytree(base, full)
    t0 = time.perf_counter()
    run_index(corpus, full).wait()
    build_seconds = time.perf_counter() - t0
    new = state(full)
    (work / "build_seconds").write_text(json.dumps(build_seconds))
    return corpus, base, old, new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--articles", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus, base, old, new = prepare(work, args.articles)
        build_seconds = json.loads((work / "build_seconds").read_text())
        print(f"old index {old}, new index {new} (documents, chunks); a full run takes {build_seconds:.1f} s")
        outcomes: dict[str, int] = {}
        for i in range(args.trials):
            delay = rng.uniform(0.2, build_seconds * 1.1)
            try:
                outcome = trial(base, corpus, work, delay, old, new)
            except AssertionError as exc:
                outcome = f"FAILED: {exc}"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            print(f"trial {i + 1:2d}: killed after {delay:5.1f} s -> {outcome}", flush=True)
        print("summary:", json.dumps(outcomes, ensure_ascii=False))
        sys.exit(1 if any(k.startswith("FAILED") for k in outcomes) else 0)


if __name__ == "__main__":
    main()
