"""The offline default: answer with the passage sentences that best answer the question, verbatim.

It scores every sentence of the retrieved passages on three signals — how much
of the question's content (IDF-weighted) it holds, its dense similarity to the
question, and whether it holds the kind of answer asked for (a number, a year) —
and abstains when no sentence carries enough of the question.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass


from ..chunking import sentence_spans
from ..embedders import Embedder
from ..textnorm import content_words, has_cjk, normalize_for_match
from ..types import Passage
from .base import Draft, Quote, not_found_message

_NUMBER_Q = re.compile(r"多少|几|多大|多长|多高|多久|多远|多重|百分之|比例|增速|how many|how much|how long|how far", re.I)
_YEAR_Q = re.compile(r"哪一年|哪年|何年|什么时候|何时|what year|which year|\bwhen\b", re.I)
_HAS_NUMBER = re.compile(r"[0-9０-９]|[一二两三四五六七八九十百千万亿]+(?:个|家|年|天|人|项|部|度|倍|成|亿|万)")
_HAS_YEAR = re.compile(r"[0-9０-９]{2,4}\s*年|[一二三四五六七八九〇零]{2,4}年")


@dataclass(frozen=True)
class ExtractiveSettings:
    max_sentences: int = 2
    # Abstain below these; calibrated on shared/data/seed-dev.jsonl among the distractors.
    min_coverage: float = 0.5  # IDF-weighted share of question words found near the answer
    min_dense: float = 0.80  # cosine of the best passage, for questions with no word overlap


@dataclass
class _Candidate:
    n: int  # 1-based passage number
    start: int
    end: int
    text: str
    coverage: float = 0.0
    context: float = 0.0
    dense: float = 0.0
    typed: bool = True
    score: float = 0.0


def answer_type(question: str) -> str | None:
    if _YEAR_Q.search(question):
        return "year"
    if _NUMBER_Q.search(question):
        return "number"
    return None


def _type_ok(kind: str | None, text: str) -> bool:
    if kind == "year":
        return bool(_HAS_YEAR.search(text))
    if kind == "number":
        return bool(_HAS_NUMBER.search(text))
    return True


class ExtractiveGenerator:
    name = "extractive"

    def __init__(
        self, embedder: Embedder, idf: Callable[[str], float], settings: ExtractiveSettings | None = None
    ) -> None:
        self.embedder = embedder
        self.idf = idf
        self.settings = settings or ExtractiveSettings()

    def generate(self, question: str, passages: Sequence[Passage]) -> Draft:
        cands = self._candidates(passages)
        if not cands:
            return Draft(not_found_message(question), [], True, support=0.0)
        self._score(question, passages, cands)
        best = max(cands, key=lambda c: c.score)
        if self._abstain(question, best, passages):
            return Draft(not_found_message(question), [], True, support=best.score)
        chosen = self._extend(best, cands)
        text = " ".join(f"{_tidy(c.text)} [{c.n}]" for c in chosen)
        return Draft(text, [Quote(c.n, c.start, c.end) for c in chosen], False, support=best.score)

    def _candidates(self, passages: Sequence[Passage]) -> list[_Candidate]:
        out = []
        for n, p in enumerate(passages, 1):
            for s, e in sentence_spans(p.chunk.text):
                text = p.chunk.text[s:e].strip()
                if len(normalize_for_match(text)) >= 4:
                    lead = len(p.chunk.text[s:e]) - len(p.chunk.text[s:e].lstrip())
                    out.append(_Candidate(n, s + lead, s + lead + len(text), text))
        return out

    def _score(self, question: str, passages: Sequence[Passage], cands: list[_Candidate]) -> None:
        words = set(content_words(question))
        weights = {w: self.idf(w) for w in words}
        total = sum(weights.values()) or 1.0
        kind = answer_type(question)
        q = self.embedder.embed_queries([question])[0]
        sims = self.embedder.embed_passages([c.text for c in cands]) @ q
        texts = {n: normalize_for_match(p.chunk.text) for n, p in enumerate(passages, 1)}
        for c, sim in zip(cands, sims):
            norm = normalize_for_match(c.text)
            c.coverage = sum(w for word, w in weights.items() if word in norm) / total
            c.context = sum(w for word, w in weights.items() if word in texts[c.n]) / total
            c.dense = float(sim)
            c.typed = _type_ok(kind, c.text)
            rank_prior = 1.0 / (1 + 0.15 * (c.n - 1))
            c.score = (0.45 * c.coverage + 0.15 * c.context + 1.0 * c.dense) * rank_prior
            if kind and not c.typed:
                c.score -= 0.5

    def _abstain(self, question: str, best: _Candidate, passages: Sequence[Passage]) -> bool:
        s = self.settings
        if answer_type(question) and not best.typed:
            return True
        if has_cjk(question):
            return max(best.coverage, best.context) < s.min_coverage and best.dense < s.min_dense + 0.05
        dense = passages[best.n - 1].dense_score
        return (dense if dense is not None else best.dense) < s.min_dense

    def _extend(self, best: _Candidate, cands: list[_Candidate]) -> list[_Candidate]:
        """Add the following sentence when the best one is too short to stand alone."""
        chosen = [best]
        if self.settings.max_sentences > 1 and len(best.text) < 20:
            nxt = [c for c in cands if c.n == best.n and c.start >= best.end]
            if nxt:
                chosen.append(min(nxt, key=lambda c: c.start))
        return chosen


def _tidy(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()




__all__ = ["ExtractiveGenerator", "ExtractiveSettings", "answer_type"]
