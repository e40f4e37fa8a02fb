"""Calibrate the reader's confidence and choose its thresholds on held-out questions (``rag train-reader``).

The calibration part of each set (``rag.evaluation.dataset.paragraph_part``: 10% of the paragraphs,
never trained on) is asked open-domain, as ``rag eval`` asks: over the index of every paragraph of the
file, and over the index with every second paragraph left out (``--holdout-every 2``), where the
questions of the left-out paragraphs have no answer. Each question's top-5 passages go through the
answerer's own steps (the selector's shortlist, the reader's windows), and every reading becomes a row
of ``rag.generation.extractive.reading_features``, labelled right when it answers an answerable
question and its sentence holds a gold answer.

A logistic regression over those rows turns a reading into p(right); the answerer takes the reading of
highest p. The abstention threshold is the one that refuses the most left-out questions while refusing
at most ``MAX_WRONGLY_REFUSED`` of the answerable ones; below p = .5 (more likely wrong than right) an
answer is shown as uncertain. Two calibrations are fitted: ``shortlist`` (with the selector's logit
and confidence) and ``plain`` (the reader's scores alone, for texts the selector did not choose).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag.evaluation.dataset import paragraph_part
from rag.evaluation.metrics import contains_gold
from rag.generation.extractive import ExtractiveGenerator, ExtractiveSettings, reading_features, sentence_around
from rag.generation.features import candidates
from rag.generation.reader import Calibration, Reader
from rag.training.train import HOLDOUT_EVERY, build_indexes, collect, load_squad, passages_of

MAX_WRONGLY_REFUSED = 0.03
SHORTLIST_FEATURES = ("margin", "score", "null", "sel_logit", "sel_conf", "rank")
PLAIN_FEATURES = ("margin", "score", "null", "rank")


def reading_rows(reader: Reader, gen: ExtractiveGenerator, rows: list[dict[str, Any]], answerable: list[bool]) -> list[dict]:
    """Per question: its readings' features and labels, as the answerer would read it."""
    out = []
    for row, ok in zip(rows, answerable):
        ps = passages_of(row)
        idf = row["idf"]
        cands = candidates(row["question"], ps, lambda t, idf=idf: idf.get(t, 0.0))
        if not cands:
            out.append({"ok": ok, "feats": [], "labels": []})
            continue
        logits = gen.selector.rank(cands)
        conf = gen.selector.confidence(cands, logits)
        order = [int(i) for i in np.argsort(-logits, kind="stable")[: gen.settings.shortlist]]
        short = [cands[i] for i in order]
        readings = reader.read(row["question"], [ps[c.n - 1].chunk.text for c in short], [(c.start, c.end) for c in short])
        feats, labels = [], []
        answers = [a["text"] for a in row["answers"]]
        for r in readings:
            c = short[r.text_index]
            text = ps[c.n - 1].chunk.text
            feats.append(reading_features(r, float(logits[order[r.text_index]]), conf, r.text_index))
            a, b = sentence_around(text, r.start, r.end)
            sentence = text[a:b]
            labels.append(int(ok and contains_gold(answers, sentence)))
        out.append({"ok": ok, "feats": feats, "labels": labels})
    return out


def fit(questions: list[dict], features: tuple[str, ...]) -> Calibration:
    """The logistic regression over every reading, and the thresholds chosen on the questions' best."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - scikit-learn (train extra, ~1 s) only for the fit

    X = np.array([[f[k] for k in features] for q in questions for f in q["feats"]], dtype=np.float64)
    y = np.array([lab for q in questions for lab in q["labels"]])
    if len(set(y.tolist())) < 2:
        return Calibration(features, (1.0,) + (0.0,) * (len(features) - 1), 0.0, 0.5, 0.5)
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
    cal = Calibration(features, tuple(float(c) for c in lr.coef_[0]), float(lr.intercept_[0]), 0.5, 0.5)
    threshold = choose_threshold(questions, cal)
    return Calibration(features, cal.coef, cal.intercept, threshold, max(threshold, 0.5))


def best_p(questions: list[dict], cal: Calibration) -> list[tuple[float, bool, bool]]:
    """Per question: the best reading's p, whether the question is answerable, whether that reading is right."""
    out = []
    for q in questions:
        if not q["feats"]:
            out.append((0.0, q["ok"], False))
            continue
        p = cal.p(q["feats"])
        k = int(np.argmax(p))
        out.append((float(p[k]), q["ok"], bool(q["labels"][k])))
    return out


def choose_threshold(questions: list[dict], cal: Calibration) -> float:
    """The highest threshold that refuses at most ``MAX_WRONGLY_REFUSED`` of the answerable questions."""
    scored = best_p(questions, cal)
    answerable = sorted(p for p, ok, _ in scored if ok)
    if not answerable:
        return 0.5
    k = int(np.floor(MAX_WRONGLY_REFUSED * len(answerable)))
    return float(answerable[k]) if k < len(answerable) else 0.5


def summary(questions: list[dict], cal: Calibration) -> dict[str, float]:
    scored = best_p(questions, cal)
    kept = [(p, right) for p, ok, right in scored if ok]
    left = [p for p, ok, _ in scored if not ok]
    return {"answerable": len(kept), "left_out": len(left),
            "contains": round(float(np.mean([p >= cal.threshold and r for p, r in kept])), 3) if kept else None,
            "wrongly_refused": round(float(np.mean([p < cal.threshold for p, _ in kept])), 3) if kept else None,
            "left_out_refused": round(float(np.mean([p < cal.threshold for p in left])), 3) if left else None}


def calibrate(reader: Reader, datasets: list[Path], cache: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Both calibrations, fitted on the calibration part of ``datasets`` (indexes and retrieval cached in ``cache``)."""
    gen = ExtractiveGenerator(ExtractiveSettings(reader="off"))
    questions: list[dict] = []
    for path in datasets:
        name = Path(path).stem
        paragraphs, qs = load_squad(Path(path), log)
        mine = [q for q in qs if paragraph_part(Path(path).name, paragraphs[q["pi"]].id) == "calibration"]
        if not mine:
            continue
        full, held = build_indexes(name, paragraphs, cache)
        rows = collect(full, mine, cache / f"{name}-calibration-full.json")
        questions += reading_rows(reader, gen, rows, [True] * len(rows))
        left = [q for q in mine if q["pi"] % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
        rows_h = collect(held, left, cache / f"{name}-calibration-holdout.json")
        questions += reading_rows(reader, gen, rows_h, [False] * len(rows_h))
        log(f"calibration: {len(rows)} questions of {path.name} asked, {len(rows_h)} of them over the left-out index")
    if not questions:
        raise ValueError("no calibration questions: the sets' calibration part is empty")
    shortlist, plain = fit(questions, SHORTLIST_FEATURES), fit(questions, PLAIN_FEATURES)
    return {"shortlist": shortlist.to_dict(), "plain": plain.to_dict(),
            "report": {"shortlist": summary(questions, shortlist), "plain": summary(questions, plain)}}


__all__ = ["MAX_WRONGLY_REFUSED", "calibrate", "choose_threshold", "fit", "reading_rows"]
