"""Citation markers in generated answers: parse them, map them to passages, and check them.

An LLM may cite the wrong passage, cite nothing, or state a number that no
passage holds.  Each cited sentence is checked against its passages by the
overlap of its key terms and by its numbers, so an answer is never passed off
as grounded when it is not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rag.catalogue import english
from rag.text.normalize import content_words, normalize_for_match, passage_match_form
from rag.text.sentences import sentence_spans
from rag.types import Citation, Passage

# [1] [1, 2] [1-3] 【1】 ［1］ [^1]
MARKER = re.compile(r"[\[【［]\^?\s*(\d{1,3}(?:\s*[,，、\-–~]\s*\d{1,3})*)\s*[\]】］]")
_TAIL = re.compile(r"[ \t\u3000]*" + MARKER.pattern)  # a marker after a sentence, spaces between
NUMBER = re.compile(r"\d+(?:[.,]\d+)*%?")
SUPPORTED = 0.5  # below this share of a sentence's key terms in its passage, it is flagged


@dataclass
class Checked:
    text: str  # the answer, markers kept as the model wrote them
    citations: list[Citation]
    support: float | None  # mean support of the citations; None when nothing is cited
    warnings: list[str] = field(default_factory=list)
    out_of_range: list[int] = field(default_factory=list)


def marker_numbers(group: str) -> list[int]:
    nums: list[int] = []
    for part in re.split(r"\s*[,，、]\s*", group.strip()):
        bounds = re.split(r"\s*[\-–~]\s*", part)
        if len(bounds) == 2 and all(b.isdigit() for b in bounds) and int(bounds[0]) <= int(bounds[1]) <= int(bounds[0]) + 20:
            nums.extend(range(int(bounds[0]), int(bounds[1]) + 1))
        elif part.isdigit():
            nums.append(int(part))
    return nums


def _claims(answer: str) -> list[tuple[str, list[int]]]:
    """(sentence without markers, passage numbers it cites) for each sentence of the answer."""
    out = []
    taken = 0  # the end of the markers given to the sentence before
    for s, e in sentence_spans(answer):
        s = max(s, taken)  # they are not the next sentence's too
        if s >= e:
            continue
        sentence = answer[s:e]
        # A marker right after the sentence end ("…。[1]", "…。 [1]") belongs to the sentence before it.
        tail = _TAIL.match(answer, e)
        while tail:
            sentence += tail.group(0)
            e = tail.end()
            tail = _TAIL.match(answer, e)
        taken = e
        nums = [n for m in MARKER.finditer(sentence) for n in marker_numbers(m.group(1))]
        claim = MARKER.sub("", sentence).strip()
        if claim:
            out.append((claim, nums))
        elif out:  # markers on a line of their own cite the sentence before them
            out[-1][1].extend(nums)
    return out


def _overlap(claim: str, passage_norm: str) -> float:
    terms = set(content_words(claim))
    if not terms:
        return 1.0
    return sum(1 for t in terms if normalize_for_match(t) in passage_norm) / len(terms)


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in NUMBER.findall(normalize_for_match(text))}


def _best_quote(claim: str, passage: Passage) -> tuple[int, int]:
    """The passage sentence that best backs the claim (offsets within the chunk text)."""
    text = passage.chunk.text
    spans = list(sentence_spans(text)) or [(0, len(text))]
    return max(spans, key=lambda se: _overlap(claim, normalize_for_match(text[se[0] : se[1]])))


def check(answer: str, passages: Sequence[Passage]) -> Checked:
    """Map markers to passages and score how well each cited sentence is supported."""
    k = len(passages)
    norms = [passage_match_form(p.chunk.text) for p in passages]
    citations: list[Citation] = []
    warnings: list[str] = []
    out_of_range: set[int] = set()
    supports: list[float] = []
    uncited = 0
    for claim, nums in _claims(answer):
        valid = [n for n in dict.fromkeys(nums) if 1 <= n <= k]
        out_of_range.update(n for n in nums if not 1 <= n <= k)
        if not valid:
            if len(normalize_for_match(claim)) > 8:
                uncited += 1
            continue
        claim_numbers = _numbers(claim)
        cited_numbers = set().union(*(_numbers(passages[n - 1].chunk.text) for n in valid))
        for missing in sorted(claim_numbers - cited_numbers):
            warnings.append(english("answer.number_not_cited", number=missing))
        for n in valid:
            p = passages[n - 1]
            score = _overlap(claim, norms[n - 1])
            if claim_numbers - _numbers(p.chunk.text):
                score *= 0.5
            supports.append(score)
            if score < SUPPORTED:
                warnings.append(english("answer.unsupported_claim", n=n, claim=_short(claim), support=score))
            s, e = _best_quote(claim, p)
            quote = p.chunk.text[s:e].strip()
            lead = len(p.chunk.text[s:e]) - len(p.chunk.text[s:e].lstrip())
            citations.append(Citation.of(n, p.chunk, s + lead, s + lead + len(quote), round(score, 3)))
    if out_of_range:
        warnings.append(english("answer.citation_out_of_range", numbers=", ".join(map(str, sorted(out_of_range))), k=k))
    if not citations:
        warnings.append(english("answer.no_citation"))
    elif uncited:
        warnings.append(english("answer.uncited_sentences", n=uncited))
    support = round(sum(supports) / len(supports), 3) if supports else None
    return Checked(answer, citations, support, warnings, sorted(out_of_range))


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
