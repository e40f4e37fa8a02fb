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

SQuAD-format rows (``rag.evaluation.dataset``: gold answer texts, the question's paragraph)
    squad form    NFKC, lower case, whitespace and punctuation (Unicode categories P*) removed.
    relevant      a passage from the question's paragraph (``gold_docs``) that contains a gold
                  answer, both in squad form.
    contains      over answerable rows (``span.n``): answered, and the answer text without its
                  citation markers contains a gold answer, both in squad form.
    span_f1       over the same rows: CMRC 2018's official F1 (its ``calc_f1_score``): the text
                  and each gold answer are cut into Chinese characters, punctuation dropped, runs
                  of other characters kept as words; with L the length of their longest common
                  substring (in those pieces), P = L / len(prediction), R = L / len(gold),
                  F1 = 2PR / (P + R), 0 when L is 0; the maximum over the gold answers; 0 when
                  abstained. The prediction is ``answer["answer_span"]["text"]`` when the answer
                  has that field, else the answer text without citation markers; ``f1_source``
                  says which (``mixed`` with the counts when both occurred).
    held out      with ``--holdout-every N`` every N-th paragraph is not indexed: its questions
                  are unanswerable (topic ``left-out``) and count for abstention only; the others
                  are topic ``kept``. ``by_topic`` reports the two groups apart.

Confidence curve ("answered share vs accuracy of the answers given")
    when answers carry a confidence (``answer["confidence"]``, else ``answer["support"]``;
    ``field`` names the one used), the answered rows are sorted by it, highest first. Each point
    keeps the top m of them as if every other row abstained: ``threshold`` is the m-th
    confidence, ``answered`` = m / all rows, ``accuracy`` = share of the m that are right (an
    answerable row whose answer is correct: ``contains`` for SQuAD rows, all key facts otherwise;
    an answer to an unanswerable row is wrong). Points for m at every twentieth of the answered.

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
    over all rows. ``stages_ms`` splits it by the answer's own ``timings``: ``retrieve``
    (``retrieve_ms``: query embedding and retrieval) and ``generate`` (``generate_ms``: the answer
    stage alone), p50/p95 over the rows that report them.

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
import unicodedata
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


def squad_form(text: str) -> str:
    """NFKC, lower case, whitespace and punctuation removed: how gold answers are looked for."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P"))


def contains_gold(answers: list[str], text: str) -> bool:
    """Whether ``text`` holds any gold answer (squad form; an answer that normalises to nothing never counts)."""
    norm = squad_form(text)
    return any(g and g in norm for g in (squad_form(a) for a in answers))


# CMRC 2018's evaluation script: these are dropped, and split Chinese text into pieces.
_CMRC_PUNCT = frozenset("-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』")
_CMRC_CJK = re.compile(r"[\u4e00-\u9fa5]")
_WORD = re.compile(r"\w+(?:[.,'’]\w+)*|[^\w\s]")


def cmrc_segments(text: str) -> list[str]:
    """CMRC's ``mixed_segmentation(rm_punc=True)``: each Chinese character a piece, other runs cut into words.

    The official script cuts the other runs with NLTK's word tokenizer; here a regular expression
    does it (words with inner dots or commas kept whole, every other symbol a piece), which agrees
    on the digits, Latin words and symbols these answers hold.
    """
    out: list[str] = []
    run = ""
    for ch in str(text).lower().strip():
        if ch in _CMRC_PUNCT:
            continue
        if _CMRC_CJK.match(ch):
            out += _WORD.findall(run)
            run = ""
            out.append(ch)
        else:
            run += ch
    return out + _WORD.findall(run)


def _lcs_len(a: list[str], b: list[str]) -> int:
    """Length of the longest common substring (contiguous) of two piece lists."""
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def cmrc_f1(prediction: str, answers: list[str]) -> float:
    """CMRC 2018's official F1 of one prediction: longest-common-substring based, max over the gold answers."""
    pred = cmrc_segments(prediction)
    scores = [0.0]
    for gold in answers:
        ref = cmrc_segments(gold)
        lcs = _lcs_len(ref, pred)
        if lcs:
            p, r = lcs / len(pred), lcs / len(ref)
            scores.append(2 * p * r / (p + r))
    return max(scores)


def confidence_curve(results: list[dict[str, Any]], steps: int = 20) -> list[dict[str, Any]]:
    """Answered share vs accuracy as the confidence threshold rises (see the module docstring)."""
    answered = sorted((r for r in results if not r["abstained"] and r.get("confidence") is not None),
                      key=lambda r: -float(r["confidence"]))
    if not answered:
        return []
    points, right = [], 0
    cuts = sorted({max(1, round(len(answered) * i / steps)) for i in range(1, steps + 1)})
    for m, r in enumerate(answered, 1):
        right += bool(r["answerable"] and r.get("correct_answer"))
        if m in cuts:
            points.append({"threshold": round(float(r["confidence"]), 4), "n": m,
                           "answered": round(m / len(results), 4), "accuracy": round(right / m, 4)})
    return points


def relevant(row: Row, doc_id: str, text: str) -> bool:
    """Gold documents decide relevance when given (with gold answers, the passage must hold one too);
    otherwise the passage must hold every key fact."""
    if row.gold_docs and row.answers:
        return doc_id in row.gold_docs and contains_gold(row.answers, text)
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
    if row.answerable and row.answers and not answer.abstained and not contains_gold(row.answers, text):
        reasons.append("no gold answer in the answer")
    elif not row.answerable and not answer.abstained:
        reasons.append("answered an unanswerable question")
    if dangling:
        reasons.append("citation markers without a passage: " + ", ".join(f"[{n}]" for n in dangling))
    result = {
        "id": row.id, "topic": row.topic, "question": row.question, "answerable": row.answerable,
        "reference": row.answer or (" / ".join(row.answers) if row.answers else None), "key_facts": row.key_facts, "answer": answer.answer, "abstained": answer.abstained,
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
    d = answer.to_dict()
    result["timings"] = {k: round(float(v), 2) for k, v in (answer.timings or {}).items()}
    conf = d.get("confidence")
    field = "confidence" if conf is not None else "support"
    conf = d.get(field)
    result["confidence"] = float(conf) if isinstance(conf, (int, float)) else None
    result["confidence_field"] = field if result["confidence"] is not None else None
    if row.answers:
        span = d.get("answer_span")
        source = "answer_span" if isinstance(span, dict) and isinstance(span.get("text"), str) else "answer_text"
        predicted = span["text"] if source == "answer_span" else text
        result.update({
            "paragraph": row.paragraph, "held_out": row.held_out, "gold_answers": row.answers,
            "contains": not answer.abstained and contains_gold(row.answers, text),
            "span_f1": 0.0 if answer.abstained else round(cmrc_f1(predicted, row.answers), 4),
            "f1_source": None if answer.abstained else source,
            "answer_span": span if source == "answer_span" else None,
        })
        result["correct_answer"] = result["contains"]
    else:
        result["correct_answer"] = result["correct"]
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
    curve = confidence_curve(results)
    fields = sorted({r["confidence_field"] for r in results if r.get("confidence_field")})
    summary["confidence_curve"] = {"field": "/".join(fields) or None, "points": curve}
    topics = sorted({r["topic"] for r in results})
    summary["by_topic"] = {t: _summary([r for r in results if r["topic"] == t], k) for t in topics}
    return summary


def _f1_source(rows: list[dict[str, Any]]) -> str | None:
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        if r.get("f1_source"):
            counts[r["f1_source"]] += 1
    if len(counts) > 1:
        return "mixed (" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ")"
    return next(iter(counts), None)


def _stage(results: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    values = [float(r["timings"][key]) for r in results if key in (r.get("timings") or {})]
    if not values:
        return {"p50": None, "p95": None}
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1)}


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _summary(results: list[dict[str, Any]], k: int) -> dict[str, Any]:
    ret = [r for r in results if r["judgeable_retrieval"]]
    ranks = [r["first_relevant_rank"] for r in ret]
    answerable = [r for r in results if r["answerable"]]
    unanswerable = [r for r in results if not r["answerable"]]
    with_facts = [r for r in answerable if r["correct"] is not None]
    squad = [r for r in answerable if "contains" in r]
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
        "span": {
            "n": len(squad),
            "contains": _mean([float(r["contains"]) for r in squad]),
            "span_f1": _mean([float(r["span_f1"]) for r in squad]),
            "f1_source": _f1_source(squad),
        },
        "latency_ms": {"p50": round(percentile(lat, 50), 1), "p95": round(percentile(lat, 95), 1)},
        "stages_ms": {"retrieve": _stage(results, "retrieve_ms"), "generate": _stage(results, "generate_ms")},
        "passed": _mean([float(r["passed"]) for r in results]),
    }
