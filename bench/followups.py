"""Follow-ups without an LLM: each paragraph's questions asked in order with the earlier ones as history,
beside the same questions asked alone, over ``rag eval``'s open-domain collection of a SQuAD-format file.

    python bench/followups.py FILE.json [--part test] [--limit N] [--index-dir DIR]

SQuAD questions are written to stand alone, so this measures the price of the history (a follow-up
rule that fires on a standalone question must not hurt it) and, on the questions the rule treats as
follow-ups (``rag.generation.followup.leans_on_history``), what the history changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag import RAG
from rag.evaluation.collection import open_collection
from rag.evaluation.dataset import load_dataset
from rag.evaluation.metrics import cmrc_f1, contains_gold, strip_markers
from rag.generation.followup import leans_on_history


def score(answer, answers: list[str]) -> tuple[float, float]:
    if answer.abstained:
        return 0.0, 0.0
    text = strip_markers(answer.answer)
    span = answer.answer_span["text"] if answer.answer_span else text
    return float(contains_gold(answers, text)), cmrc_f1(span, answers)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("--part", choices=["train", "calibration", "test"], default="test")
    ap.add_argument("--limit", type=int, help="at most N questions")
    ap.add_argument("--index-dir", help="an index of this file's paragraphs (built there if missing)")
    args = ap.parse_args(argv)
    ds = load_dataset(args.dataset).protocol(part=args.part, limit=args.limit)
    by_paragraph = defaultdict(list)
    for r in ds.rows:
        by_paragraph[r.paragraph].append(r)
    results = {"alone": [], "history": []}
    leaning = []
    t0 = time.perf_counter()
    with open_collection(ds, RAG, index_dir=args.index_dir) as rag:
        for rows in by_paragraph.values():
            history: list[dict[str, str]] = []
            for r in rows:
                alone = rag.ask(r.question)
                followed = rag.ask(r.question, history=history)
                results["alone"].append(score(alone, r.answers))
                results["history"].append(score(followed, r.answers))
                leaning.append(leans_on_history(r.question))
                history += [{"role": "user", "content": r.question}, {"role": "assistant", "content": followed.answer}]
    n = len(leaning)
    print(f"{ds.source}: {n} questions of the {args.part} part on {len(by_paragraph)} paragraphs, "
          f"{sum(leaning)} treated as follow-ups ({time.perf_counter() - t0:.0f} s)")
    print(f"{'':<34}{'alone':>10}{'with history':>14}")
    for label, pick in (("all: contains", lambda i: True), ("follow-ups: contains", lambda i: leaning[i])):
        idx = [i for i in range(n) if pick(i)]
        for k, name in ((0, "contains"), (1, "span F1")):
            a = sum(results["alone"][i][k] for i in idx) / max(1, len(idx))
            h = sum(results["history"][i][k] for i in idx) / max(1, len(idx))
            print(f"{label.split(':')[0] + ': ' + name + f' (n={len(idx)})':<34}{a:>10.3f}{h:>14.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
