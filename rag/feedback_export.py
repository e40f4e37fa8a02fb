"""Feedback records (``rag.feedback``) turned into a question set in ``rag eval``'s JSON Lines format.

Rules, one row per question (the fields are those of ``rag.evaluation.dataset``):

- the same question rated several times: the **latest record wins** (file order, which is the
  order of the appends under the lock; the earlier ones are counted as ``superseded``). Questions
  are compared after NFKC and with runs of whitespace as one space. This is also how the chat's
  thumbs-down followed by its reason/correction works: the second record replaces the first.
- a corrected answer (whatever the rating) → topic ``feedback-corrected``: ``answer`` is the
  correction, and ``key_facts`` is ``[[correction]]`` when the correction is short enough to be a
  fact (``is_fact``), else empty: the row is then scored by char F1 / containment of the reference.
  No ``gold_docs``: the cited documents belonged to the answer the user rejected.
- ``not_in_documents``, or a thumbs-up on an abstention (the user agrees the documents do not
  say) → topic ``feedback-unanswerable``: no answer, no key facts, no gold documents, which is what
  makes a row unanswerable (``Row.answerable``): ``rag eval`` then expects an abstention.
- a thumbs-up on an answer → topic ``feedback-up``: ``answer`` is the answer text without its
  ``[n]`` markers, ``gold_docs`` the documents it cited.
- a thumbs-down with neither a correction nor ``not_in_documents`` says only that the answer was
  wrong, not what is right: no row (``down_without_correction``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from rag.evaluation.metrics import strip_markers

MAX_FACT_CHARS = 30
# sentence punctuation (a comma unless it groups digits, as in 3,000): a text holding it is a sentence, not one fact
_SENTENCE = re.compile(r"[。！？；!?;，]|(?<!\d),|,(?!\d)")
SKIP_REASONS = ("superseded", "down_without_correction", "up_without_answer")


def is_fact(text: str) -> bool:
    """Whether a corrected answer can be a key fact: at most 30 characters and no sentence punctuation.

    A key fact must appear in the answer (after normalisation) for it to count as right; a short
    correction ("47天", "蓝风微短剧基地") is what any right answer states verbatim, but a corrected
    sentence would fail every paraphrase of it, so a long one is kept only as the reference ``answer``."""
    text = text.strip()
    return 0 < len(text) <= MAX_FACT_CHARS and not _SENTENCE.search(text)


def question_key(question: str) -> str:
    """What makes two records about "the same question": NFKC, whitespace runs as one space."""
    return " ".join(unicodedata.normalize("NFKC", question).split())


def export_rows(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The question-set rows of ``records`` (in the order of their latest records) and what was skipped, by reason."""
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        key = question_key(record["question"])
        if key in latest:
            skipped["superseded"] += 1
            del latest[key]  # re-inserted below: rows follow the order of the records that made them
        latest[key] = record
    rows = []
    for record in latest.values():
        row = row_of(record)
        if row is None:
            skipped["up_without_answer" if record["rating"] == "up" else "down_without_correction"] += 1
        else:
            rows.append(row)
    return rows, skipped


def row_of(record: dict[str, Any]) -> dict[str, Any] | None:
    """One record as a question-set row, or None when it says nothing an evaluation can check."""
    base = {"id": record["id"], "question": record["question"].strip()}
    correction = record.get("corrected_answer")
    if correction:
        return {**base, "answer": correction, "key_facts": [[correction]] if is_fact(correction) else [],
                "topic": "feedback-corrected"}
    if record.get("not_in_documents") or (record["rating"] == "up" and record.get("abstained")):
        return {**base, "answer": None, "topic": "feedback-unanswerable"}
    answer = " ".join(strip_markers(record.get("answer") or "").split())
    if record["rating"] != "up" or not answer:
        return None
    gold = list(dict.fromkeys(record.get("cited_doc_ids") or []))
    return {**base, "answer": answer, **({"gold_docs": gold} if gold else {}), "topic": "feedback-up"}


__all__ = ["MAX_FACT_CHARS", "SKIP_REASONS", "export_rows", "is_fact", "question_key", "row_of"]
