"""Train the extractive answer selector from SQuAD-format sets: ``rag train-answerer DATASETS... --out PATH``
(or ``python -m rag.training.train``, the same).

For each set, every paragraph is indexed as its own document (once; cached under ``--cache``), and
every question retrieves its top 5 with ``RAG.search`` over the whole collection (cached too). Each
candidate (a sentence of those passages, or two adjacent ones) is gold when it holds a gold answer
span (by source offset or by text), a negative otherwise. Two models (scikit-learn, at training
time only):

* the **selector**, gradient-boosted trees, ranks the candidates (paragraph-grouped
  cross-validation reports its top-1 accuracy beside the old rules' and the naive baseline's);
* the **answerability** model, gradient-boosted trees too, turns the best candidate into p(it answers), trained on the same
  questions plus those whose paragraph is left out of the index (leave every second paragraph out);
  the abstention threshold is chosen on its out-of-fold predictions, never on the training fit.

The output is data only (JSON: feature schema, trees, normalisation, weights, threshold), read by
``rag.generation.selector``. Deterministic: fixed folds, no random state.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError
from rag.evaluation.dataset import Dataset, Paragraph, paragraph_doc_id, write_paragraphs
from rag.evaluation.dataset import load_squad as read
from rag.generation.features import FEATURES, Candidate, candidates, fold, question_terms
from rag.generation.selector import answerability_row
from rag.generation.trees import Forest
from rag.pipeline import RAG
from rag.types import Chunk, Passage

CACHE = Path("/tmp/rag-answerer-cache")
HOLDOUT_EVERY = 2
STAGE2 = ("logit", "margin", "b_s", "b_win", "w_s", "w_p", "b_p", "t_s", "w_key_miss", "w_all", "b_all", "pair",
          "rank_inv", "p_score", "dense", "type_match", "typed_miss", "q_in_s")


# ---- data --------------------------------------------------------------------------------------
def load_squad(path: Path, log=print) -> tuple[list[Paragraph], list[dict[str, Any]]]:
    """The paragraphs and the questions on them, read by ``rag eval``'s SQuAD reader (malformed
    entries are reported by position and skipped, as there)."""
    ds = read(path)
    for err in ds.errors[:10]:
        log(f"skipped: {err}")
    if len(ds.errors) > 10:
        log(f"skipped {len(ds.errors) - 10} more malformed entries")
    position = {p.doc_id: i for i, p in enumerate(ds.paragraphs)}
    questions = [{"id": r.id, "question": r.question, "pi": position[r.gold_docs[0]],
                  "answers": [{"text": t, "start": s} for t, s in zip(r.answers, r.answer_starts)]} for r in ds.rows]
    return ds.paragraphs, questions


def build_indexes(name: str, paragraphs: list[Paragraph], cache: Path) -> tuple[Path, Path]:
    """The index of every paragraph, and a copy with those ``rag eval --holdout-every 2`` leaves out deleted."""
    full, held = cache / f"{name}-index", cache / f"{name}-holdout-index"
    collection = Dataset([], paragraphs=paragraphs)
    if not (full / "manifest.json").exists():
        RAG.open(full, create=True).add(write_paragraphs(collection, cache / f"{name}-docs"))
    if not (held / "manifest.json").exists():
        shutil.rmtree(held, ignore_errors=True)
        shutil.copytree(full, held)
        RAG.open(held).delete([p.doc_id for p in collection.with_holdout(HOLDOUT_EVERY).paragraphs if p.held_out])
    return full, held


def collect(index: Path, questions: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """Each question's top-5 passages (cached in ``out``) and the IDF of its terms in that index.

    The IDF is looked up afresh on every run, so the terms always are those of the current
    ``question_terms`` (e.g. after script folding changed), whatever the cache was built with."""
    rag = RAG.open(index)
    idf = rag.state.lexical.idf
    if out.exists():
        rows = json.loads(out.read_text(encoding="utf-8"))
    else:
        rows = []
        t0 = time.perf_counter()
        for i, q in enumerate(questions):
            passages = rag.search(q["question"])
            rows.append({**q, "passages": [{"chunk": p.chunk.to_dict(), "score": p.score, "rank": p.rank,
                                            "dense_score": p.dense_score, "lexical_score": p.lexical_score}
                                           for p in passages]})
            if i % 200 == 0:
                print(f"  {index.name}: {i}/{len(questions)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        out.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    for row in rows:
        ws, bgs = question_terms(row["question"])
        row["idf"] = {t: idf(t) for t in ws + bgs}
    return rows


def passages_of(row: dict[str, Any]) -> list[Passage]:
    return [Passage(Chunk.from_dict(p["chunk"]), p["score"], p["rank"], p["dense_score"], p["lexical_score"])
            for p in row["passages"]]


def is_gold(c: Candidate, passage: Passage, row: dict[str, Any]) -> bool:
    """The sentence holds a gold answer: its span by source offset, or its text."""
    chunk = passage.chunk
    if chunk.doc_id == paragraph_doc_id(row["pi"]):
        s, e = chunk.source_span(c.start, c.end)
        if any(a["start"] >= 0 and s <= a["start"] and a["start"] + len(a["text"]) <= e for a in row["answers"]):
            return True
    text = fold(c.text)
    return any(fold(a["text"]) and fold(a["text"]) in text for a in row["answers"])


def featurize(rows: list[dict[str, Any]], answerable: list[bool]) -> list[dict[str, Any]]:
    """Per question: candidates' features ``X``, gold labels ``y`` (all 0 when its paragraph is not indexed)."""
    out = []
    for row, ok in zip(rows, answerable):
        ps = passages_of(row)
        idf = row["idf"]
        cands = candidates(row["question"], ps, lambda t, idf=idf: idf.get(t, 0.0))
        y = [int(ok and is_gold(c, ps[c.n - 1], row)) for c in cands]
        out.append({"row": row, "cands": cands, "X": np.array([c.x for c in cands], dtype=np.float64).reshape(-1, len(FEATURES)),
                    "y": np.array(y, dtype=np.int64), "answerable": ok})
    return out


# ---- models ------------------------------------------------------------------------------------
# Fixed, not searched per run: 300 rounds of 31 leaves measured +1 point of top-1 sentence accuracy
# over the logistic regression in grouped 5-fold CV on CMRC 2018 trial + DRCD dev (.767 → .780, .848 → .859).
TREE_PARAMS = {"max_iter": 300, "learning_rate": 0.05, "max_leaf_nodes": 31, "min_samples_leaf": 40}
# The answerability model: 100 rounds of 15 leaves over the logistic regression, at wrongly abstained
# <= .03 on both sets (grouped 5-fold CV), lifted left-out questions refused from .892 / .708 to .916 / .791.
ANSWERABILITY_PARAMS = {"max_iter": 100, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 40}


def fit_trees(X: np.ndarray, y: np.ndarray, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Gradient-boosted trees (scikit-learn, deterministic: no early stopping, no subsampling), as data."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: PLC0415 - scikit-learn (train extra, ~1 s) only for the fit

    clf = HistGradientBoostingClassifier(**(params or TREE_PARAMS), early_stopping=False, random_state=0).fit(X, y)
    return export_trees(clf)


def export_trees(clf: Any) -> dict[str, Any]:
    """A fitted HistGradientBoostingClassifier as the JSON forest of ``rag.generation.trees``.

    Reads the fitted predictors' node tables (``_predictors``): scikit-learn offers no other export."""
    trees, depth = [], 0
    for (predictor,) in clf._predictors:
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        trees.append({"feature": np.where(leaf, -1, nodes["feature_idx"]).astype(int).tolist(),
                      "threshold": np.round(nodes["num_threshold"].astype(float), 9).tolist(),
                      "left": nodes["left"].astype(int).tolist(), "right": nodes["right"].astype(int).tolist(),
                      "value": np.round(nodes["value"].astype(float), 9).tolist()})
        depth = max(depth, int(nodes["depth"].max()))
    return {"kind": "trees", "baseline": float(np.ravel(clf._baseline_prediction)[0]), "max_depth": depth + 1,
            "trees": trees}


def fit_selector(X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    return fit_trees(X, y)


def score_of(model: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """The logit of an exported forest, as ``rag.generation.selector`` computes it."""
    return Forest(model).logit(X)


def stage2_features(logits: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The answerability features of a question: its best candidate and the margin to the runner-up."""
    best = int(np.argmax(logits))
    return answerability_row(logits, X[best], STAGE2[2:])


def folds(groups: list[int], k: int) -> list[int]:
    """Deterministic fold of each group (paragraph): no paragraph's questions on both sides."""
    return [g % k for g in groups]


def naive_pick(q: dict[str, Any]) -> int:
    return int(np.argmax(q["X"][:, FEATURES.index("b_s")])) if len(q["cands"]) else -1


def rules_pick(q: dict[str, Any]) -> int:
    """The top-1 of the former hand-set score (support + 0.5 * has_head + 0.05 / n, minus the typed miss)."""
    X = q["X"]
    score = 0.5 * (X[:, FEATURES.index("w_s")] + X[:, FEATURES.index("w_p")]) + 0.05 * X[:, FEATURES.index("rank_inv")]
    score -= 1.0 * X[:, FEATURES.index("typed_miss")] * (X[:, FEATURES.index("q_num")] + X[:, FEATURES.index("q_when")])
    score -= 0.2 * X[:, FEATURES.index("no_terminal")] * X[:, FEATURES.index("short")]
    return int(np.argmax(score)) if len(score) else -1


def train(datasets: list[Path], cache: Path = CACHE, k: int = 5, limit: int | None = None,
          log=print) -> dict[str, Any]:
    full_qs, held_qs = [], []
    for path in datasets:
        name = Path(path).stem + (f"-{limit}" if limit else "")
        paragraphs, questions = load_squad(path)
        if limit:
            questions = questions[:limit]
            paragraphs = paragraphs[: max(q["pi"] for q in questions) + 1]
        full, held = build_indexes(name, paragraphs, cache)
        rows = collect(full, questions, cache / f"{name}-full.json")
        full_qs += featurize(rows, [True] * len(rows))
        rows_h = collect(held, questions, cache / f"{name}-holdout.json")
        held_qs += featurize(rows_h, [q["pi"] % HOLDOUT_EVERY == 0 for q in rows_h])
        for q in full_qs[-len(rows):] + held_qs[-len(rows_h):]:
            q["set"] = name
    groups = [hash_group(q) for q in full_qs]
    fold_of = folds(groups, k)
    report: dict[str, Any] = {"questions": len(full_qs), "folds": k}
    # Selector, question-grouped CV (grouped by paragraph, which holds the question's group): one model
    # per fold scores that fold's questions on the full index and on the index with paragraphs left out.
    held_fold = folds([hash_group(q) for q in held_qs], k)
    oof_full: list[np.ndarray | None] = [None] * len(full_qs)
    oof_held: list[np.ndarray | None] = [None] * len(held_qs)
    for f in range(k):
        tr = [q for q, g in zip(full_qs, fold_of) if g != f and len(q["cands"])]
        m = fit_selector(np.vstack([q["X"] for q in tr]), np.concatenate([q["y"] for q in tr]))
        for qs, fo, oof in ((full_qs, fold_of, oof_full), (held_qs, held_fold, oof_held)):
            for i, q in enumerate(qs):
                if fo[i] == f and len(q["cands"]):
                    oof[i] = score_of(m, q["X"])
        log(f"  selector fold {f + 1}/{k} done")
    with_gold = [i for i, q in enumerate(full_qs) if q["y"].any()]
    acc = {"model": np.mean([full_qs[i]["y"][int(np.argmax(oof_full[i]))] for i in with_gold]),
           "rules": np.mean([full_qs[i]["y"][rules_pick(full_qs[i])] for i in with_gold]),
           "naive": np.mean([full_qs[i]["y"][naive_pick(full_qs[i])] for i in with_gold])}
    per_set = {}
    for name in dict.fromkeys(q["set"] for q in full_qs):
        idx = [i for i in with_gold if full_qs[i]["set"] == name]
        per_set[name] = {"with_gold": len(idx),
                         "model": float(np.mean([full_qs[i]["y"][int(np.argmax(oof_full[i]))] for i in idx])),
                         "rules": float(np.mean([full_qs[i]["y"][rules_pick(full_qs[i])] for i in idx])),
                         "naive": float(np.mean([full_qs[i]["y"][naive_pick(full_qs[i])] for i in idx]))}
    report["top1_sentence_accuracy"] = {k2: float(v) for k2, v in acc.items()}
    report["top1_by_set"] = per_set
    report["gold_retrieved"] = len(with_gold) / len(full_qs)
    log(json.dumps(report, ensure_ascii=False))
    selector = fit_selector(np.vstack([q["X"] for q in full_qs if len(q["cands"])]),
                            np.concatenate([q["y"] for q in full_qs if len(q["cands"])]))
    s2 = []  # (features, label, fold, kind)
    for qs, oof, fo, kind in ((full_qs, oof_full, fold_of, "full"), (held_qs, oof_held, held_fold, "held")):
        for q, lg, f in zip(qs, oof, fo):
            if lg is None:
                continue
            best = int(np.argmax(lg))
            label = int(q["y"][best])
            s2.append((stage2_features(lg, q["X"]), label, f, kind, q["answerable"], q["set"]))
    Z = np.array([r[0] for r in s2])
    L = np.array([r[1] for r in s2])
    F = np.array([r[2] for r in s2])
    if cache is not None:  # the answerability rows, kept for inspection beside the retrieved passages
        np.savez(cache / "stage2.npz", Z=Z, L=L, F=F, kind=np.array([r[3] for r in s2]),
                 answerable=np.array([r[4] for r in s2]), set=np.array([r[5] for r in s2]))
    answerability, p_oof = fit_answerability(Z, L, F, k)
    threshold, curve = choose_threshold(s2, p_oof)
    report["threshold"] = threshold
    report["curve"] = curve
    log(json.dumps({"threshold": threshold, "at_threshold": next(c for c in curve if c["threshold"] == threshold)}))
    return {
        "version": 1,
        "features": list(FEATURES),
        "selector": selector,
        "answerability": {**answerability, "features": list(STAGE2) + ["bias"]},
        "threshold": threshold,
        "trained_on": [Path(p).name for p in datasets] + ([f"first {limit} questions"] if limit else []),
        "cv": report,
    }


def fit_answerability(Z: np.ndarray, L: np.ndarray, F: np.ndarray, k: int) -> tuple[dict[str, Any], np.ndarray]:
    """The answerability trees on every row, and each row's out-of-fold p(answers) to choose the threshold on."""
    p_oof = np.zeros(len(L))
    for f in range(k):
        m2 = fit_trees(Z[f != F], L[f != F], ANSWERABILITY_PARAMS)
        p_oof[f == F] = 1 / (1 + np.exp(-score_of(m2, Z[f == F])))
    return fit_trees(Z, L, ANSWERABILITY_PARAMS), p_oof


def hash_group(q: dict[str, Any]) -> int:
    """A paragraph's stable group number (its set's name and index), the same on every run."""
    return zlib.crc32(f"{q.get('set', '')}:{q['row']['pi']}".encode())


def choose_threshold(s2: list[tuple], p: np.ndarray) -> tuple[float, list[dict[str, Any]]]:
    """The threshold meeting the targets on out-of-fold predictions, and the curve around it.

    Targets, for every training set alike: wrongly abstained on the full index ≤ 0.03; with every
    second paragraph left out, left-out questions abstained ≥ 0.80 and kept questions answered right
    ≥ 0.85. The highest threshold that keeps wrongly abstained ≤ 0.03 in every set is taken (refusing
    more never helps the answerable ones); the curve records every figure, overall and by set.
    """
    kind = np.array([r[3] for r in s2])
    ok = np.array([r[4] for r in s2])
    label = np.array([r[1] for r in s2])
    sets = np.array([r[5] if len(r) > 5 else "" for r in s2])

    def figures(ans: np.ndarray, m: np.ndarray) -> dict[str, float]:
        full, left, kept = m & (kind == "full"), m & (kind == "held") & ~ok, m & (kind == "held") & ok
        return {"full_abstained": float(np.mean(~ans[full])) if full.any() else 0.0,
                "full_contains": float(np.mean(ans[full] & (label[full] == 1))) if full.any() else 0.0,
                "left_out_abstained": float(np.mean(~ans[left])) if left.any() else 0.0,
                "kept_contains": float(np.mean(ans[kept] & (label[kept] == 1))) if kept.any() else 0.0,
                "answered_accuracy": float(np.mean(label[full][ans[full]])) if ans[full].any() else 1.0}

    curve = []
    for t in np.round(np.arange(0.01, 0.9, 0.01), 2):
        ans = p >= t
        by_set = {name: figures(ans, sets == name) for name in dict.fromkeys(sets.tolist())}
        curve.append({"threshold": float(t), **figures(ans, np.ones(len(p), dtype=bool)), "by_set": by_set})
    fine = [c for c in curve if all(f["full_abstained"] <= 0.03 for f in c["by_set"].values())]
    best = max(fine, key=lambda c: c["threshold"]) if fine else curve[0]
    return best["threshold"], curve


def train_to(datasets: list[Path], out: Path, cache: Path = CACHE, k: int = 5, limit: int | None = None,
             log=print) -> dict[str, Any]:
    """Check the inputs, train, and write the model JSON to ``out`` (``rag train-answerer``)."""
    missing = [str(d) for d in datasets if not Path(d).is_file()]
    if missing:
        raise ConfigError(f"no such question set: {', '.join(missing)}")
    if k < 2 or (limit is not None and limit < 1):
        raise ConfigError(f"--folds must be at least 2 and --limit at least 1; got {k} and {limit}")
    try:
        import sklearn  # noqa: F401, PLC0415 - scikit-learn (train extra): its absence is reported before the work starts
    except ImportError:
        raise ConfigError("training needs scikit-learn: pip install 'rag[train]' (answering does not)") from None
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: the folder {out.parent} does not exist")
    cache.mkdir(parents=True, exist_ok=True)
    model = train(datasets, cache, k, limit=limit, log=log)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(model, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    tmp.replace(out)  # a crash leaves the old model whole
    return model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rag.training.train", description=__doc__.split("\n")[0])
    ap.add_argument("datasets", nargs="+", type=Path, help="SQuAD-format JSON files")
    ap.add_argument("--out", type=Path, required=True, help="the model JSON to write")
    ap.add_argument("--cache", type=Path, default=CACHE, help=f"indexes and retrieved passages (default {CACHE})")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--limit", type=int, default=None, help="only the first N questions of each set")
    args = ap.parse_args(argv)
    train_to(args.datasets, args.out, args.cache, args.folds, args.limit)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.1f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
