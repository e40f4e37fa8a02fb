"""Batch evaluation over a question set: retrieval, answer, citation, abstention and latency metrics.

Every comparison is made on normalised text (whitespace removed, full-width folded,
lower case), so a fact split across a line break or written with full-width digits
still counts.
"""

from __future__ import annotations

import csv
import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RagError
from .textnorm import normalize_for_match
from .types import Answer


class DatasetError(RagError):
    """A question set cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Row:
    id: str
    question: str
    answer: str | None
    key_facts: list[list[str]]
    gold_docs: list[str]
    topic: str
    line: int

    @property
    def answerable(self) -> bool:
        return bool(self.answer) or bool(self.key_facts)


@dataclass
class Dataset:
    rows: list[Row]
    errors: list[str] = field(default_factory=list)  # "line N: what is wrong"


def load_dataset(path: str | Path, strict: bool = False) -> Dataset:
    """Read JSON Lines or CSV; a malformed row is reported with its line and skipped (or fails with ``strict``)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"question set {path} does not exist")
    raw_rows = _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)
    rows, errors, seen = [], [], set()
    for line, obj, err in raw_rows:
        if err is None:
            try:
                row = _row(obj, line)
                if row.id in seen:
                    raise ValueError(f"duplicate id {row.id!r}")
                seen.add(row.id)
                rows.append(row)
                continue
            except (ValueError, TypeError) as exc:
                err = str(exc)
        msg = f"{path.name} line {line}: {err}"
        if strict:
            raise DatasetError(msg)
        errors.append(msg)
    if not rows:
        raise DatasetError(f"{path} holds no usable question" + (f" ({errors[0]})" if errors else ""))
    return Dataset(rows, errors)


def _read_jsonl(path: Path) -> Iterable[tuple[int, Any, str | None]]:
    with path.open(encoding="utf-8-sig") as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                yield line, json.loads(text), None
            except ValueError as exc:
                yield line, None, f"not valid JSON ({exc.args[0] if exc.args else exc})"


def _read_csv(path: Path) -> Iterable[tuple[int, Any, str | None]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            obj: dict[str, Any] = dict(row)
            for key in ("key_facts", "gold_docs"):
                if obj.get(key):
                    try:
                        obj[key] = json.loads(obj[key])
                    except ValueError:
                        yield reader.line_num, None, f"{key} must be JSON, got {obj[key]!r}"
                        break
            else:
                yield reader.line_num, obj, None


def _row(obj: Any, line: int) -> Row:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("missing or empty 'question'")
    answer = obj.get("answer")
    if answer is not None and not isinstance(answer, str):
        raise ValueError(f"'answer' must be a string or null, got {type(answer).__name__}")
    facts = obj.get("key_facts") or []
    if not isinstance(facts, list) or not all(
        isinstance(f, list) and f and all(isinstance(s, str) and s for s in f) for f in facts
    ):
        raise ValueError("'key_facts' must be a list of non-empty lists of strings")
    gold = obj.get("gold_docs") or []
    if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
        raise ValueError("'gold_docs' must be a list of document ids")
    return Row(
        id=str(obj.get("id") or f"line-{line}"), question=question.strip(), answer=answer or None,
        key_facts=facts, gold_docs=gold, topic=str(obj.get("topic") or "all"), line=line,
    )


# ---- metric functions (small and pure, so they can be tested on hand-made cases) -------------


def fact_found(fact: list[str], text: str) -> bool:
    """A key fact (a list of accepted spellings) is in ``text`` when any spelling is."""
    norm = normalize_for_match(text)
    return any(normalize_for_match(s) in norm for s in fact)


def facts_found(facts: list[list[str]], text: str) -> list[bool]:
    return [fact_found(f, text) for f in facts]


def char_f1(prediction: str, reference: str) -> float:
    """Character-level F1 on normalised text (the usual metric for Chinese short answers)."""
    p, r = list(normalize_for_match(prediction)), list(normalize_for_match(reference))
    if not p or not r:
        return float(p == r)
    common: dict[str, int] = defaultdict(int)
    for ch in r:
        common[ch] += 1
    overlap = 0
    for ch in p:
        if common[ch] > 0:
            overlap += 1
            common[ch] -= 1
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(p), overlap / len(r)
    return 2 * precision * recall / (precision + recall)


def relevant(row: Row, doc_id: str, text: str) -> bool:
    """Gold documents decide relevance when given; otherwise the passage must hold every key fact."""
    if row.gold_docs:
        return doc_id in row.gold_docs
    return bool(row.key_facts) and all(facts_found(row.key_facts, text))


def first_relevant_rank(flags: list[bool]) -> int | None:
    for i, ok in enumerate(flags, 1):
        if ok:
            return i
    return None


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


# ---- running ---------------------------------------------------------------------------------


def evaluate_row(row: Row, answer: Answer, latency_ms: float) -> dict[str, Any]:
    """Everything measured about one question, as written to results.jsonl."""
    flags = [relevant(row, p.chunk.doc_id, p.chunk.text) for p in answer.passages]
    rank = first_relevant_rank(flags)
    found = facts_found(row.key_facts, answer.answer) if not answer.abstained else [False] * len(row.key_facts)
    n_pass = len(answer.passages)
    valid = [1 <= c.n <= n_pass for c in answer.citations]
    stated = [f for f, ok in zip(row.key_facts, found) if ok]
    precise = [
        bool(stated) and any(fact_found(f, answer.passages[c.n - 1].chunk.text) for f in stated)
        for c, ok in zip(answer.citations, valid) if ok
    ]
    reasons = []
    if row.answerable:
        if answer.abstained:
            reasons.append("abstained on an answerable question")
        elif row.key_facts and not all(found):
            reasons.append("missing facts: " + "; ".join("/".join(f) for f, ok in zip(row.key_facts, found) if not ok))
        if row.key_facts or row.gold_docs:
            if rank is None:
                reasons.append("no relevant passage retrieved")
    elif not answer.abstained:
        reasons.append("answered an unanswerable question")
    result = {
        "id": row.id, "topic": row.topic, "question": row.question, "answerable": row.answerable,
        "reference": row.answer, "answer": answer.answer, "abstained": answer.abstained,
        "retrieved": [{"doc_id": p.chunk.doc_id, "chunk_id": p.chunk.chunk_id, "score": round(p.score, 6),
                       "relevant": f} for p, f in zip(answer.passages, flags)],
        "first_relevant_rank": rank,
        "judgeable_retrieval": row.answerable and bool(row.key_facts or row.gold_docs),
        "facts_found": found,
        "correct": (not answer.abstained and all(found)) if row.key_facts else None,
        "citations": [c.to_dict() for c in answer.citations],
        "citation_valid": valid, "citation_precise": precise,
        "latency_ms": round(latency_ms, 1), "passed": not reasons, "reasons": reasons,
    }
    if row.answer and not row.key_facts:
        result["char_f1"] = 0.0 if answer.abstained else char_f1(answer.answer, row.answer)
        result["contains_reference"] = (not answer.abstained) and normalize_for_match(row.answer) in normalize_for_match(answer.answer)
    return result


def summarize(results: list[dict[str, Any]], k: int) -> dict[str, Any]:
    summary = _summary(results, k)
    topics = sorted({r["topic"] for r in results})
    summary["by_topic"] = {t: _summary([r for r in results if r["topic"] == t], k) for t in topics}
    return summary


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _summary(results: list[dict[str, Any]], k: int) -> dict[str, Any]:
    ret = [r for r in results if r["judgeable_retrieval"]]
    ranks = [r["first_relevant_rank"] for r in ret]
    recall = [
        sum(1 for x in r["retrieved"][:k] if x["relevant"]) / max(1, sum(1 for x in r["retrieved"] if x["relevant"]) or 1)
        for r in ret
    ]
    answerable = [r for r in results if r["answerable"]]
    unanswerable = [r for r in results if not r["answerable"]]
    with_facts = [r for r in answerable if r["correct"] is not None]
    valid = [v for r in results for v in r["citation_valid"]]
    precise = [v for r in results for v in r["citation_precise"]]
    lat = [r["latency_ms"] for r in results]
    out = {
        "n": len(results),
        "retrieval": {
            "k": k, "n": len(ret),
            "hit@1": _mean([float(x == 1) for x in ranks]),
            "hit@k": _mean([float(x is not None and x <= k) for x in ranks]),
            "mrr": _mean([1.0 / x if x else 0.0 for x in ranks]),
            "recall@k": _mean(recall),
        },
        "answer": {
            "n": len(with_facts),
            "accuracy": _mean([float(r["correct"]) for r in with_facts]),
            "char_f1": _mean([r["char_f1"] for r in answerable if "char_f1" in r]),
            "containment": _mean([float(r["contains_reference"]) for r in answerable if "contains_reference" in r]),
        },
        "citation": {"validity": _mean([float(v) for v in valid]), "precision": _mean([float(v) for v in precise])},
        "abstention": {
            "unanswerable_abstained": _mean([float(r["abstained"]) for r in unanswerable]),
            "answerable_abstained": _mean([float(r["abstained"]) for r in answerable]),
        },
        "latency_ms": {"p50": round(percentile(lat, 50), 1), "p95": round(percentile(lat, 95), 1)},
        "passed": _mean([float(r["passed"]) for r in results]),
    }
    return out


def run(rag: Any, dataset: Dataset, top_k: int | None = None, progress: bool = True,
        retrieval: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ask every question; return the summary and the per-question results."""
    from tqdm import tqdm  # noqa: PLC0415

    k = top_k or rag.settings.top_k
    results = []
    for row in tqdm(dataset.rows, desc="evaluating", unit="q", disable=not progress):
        t0 = time.perf_counter()
        answer = rag.ask(row.question, top_k=k, retrieval=retrieval)
        results.append(evaluate_row(row, answer, (time.perf_counter() - t0) * 1000))
    return summarize(results, k), results
