"""Does joining concurrent questions' reader windows in one OpenVINO call pay? Same process, alternating.

    python bench/reader_batching.py INDEX_DIR [--questions shared/data/cmrc2018-trial.json] [--threads 16]

Asks distinct questions (the CMRC 2018 trial set's, never one twice) from ``--threads`` threads, in
rounds that alternate the reader's batcher between one question's windows per call (3) and up to 12
windows per call, and prints questions/s and the windows each call held. docs/performance.md has the
figures; the reader keeps 3 (``rag.generation.reader.BATCHED_WINDOWS``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.evaluation.dataset import load_dataset
from rag.generation.reader import load_reader
from rag.pipeline import RAG


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index", type=Path)
    ap.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "data" / "cmrc2018-trial.json")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--per-round", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    rag = RAG.open(args.index)
    rag.warm()
    reader = load_reader("")
    questions = list(dict.fromkeys(row.question for row in load_dataset(str(args.questions)).rows))
    at = 0
    for _ in range(args.rounds):
        for max_rows in (3, 12):
            reader._batcher.max_rows = max_rows
            batch, at = questions[at : at + args.per_round], at + args.per_round
            calls, rows = reader._batcher.calls, reader._batcher.rows
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(rag.ask, batch))
            dt = time.perf_counter() - t0
            calls, rows = reader._batcher.calls - calls, reader._batcher.rows - rows
            print(f"up to {max_rows:2d} windows a call: {len(batch) / dt:.2f} questions/s, {rows / max(calls, 1):.1f} "
                  f"windows a call; load average {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
