"""Our answers (``RAG.ask``) beside the selector-only answerer's and a naive one's on a SQuAD-format
file, in one run, by ``rag eval``'s protocol.

    python bench/naive_answer.py FILE.json [--part test] [--holdout-every 2] [--every N] [--limit N]
                                 [--index-dir DIR] [--out DIR] [--json]

"selector" is the extractive answerer with the neural reader turned off (``RAG_READER=off``: the
learned sentence selector and the logistic span model, the answerer before the reader).

The collection, the questions and the scoring are ``rag eval``'s own (``rag.evaluation``: one
document per paragraph, every question over the whole collection, the metrics of
``rag.evaluation.metrics``); only the answerer differs. The naive one takes the project's own
``rag.search`` top-5 and returns the sentence with the largest IDF-weighted character-bigram
overlap with the question (IDF over the indexed paragraphs), citing its passage; it never
abstains, so with ``--holdout-every`` it answers every left-out question wrongly by design.
``--out`` writes both runs' reports (``DIR/ours``, ``DIR/naive``) and keeps the index in
``DIR/index``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag import RAG
from rag.evaluation.collection import open_collection
from rag.evaluation.dataset import Dataset, load_dataset
from rag.evaluation.metrics import squad_form
from rag.evaluation.run import evaluate
from rag.types import Answer

SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*")


def bigrams(text: str) -> set[str]:
    t = squad_form(text)
    return {t[i:i + 2] for i in range(len(t) - 1)}


def bigram_idf(texts: list[str]) -> dict[str, float]:
    df = Counter(g for t in texts for g in bigrams(t))
    return {g: math.log((len(texts) + 1) / (n + 1)) + 1 for g, n in df.items()}


def naive_answer(question: str, passages: list[Any], idf: dict[str, float]) -> tuple[str, int]:
    """The sentence of the passages sharing the most IDF-weighted character bigrams with the question, and its passage."""
    q = bigrams(question)
    best, best_n, best_score = "", 1, -1.0
    for n, p in enumerate(passages, 1):
        for sentence in SENTENCE.findall(p.chunk.text):
            score = sum(idf.get(g, 1.0) for g in q & bigrams(sentence))
            if score > best_score:
                best, best_n, best_score = sentence.strip(), n, score
    return best, best_n


class SelectorRAG:
    """``ask`` with the extractive answerer's reader turned off, over the same index."""

    def __init__(self, rag: Any) -> None:
        from rag.generation.extractive import ExtractiveGenerator, ExtractiveSettings

        self.rag, self.gen = rag, ExtractiveGenerator(ExtractiveSettings(reader="off"))
        self.settings, self.index_dir = rag.settings, rag.index_dir

    def ask(self, question: str, *, top_k: int | None = None, retrieval: str | None = None) -> Answer:
        return self.rag.ask(question, top_k=top_k, retrieval=retrieval, generator=self.gen)


class NaiveRAG:
    """What ``rag.evaluation.run`` asks: ``ask`` answers naively over ``rag.search`` top-5 of the same index."""

    def __init__(self, rag: Any, idf: dict[str, float]) -> None:
        self.rag, self.idf = rag, idf
        self.settings, self.index_dir = rag.settings, rag.index_dir

    def ask(self, question: str, *, top_k: int | None = None, retrieval: str | None = None) -> Answer:
        t0 = time.perf_counter()
        passages = self.rag.search(question, top_k=5, retrieval=retrieval)
        t1 = time.perf_counter()
        text, n = naive_answer(question, passages, self.idf) if passages else ("", 0)
        t2 = time.perf_counter()
        timings = {"retrieve_ms": (t1 - t0) * 1000, "generate_ms": (t2 - t1) * 1000, "total_ms": (t2 - t0) * 1000}
        return Answer(question, f"{text} [{n}]" if text else "", False, [], passages, timings, generator="naive")


ROWS: list[tuple[str, str | None, tuple[str, ...]]] = [  # label, topic (None: all questions), path
    ("questions", None, ("n",)),
    ("hit@1", None, ("retrieval", "hit@1")), ("hit@5", None, ("retrieval", "hit@k")),
    ("contains", None, ("span", "contains")), ("abstained (answerable)", None, ("abstention", "answerable_abstained")),
    ("span F1", None, ("span", "span_f1")), ("F1 measured on", None, ("span", "f1_source")),
    ("answer stage p50 ms", None, ("stages_ms", "generate", "p50")),
    ("answer stage p95 ms", None, ("stages_ms", "generate", "p95")),
    ("retrieval p95 ms", None, ("stages_ms", "retrieve", "p95")),
]
HOLDOUT_ROWS: list[tuple[str, str | None, tuple[str, ...]]] = [
    ("kept: questions", "kept", ("n",)), ("kept: contains", "kept", ("span", "contains")),
    ("kept: abstained", "kept", ("abstention", "answerable_abstained")),
    ("kept: span F1", "kept", ("span", "span_f1")),
    ("left-out: questions", "left-out", ("n",)),
    ("left-out: abstained", "left-out", ("abstention", "unanswerable_abstained")),
]


def pick(summary: dict[str, Any], topic: str | None, path: tuple[str, ...]) -> Any:
    d: Any = summary if topic is None else summary.get("by_topic", {}).get(topic, {})
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def table(ours: dict[str, Any], selector: dict[str, Any], naive: dict[str, Any], holdout: bool) -> str:
    rows = ROWS + (HOLDOUT_ROWS if holdout else [])
    lines = [f"{'':<26}{'ours (RAG.ask)':>18}{'selector':>18}{'naive':>18}"]
    for label, topic, path in rows:
        cells = [pick(s, topic, path) for s in (ours, selector, naive)]
        lines.append(f"{label:<26}" + "".join(f"{'—' if c is None else str(c):>18}" for c in cells))
    return "\n".join(lines)


def run(dataset: Dataset, index_dir: str | None, out: str | None, progress: bool) -> dict[str, Any]:
    idf = bigram_idf([p.context for p in dataset.paragraphs if not p.held_out])
    with open_collection(dataset, RAG, index_dir=index_dir, out=out, progress=progress) as rag:
        reports = {"ours": evaluate(rag, dataset, progress=progress),
                   "selector": evaluate(SelectorRAG(rag), dataset, progress=progress),
                   "naive": evaluate(NaiveRAG(rag, idf), dataset, progress=progress)}
    for name, report in reports.items():
        if name != "ours":
            report.summary["run"]["generator"] = name
        if out:
            report.write(Path(out) / name)
    return {name: r.summary for name, r in reports.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", help="SQuAD-format JSON (CMRC, DRCD, SQuAD, your own)")
    ap.add_argument("--part", choices=["train", "calibration", "test"],
                    help="only the questions of this fixed part of the paragraphs (test: kept out of all training)")
    ap.add_argument("--holdout-every", type=int, metavar="N", help="leave every N-th paragraph out of the index")
    ap.add_argument("--every", type=int, default=1, metavar="N", help="ask only every N-th question")
    ap.add_argument("--limit", type=int, metavar="N", help="ask at most N questions")
    ap.add_argument("--index-dir", help="an index of this file's paragraphs (built there if missing)")
    ap.add_argument("--out", help="write both reports (DIR/ours, DIR/naive) and keep the index in DIR/index")
    ap.add_argument("--json", action="store_true", help="print both summaries as JSON")
    args = ap.parse_args(argv)
    dataset = load_dataset(args.dataset).protocol(args.holdout_every, args.every, args.limit, part=args.part)
    t0 = time.perf_counter()
    summaries = run(dataset, args.index_dir, args.out, progress=not args.json)
    if args.json:
        print(json.dumps(summaries, ensure_ascii=False, indent=2))
        return 0
    print(f"{dataset.source}: {len(dataset.rows)} questions, {len(dataset.paragraphs)} paragraphs"
          + (f", the {args.part} part" if args.part else "")
          + (f", every {args.holdout_every}-th paragraph left out" if args.holdout_every else "")
          + (f", every {dataset.sample_every}-th question" if dataset.sample_every > 1 else "")
          + f" ({time.perf_counter() - t0:.0f} s)")
    print(table(summaries["ours"], summaries["selector"], summaries["naive"], bool(args.holdout_every)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
