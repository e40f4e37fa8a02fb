"""Exact answer span on gold sentences: CMRC 2018 character F1 / EM of ``answer_span`` vs the whole sentence.

    python bench/span_f1.py [DATASETS...]

Each question's gold sentence is the stripped sentence (``rag.ingest.chunking.sentence_spans``) of its
paragraph holding the gold answer's start. F1 is CMRC 2018's official (``rag.evaluation.metrics.cmrc_f1``),
EM the exact match after its normalisation, both max over the gold answers. Compared: the whole
sentence; ``answer_span`` as of the commit before the learned scorer (read with ``git show``); the
rules kept as ``rule_span`` (the same, matching the question's words on the folded sentence); the
learned ``answer_span``, trained on these very sets, so its F1/EM are the paragraph-grouped
cross-validated ones recorded in ``span.json`` by the trainer (``--cv`` recomputes them, minutes),
never its training fit. ms/call is the mean time of one call over the set.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.evaluation.metrics import cmrc_f1, cmrc_segments
from rag.generation.span import MODEL_PATH, answer_span, rule_span
from rag.training.span_train import gold_sentences

SETS = ["/work/shared/data/cmrc2018-trial.json", "/work/shared/data/drcd-dev.json"]
BASELINE_COMMIT = "b96a75d"  # the rule-based answer_span before the learned scorer


def baseline_span():
    """``answer_span`` as of ``BASELINE_COMMIT`` (read from git), or None outside the repository."""
    try:
        src = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:rag/generation/span.py"], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    mod = types.ModuleType("span_baseline")
    exec(compile(src, "span_baseline.py", "exec"), mod.__dict__)
    return mod.answer_span


def em(pred: str, answers: list[str]) -> float:
    p = cmrc_segments(pred)
    return float(any(cmrc_segments(a) == p for a in answers))


def score(rows, predict) -> tuple[float, float]:
    f1 = e = 0.0
    for r in rows:
        text = predict(r)
        f1 += cmrc_f1(text, r["answers"])
        e += em(text, r["answers"])
    return 100 * f1 / len(rows), 100 * e / len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("datasets", nargs="*", default=SETS)
    ap.add_argument("--cv", action="store_true", help="recompute the learned scorer's cross-validation (minutes)")
    args = ap.parse_args(argv)
    try:
        shipped = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        shipped = {}
    cv = shipped.get("cv", {})
    if args.cv:
        from rag.generation import span_train

        sets, data = span_train.load(args.datasets)
        cv = span_train.cross_validate(sets, data, int(shipped.get("folds", 5)), l2=shipped.get("l2", span_train.L2_DEFAULT),
                                       power=shipped.get("power", span_train.POWER),
                                       shares=shipped.get("shares", span_train.SHARES))
    rules = [("baseline " + BASELINE_COMMIT, baseline_span()), ("rule_span (rules)", rule_span)]
    for path in args.datasets:
        rows = gold_sentences(path)
        print(f"{Path(path).name}: {len(rows)} questions (gold sentences)")
        whole = score(rows, lambda r: r["sentence"])
        print(f"  {'whole sentence':24s} F1 {whole[0]:5.1f}  EM {whole[1]:5.1f}")
        for name, fn in [*rules, ("answer_span (learned)", answer_span)]:
            if fn is None:
                continue
            fn("预热", "预热这个函数的句子。")
            t0 = time.perf_counter()
            spans = [fn(r["question"], r["sentence"]) for r in rows]
            ms = 1000 * (time.perf_counter() - t0) / len(rows)
            assert all(0 <= s < e <= len(r["sentence"]) for r, (s, e) in zip(rows, spans) if r["sentence"])
            if fn is answer_span:  # trained on these sets: its held-out figures, never the training fit
                r = cv.get(Path(path).name)
                figures = f"F1 {r['f1']:5.1f}  EM {r['em']:5.1f}" if r else "F1     ?  EM     ?"
                print(f"  {name:24s} {figures}  ({ms:.2f} ms/call; {shipped.get('folds', '?')}-fold CV grouped by "
                      f"paragraph; best candidate F1 {r['oracle'] if r else '?'})")
                continue
            f1, exact = score([dict(r, pred=r["sentence"][s:e]) for r, (s, e) in zip(rows, spans)], lambda r: r["pred"])
            print(f"  {name:24s} F1 {f1:5.1f}  EM {exact:5.1f}  ({ms:.2f} ms/call)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
