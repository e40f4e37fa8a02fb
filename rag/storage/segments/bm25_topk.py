"""The exact BM25 top k of one segment, skipping what cannot reach it (MaxScore).

Scoring every posting of every query term costs what the longest lists cost: at a million chunks a
question's terms hold 100k-500k postings, most of them in the two or three commonest terms, whose
weight in a chunk is small. MaxScore (Turtle and Flood, 1995) bounds each term's weight in any row
of the segment, from the largest count and the shortest row among its postings (kept per term at
write time: BM25's weight grows with the count and falls with the length). Terms are taken from the
largest bound down; once the bounds of the terms left add up to less than the k-th best score known
(``theta``), no row outside those already seen can enter the top k, so the remaining (long, common)
lists are only looked up for the rows already seen, and a row whose partial score plus what is left
stays below ``theta`` is dropped.

The result is the same as scoring everything: the same rows, and each row's score summed over the
query's terms in the query's order, as ``np.bincount`` summed them, so equal to the last bit.
Lucene and PISA do the same over compressed blocks; plain numpy arrays are what the segments hold,
so the pruning is written here over them (no library does MaxScore over numpy postings).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rag.storage import bm25

SLACK = 1e-9  # relative: bounds and partial sums are summed in another order than the scores (last-bit rounding)


@dataclass(frozen=True)
class TermList:
    """One query term's postings in one segment, read on demand."""

    j: int  # the term's position in the query: scores add the terms in this order
    idf: float
    lo: int  # its postings are rows ``lo:hi`` of the segment's posting arrays
    hi: int
    max_tf: int  # the largest count among them
    min_len: int  # the shortest row among them


class PostingSource(Protocol):
    """What ``top_k`` reads from a segment (``rag.storage.segments.segment.Segment`` is one)."""

    doclen: np.ndarray  # each row's length in terms

    def rows_span(self, lo: int, hi: int) -> np.ndarray:
        """Posting rows ``lo:hi``: one term's, ascending."""
        ...

    def tf_span(self, lo: int, hi: int) -> np.ndarray:
        """The counts of postings ``lo:hi``."""
        ...

    def lookup(self, lo: int, hi: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which of ``rows``, ascending, postings ``lo:hi`` hold; their counts there)."""
        ...


def top_k(src: PostingSource, terms: list[TermList], avgdl: float, k: int, allowed: np.ndarray | None,
          theta: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores) of the segment's ``k`` best rows among ``allowed`` (None: all), best first, ties by row.

    ``theta``: a score the k-th best row overall is known to reach (the other segments' k-th best), so
    rows scoring below it need not be found here. Rows scoring 0 are never returned."""
    if not terms or k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    bound = np.array([bm25.weight(float(t.max_tf), float(t.min_len), avgdl, t.idf) for t in terms]) * (1 + SLACK)
    order = np.argsort(-bound, kind="stable")
    rest = np.concatenate([np.cumsum(bound[order][::-1])[::-1], [0.0]])  # rest[i]: bounds of order[i:] together
    done = np.concatenate([[0.0], np.cumsum(bound[order])])  # done[i]: bounds of order[:i], above any partial score
    acc = np.zeros(len(src.doclen), np.float64)  # partial scores (in bound order): only for pruning
    is_seen = np.zeros(len(src.doclen), bool)
    got: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # term index -> (rows, weights), rows ascending
    seen: list[np.ndarray] = []  # the rows seen, each once
    i = 0
    # Phase 1: whole lists, while a row none of them holds could still reach theta
    while i < len(order) and rest[i] >= theta * (1 - SLACK):
        if done[i] > rest[i]:  # else no partial score can exceed what is left: it could not stop the phase
            theta = max(theta, _kth(acc, seen, k))
            if rest[i] < theta * (1 - SLACK):
                break
        t = terms[order[i]]
        rows = src.rows_span(t.lo, t.hi)
        tf = src.tf_span(t.lo, t.hi)
        if allowed is not None:
            keep = allowed[rows]
            rows, tf = rows[keep], tf[keep]
        w = _weights(src, rows, tf, avgdl, t.idf)
        got[int(order[i])] = (rows, w)
        acc[rows] += w  # a term's rows are distinct: plain fancy-index add is exact
        seen.append(rows[~is_seen[rows]])
        is_seen[rows] = True
        i += 1
    cand = np.sort(np.concatenate(seen)) if seen else np.zeros(0, np.int64)
    # Phase 2: the remaining lists, looked up for the rows already seen that can still reach theta
    for left in range(i, len(order)):
        cand = cand[acc[cand] + rest[left] >= theta * (1 - SLACK)]
        if not len(cand):
            break
        t = terms[order[left]]
        hit, tf = src.lookup(t.lo, t.hi, cand)
        w = _weights(src, cand[hit], tf, avgdl, t.idf)
        got[int(order[left])] = (cand[hit], w)
        acc[cand[hit]] += w
        theta = max(theta, _kth(acc, [cand], k))
    cand = cand[acc[cand] >= theta * (1 - SLACK)] if len(cand) else cand
    return _exact(terms, got, cand, k)


def _weights(src: PostingSource, rows: np.ndarray, tf: np.ndarray, avgdl: float, idf: float) -> np.ndarray:
    return bm25.weight_normed(tf.astype(np.float64), _norms(src, avgdl)[rows], idf)


# Each source's rows' length norms at the last avgdl asked: the same bits as computing them per posting,
# computed once per segment and view instead of once per posting weighed (a fifth of BM25's time at 10M).
_NORMS: weakref.WeakKeyDictionary[PostingSource, tuple[float, np.ndarray]] = weakref.WeakKeyDictionary()


def _norms(src: PostingSource, avgdl: float) -> np.ndarray:
    kept = _NORMS.get(src)
    if kept is None or kept[0] != avgdl:
        kept = (avgdl, bm25.length_norm(np.asarray(src.doclen, dtype=np.float64), avgdl))
        _NORMS[src] = kept
    return kept[1]


def _kth(acc: np.ndarray, parts: list[np.ndarray], k: int) -> float:
    """The k-th largest partial score among the rows in ``parts`` (distinct rows; 0 while fewer than k):
    partial scores only grow, so the k-th best final score is at least this."""
    n = sum(len(p) for p in parts)
    if n < k:
        return 0.0
    vals = acc[parts[0] if len(parts) == 1 else np.concatenate(parts)]
    return float(np.partition(vals, n - k)[n - k])


def _exact(terms: list[TermList], got: dict[int, tuple[np.ndarray, np.ndarray]], cand: np.ndarray,
           k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's score summed over the terms in query order (as ``np.bincount`` over the lists laid
    end to end in query order sums it: the same bits), then the best ``k``, ties by row."""
    scores = np.zeros(len(cand), np.float64)
    for ti in sorted(got, key=lambda ti: terms[ti].j):
        rows, w = got[ti]
        if not len(rows):
            continue
        pos = np.minimum(np.searchsorted(rows, cand), len(rows) - 1)
        hit = rows[pos] == cand
        scores[hit] += w[pos[hit]]
    keep = scores > 0
    cand, scores = cand[keep], scores[keep]
    order = np.lexsort((cand, -scores))[:k]
    return cand[order].astype(np.int64), scores[order]


__all__ = ["PostingSource", "TermList", "top_k"]
