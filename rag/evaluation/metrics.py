"""Exactly what each metric of ``rag eval`` means, and the functions that compute it.

The question set (its fields, and how a malformed row is reported) is described in
``rag.evaluation.dataset``; asking the questions is ``rag.evaluation.run``.

Matching
    Text is compared in normalised form (``rag.text.normalize.normalize_for_match``: whitespace
    removed, full-width ASCII folded, lower case), so a fact cut by a layout break or written with
    full-width digits still counts. A fact is *stated* in a text when any of its spellings occurs
    in it. Citation markers ``[n]`` are removed from an answer before facts are looked for, so the
    fact "1" is not found in the marker "[1]".

Kinds of rows
    answerable    has a reference answer, key facts or gold documents.
    unanswerable  has none of them: the documents do not answer it and the system should abstain.
    judgeable     (retrieval) has key facts or gold documents, so a passage's relevance can be decided.

Retrieval, over judgeable rows (``retrieval.n``); ``k`` passages are retrieved (``--top-k`` or the
``top_k`` setting) and ranked 1..k
    relevant      a passage whose document is in ``gold_docs`` when those are given; otherwise a
                  passage that states every key fact by itself.
    hit@1         share of rows whose first passage is relevant.
    hit@k         share of rows with a relevant passage among the k.
    mrr           mean of 1 / rank of the first relevant passage, 0 when there is none (MRR@k).
    recall@k      mean share of what the row needs that the k passages hold between them: of its
                  gold documents when given, otherwise of its key facts (a fact may be in any passage).

Answers, over answerable rows
    accuracy      over rows with key facts (``answer.n``): share answered (not abstained) whose
                  answer states every key fact.
    char_f1       over rows with a reference but no key facts: character-level F1 of the answer
                  against the reference (0 when abstained).
    containment   over those same rows: share whose answer contains the whole reference.

Citations, pooled over every citation of every row (``citation.n``; a row that cites more weighs more)
    citation      each ``Citation`` of the answer, plus each ``[n]`` marker in the answer text that
                  points outside passages 1..k and has no ``Citation`` (always invalid).
    validity      share of citations that point at a passage that was given: 1 <= n <= number of
                  passages, and the cited chunk is passage n's.
    precision     share of citations that are valid and whose passage supports the answer: it
                  states a key fact that the answer states; for rows without key facts, it is
                  from a gold document, or (no gold documents either) it contains the reference.
                  Citations of an answer to an unanswerable row are never precise.

Abstention
    unanswerable_abstained  share of unanswerable rows (``n_unanswerable``) where the system
                            abstained: higher is better.
    answerable_abstained    share of answerable rows (``n_answerable``) where it abstained: lower is better.

Latency
    wall-clock milliseconds of each ``rag.ask`` call as measured here (query embedding, retrieval
    and generation; never the judge). ``p50``/``p95`` are numpy's linearly interpolated percentiles
    over all rows.

Passing
    a row passes when it has no failure reason. Reasons: abstained on an answerable row; missing
    key facts; no relevant passage retrieved (judgeable rows); answered an unanswerable row; a
    ``[n]`` marker that points at no passage; an error raised while asking (scored as an empty
    answer; the run goes on, unless the first three questions all fail, which is a setting problem).
    ``passed`` is the share of rows that pass.

Every rate is rounded to 4 decimals and is null when no row qualifies. ``by_topic`` repeats the
summary for each topic. The optional LLM judge (``rag.evaluation.judge``) is reported apart, under
``judge``, and never changes any of the figures above.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import numpy as np

from rag.evaluation.dataset import Row
from rag.text.normalize import normalize_for_match
from rag.types import Answer

_MARKER = re.compile(r"\[(\d+)\]")


# ---- metric functions (small and pure, so they can be tested on hand-made cases) -------------


def fact_found(fact: list[str], text: str) -> bool:
    """A key fact (a list of accepted spellings) is in ``text`` when any spelling is."""
    norm = normalize_for_match(text)
    return any(normalize_for_match(s) in norm for s in fact)


def facts_found(facts: list[list[str]], text: str) -> list[bool]:
    return [fact_found(f, text) for f in facts]


def strip_markers(answer: str) -> str:
    """The answer without its ``[n]`` citation markers, for fact matching."""
    return _MARKER.sub(" ", answer)


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


def retrieval_recall(row: Row, passages: list[tuple[str, str]]) -> float:
    """Share of the gold documents (or else key facts) that the (doc_id, text) passages hold between them."""
    if row.gold_docs:
        docs = {d for d, _ in passages}
        return sum(g in docs for g in row.gold_docs) / len(row.gold_docs)
    if not row.key_facts:
        return 0.0
    joined = "\n".join(t for _, t in passages)
    return sum(facts_found(row.key_facts, joined)) / len(row.key_facts)


def citation_supports(row: Row, stated: list[list[str]], doc_id: str, text: str) -> bool:
    """Whether a cited passage backs the answer (see "precision" in the module docstring)."""
    if not row.answerable:
        return False
    if row.key_facts:
        return any(fact_found(f, text) for f in stated)
    if row.gold_docs:
        return doc_id in row.gold_docs
    return normalize_for_match(row.answer or "") in normalize_for_match(text)


def first_relevant_rank(flags: list[bool]) -> int | None:
    for i, ok in enumerate(flags, 1):
        if ok:
            return i
    return None


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


# ---- one row ---------------------------------------------------------------------------------


def evaluate_row(row: Row, answer: Answer, latency_ms: float) -> dict[str, Any]:
    """Everything measured about one question, as written to results.jsonl."""
    passages = answer.passages
    flags = [relevant(row, p.chunk.doc_id, p.chunk.text) for p in passages]
    rank = first_relevant_rank(flags)
    text = strip_markers(answer.answer)
    found = [False] * len(row.key_facts) if answer.abstained else facts_found(row.key_facts, text)
    stated = [f for f, ok in zip(row.key_facts, found) if ok]
    valid, precise = [], []
    for c in answer.citations:
        ok = 1 <= c.n <= len(passages) and passages[c.n - 1].chunk.chunk_id == c.chunk_id
        valid.append(ok)
        if ok:
            chunk = passages[c.n - 1].chunk
            precise.append(citation_supports(row, stated, chunk.doc_id, chunk.text))
    # A marker the generator wrote but could not resolve to a passage is a citation too, and invalid.
    cited = {c.n for c in answer.citations}
    dangling = sorted({int(m) for m in _MARKER.findall(answer.answer)} - cited - set(range(1, len(passages) + 1)))
    valid += [False] * len(dangling)
    judgeable = row.answerable and bool(row.key_facts or row.gold_docs)
    reasons = []
    if row.answerable:
        if answer.abstained:
            reasons.append("abstained on an answerable question")
        elif row.key_facts and not all(found):
            reasons.append("missing facts: " + "; ".join("/".join(f) for f, ok in zip(row.key_facts, found) if not ok))
        if judgeable and rank is None:
            reasons.append("no relevant passage retrieved")
    elif not answer.abstained:
        reasons.append("answered an unanswerable question")
    if dangling:
        reasons.append("citation markers without a passage: " + ", ".join(f"[{n}]" for n in dangling))
    result = {
        "id": row.id, "topic": row.topic, "question": row.question, "answerable": row.answerable,
        "reference": row.answer, "key_facts": row.key_facts, "answer": answer.answer, "abstained": answer.abstained,
        "retrieved": [{"doc_id": p.chunk.doc_id, "chunk_id": p.chunk.chunk_id, "score": round(float(p.score), 6),
                       "relevant": f, "text": p.chunk.text} for p, f in zip(passages, flags)],
        "first_relevant_rank": rank,
        "judgeable_retrieval": judgeable,
        "retrieval_recall": (retrieval_recall(row, [(p.chunk.doc_id, p.chunk.text) for p in passages])
                             if judgeable else None),
        "facts_found": found,
        "correct": (not answer.abstained and all(found)) if row.key_facts else None,
        "citations": [c.to_dict() for c in answer.citations],
        "citation_valid": valid, "citation_precise": precise,
        "latency_ms": round(latency_ms, 1), "passed": not reasons, "reasons": reasons,
        # which generator really answered (an LLM may fall back to extractive) and why, as the pipeline says
        "generator": getattr(answer, "generator", None), "warnings": list(answer.warnings),
    }
    if row.answer and not row.key_facts:
        result["char_f1"] = 0.0 if answer.abstained else char_f1(text, row.answer)
        result["contains_reference"] = (not answer.abstained
                                        and normalize_for_match(row.answer) in normalize_for_match(text))
    return result


def error_row(row: Row, error: BaseException, latency_ms: float) -> dict[str, Any]:
    """A row whose ``ask`` raised: scored as an empty, non-abstaining answer, with the error as its first reason."""
    result = evaluate_row(row, Answer(row.question, "", False, [], [], {}), latency_ms)
    result["error"] = str(error)
    result["reasons"] = [f"error: {error}", *result["reasons"]]
    result["passed"] = False
    return result


# ---- summaries -------------------------------------------------------------------------------


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
    answerable = [r for r in results if r["answerable"]]
    unanswerable = [r for r in results if not r["answerable"]]
    with_facts = [r for r in answerable if r["correct"] is not None]
    valid = [v for r in results for v in r["citation_valid"]]
    # precision is over every citation, so invalid ones count as imprecise
    precise = [v for r in results for v in r["citation_precise"]] + [False] * sum(not v for v in valid)
    lat = [r["latency_ms"] for r in results]
    return {
        "n": len(results),
        "retrieval": {
            "k": k, "n": len(ret),
            "hit@1": _mean([float(x == 1) for x in ranks]),
            "hit@k": _mean([float(x is not None and x <= k) for x in ranks]),
            "mrr": _mean([1.0 / x if x else 0.0 for x in ranks]),
            "recall@k": _mean([float(r.get("retrieval_recall") or 0.0) for r in ret]),
        },
        "answer": {
            "n": len(with_facts),
            "accuracy": _mean([float(r["correct"]) for r in with_facts]),
            "char_f1": _mean([r["char_f1"] for r in answerable if "char_f1" in r]),
            "containment": _mean([float(r["contains_reference"]) for r in answerable if "contains_reference" in r]),
        },
        "citation": {"n": len(valid), "validity": _mean([float(v) for v in valid]),
                     "precision": _mean([float(v) for v in precise])},
        "abstention": {
            "unanswerable_abstained": _mean([float(r["abstained"]) for r in unanswerable]),
            "answerable_abstained": _mean([float(r["abstained"]) for r in answerable]),
            "n_unanswerable": len(unanswerable), "n_answerable": len(answerable),
        },
        "latency_ms": {"p50": round(percentile(lat, 50), 1), "p95": round(percentile(lat, 95), 1)},
        "passed": _mean([float(r["passed"]) for r in results]),
    }
