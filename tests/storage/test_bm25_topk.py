"""The segments' pruned BM25 top k (MaxScore) against scoring every posting: the same rows, the same
scores to the last bit, whatever k, filter, deletions, repeated terms or threshold; and segments
written before the per-term bounds still answer the same."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rag.storage import bm25
from rag.storage.segments import bm25_topk
from rag.storage.segments.bm25_topk import TermList
from rag.storage.segments.segment import Rows, Segment, write_segment


class Lists:
    """A posting source in memory: term t holds rows ``rows[t]`` (ascending) with counts ``tf[t]``."""

    def __init__(self, rng: np.random.Generator, n_rows: int, n_terms: int) -> None:
        self.doclen = rng.integers(5, 400, n_rows).astype(np.int64)
        self.rows_of, self.tf_of, self.lo = [], [], []
        at = 0
        for t in range(n_terms):
            size = int(min(n_rows, rng.zipf(1.3) * 3 + (n_rows // 2 if t == 0 else 0)))
            rows = np.sort(rng.choice(n_rows, size, replace=False)).astype(np.int32)
            tf = np.minimum(rng.geometric(0.5 if t % 3 else 0.2, size), 255).astype(np.uint8)
            self.rows_of.append(rows)
            self.tf_of.append(tf)
            self.lo.append(at)
            at += size
        self.all_rows = np.concatenate(self.rows_of)
        self.all_tf = np.concatenate(self.tf_of)

    def rows_span(self, lo: int, hi: int) -> np.ndarray:
        return self.all_rows[lo:hi]

    def tf_span(self, lo: int, hi: int) -> np.ndarray:
        return self.all_tf[lo:hi]

    def lookup(self, lo: int, hi: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        span = self.all_rows[lo:hi]
        pos = np.minimum(np.searchsorted(span, rows), hi - lo - 1)
        hit = span[pos] == rows
        return hit, self.all_tf[lo:hi][pos[hit]]

    def term(self, j: int, t: int, idf: float, loose: bool = False) -> TermList:
        rows, tf = self.rows_of[t], self.tf_of[t]
        max_tf, min_len = (255, int(self.doclen.min())) if loose else (int(tf.max()), int(self.doclen[rows].min()))
        return TermList(j, idf, self.lo[t], self.lo[t] + len(rows), max_tf, min_len)


def exhaustive(src: Lists, terms: list[TermList], avgdl: float, k: int, allowed) -> tuple[np.ndarray, np.ndarray]:
    """Today's rule before the pruning: every posting weighed, summed by ``np.bincount`` in query order."""
    rows = [src.rows_span(t.lo, t.hi) for t in terms]
    weights = [bm25.weight(src.tf_span(t.lo, t.hi).astype(np.float64), src.doclen[r], avgdl, t.idf)
               for t, r in zip(terms, rows)]
    scores = np.bincount(np.concatenate(rows), weights=np.concatenate(weights), minlength=len(src.doclen))
    if allowed is not None:
        scores[~allowed] = 0.0
    hit = np.flatnonzero(scores > 0)
    order = np.lexsort((hit, -scores[hit]))[:k]
    return hit[order], scores[hit][order]


@pytest.mark.parametrize("seed", range(12))
def test_the_pruned_top_k_is_the_exhaustive_one_to_the_bit(seed):
    rng = np.random.default_rng(seed)
    src = Lists(rng, n_rows=int(rng.integers(50, 3000)), n_terms=int(rng.integers(1, 9)))
    py = random.Random(seed)
    picks = [py.randrange(len(src.rows_of)) for _ in range(py.randint(1, 7))]  # may repeat a term
    terms = [src.term(j, t, bm25.idf(len(src.rows_of[t]), len(src.doclen)), loose=seed % 4 == 3)
             for j, t in enumerate(picks)]
    avgdl = float(src.doclen.mean())
    allowed = rng.random(len(src.doclen)) < 0.6 if seed % 2 else None
    for k in (1, 3, 10, 100, 10_000):
        want_rows, want_scores = exhaustive(src, terms, avgdl, k, allowed)
        got_rows, got_scores = bm25_topk.top_k(src, terms, avgdl, k, allowed)
        assert got_rows.tolist() == want_rows.tolist()
        assert got_scores.tobytes() == want_scores.tobytes()
        # a threshold from earlier segments (at most the k-th best overall): the lists it leaves essential
        # are weighed together; the rows reaching it are the same, to the bit
        for theta in {float(want_scores[-1]) * f for f in (0.3, 0.9, 1.0)} if len(want_scores) else ():
            got_rows, got_scores = bm25_topk.top_k(src, terms, avgdl, k, allowed, theta)
            reach = want_scores >= theta
            assert got_rows.tolist() == want_rows[reach].tolist()
            assert got_scores.tobytes() == want_scores[reach].tobytes()


def test_a_known_threshold_only_drops_rows_below_it():
    rng = np.random.default_rng(7)
    src = Lists(rng, 2000, 6)
    terms = [src.term(j, t, bm25.idf(len(src.rows_of[t]), 2000)) for j, t in enumerate(range(6))]
    avgdl = float(src.doclen.mean())
    rows, scores = exhaustive(src, terms, avgdl, 2000, None)
    theta = float(scores[40])
    got_rows, got_scores = bm25_topk.top_k(src, terms, avgdl, 10, None, theta)
    assert got_rows.tolist() == rows[:10].tolist()  # the top 10 reach theta (the 41st score)
    assert got_scores.tobytes() == scores[:10].tobytes()
    above = bm25_topk.top_k(src, terms, avgdl, 10, None, float(scores[0]) * 2)
    assert len(above[0]) == 0  # no row reaches twice the best score: none is returned


def test_the_pruning_reads_less_than_every_posting():
    """One long common list and a few rare ones: the long list is looked up, not weighed whole."""
    rng = np.random.default_rng(3)
    src = Lists(rng, 50_000, 5)
    weighed = []
    real = bm25_topk._weights
    try:
        bm25_topk._weights = lambda s, rows, tf, avgdl, idf: weighed.append(len(rows)) or real(s, rows, tf, avgdl, idf)
        terms = [src.term(j, t, bm25.idf(len(src.rows_of[t]), 50_000)) for j, t in enumerate(range(5))]
        bm25_topk.top_k(src, terms, float(src.doclen.mean()), 10, None)
    finally:
        bm25_topk._weights = real
    assert sum(weighed) < len(src.rows_of[0]) // 4  # the common term holds half of the rows


def test_segments_store_their_term_bounds_and_older_segments_still_answer(tmp_path):
    """A written segment keeps each term's largest count and shortest row; without those files (a segment
    written before them) the bounds fall back to the loosest true ones and the top k is unchanged."""
    rng = np.random.default_rng(11)
    n, n_terms = 600, 40
    term_of = rng.integers(0, n_terms, (n, 30)) ** 2 % n_terms  # skewed: some terms common
    post_term, post_row, post_tf = [], [], []
    for r in range(n):
        t, c = np.unique(term_of[r], return_counts=True)
        post_term += t.tolist()
        post_row += [r] * len(t)
        post_tf += c.tolist()
    rows = Rows([b"{}\n"] * n, [("d", "s")], np.zeros(n, np.int32), rng.standard_normal((n, 4)).astype(np.float32),
                np.arange(1, n_terms + 1, dtype=np.uint64), np.array(post_term), np.array(post_row),
                np.array(post_tf, np.uint8), np.full(n, 30, np.int32), np.full(n, -1, np.int32),
                np.full(n, -1, np.int32), [], [])
    write_segment(tmp_path / "seg", rows, 0, ann=False)
    seg = Segment(tmp_path / "seg")
    assert seg.a["term_ptr"].dtype == np.int32 and seg.a["offsets"].dtype == np.int32  # positions that fit: 4 bytes
    used = np.unique(post_term)
    assert 6 < len(used) < n_terms  # a skewed vocabulary: a term no row holds is not in the segment
    spans = seg.term_lists(np.arange(1, n_terms + 1, dtype=np.uint64))
    for t, sp in enumerate(spans):
        held = np.array(post_term) == t
        if not held.any():
            assert sp is None
            continue
        assert sp is not None and sp.max_tf == max(np.array(post_tf)[held]) and sp.min_len == 30
    asked = (used[:6] + 1).astype(np.uint64)
    terms = [TermList(j, 1.0 + j, sp.lo, sp.hi, sp.max_tf, sp.min_len) for j, sp in enumerate(seg.term_lists(asked))]
    want = bm25_topk.top_k(seg, terms, 30.0, 5, None)
    seg.close()
    for name in ("term_maxtf.npy", "term_minlen.npy"):
        (tmp_path / "seg" / name).unlink()
    old = Segment(tmp_path / "seg")
    loose = old.term_lists(asked)
    assert all(sp.max_tf == 255 and sp.min_len == 30 for sp in loose)
    terms = [TermList(j, 1.0 + j, sp.lo, sp.hi, sp.max_tf, sp.min_len) for j, sp in enumerate(loose)]
    got = bm25_topk.top_k(old, terms, 30.0, 5, None)
    assert got[0].tolist() == want[0].tolist() and got[1].tobytes() == want[1].tobytes()
    old.close()


def _three_term_segment(tmp_path, rng: np.random.Generator, n: int, draws: int, max_tf: int) -> Segment:
    """A written segment of ``n`` rows holding terms 7, 8 and 9: each row draws ``draws`` of them (repeats
    collapse), each posting a count below ``max_tf``."""
    term = rng.integers(0, 3, n * draws)
    row = np.repeat(np.arange(n), draws)
    key = np.unique(term * n + row)
    tf = rng.integers(1, max_tf, len(key)).astype(np.uint8)
    rows = Rows([b"{}\n"] * n, [("d", "s")], np.zeros(n, np.int32), np.zeros((n, 4), np.float32),
                np.array([7, 8, 9], np.uint64), key // n, key % n, tf, np.full(n, 4, np.int32),
                np.full(n, -1, np.int32), np.full(n, -1, np.int32), [], [])
    write_segment(tmp_path / "seg", rows, 0, ann=False)
    return Segment(tmp_path / "seg")


def test_a_segment_looks_rows_up_alike_through_its_map_and_by_reading(tmp_path, monkeypatch):
    """Long lists are binary-searched through the memory map, short ones read whole: the same hits and counts."""
    from rag.storage.segments import segment as segment_module

    rng = np.random.default_rng(2)
    n = 5000
    seg = _three_term_segment(tmp_path, rng, n, draws=4, max_tf=9)
    asked = np.sort(rng.choice(n, 40, replace=False))
    for sp in seg.term_lists(np.array([7, 8, 9], np.uint64)):
        read = seg.lookup(sp.lo, sp.hi, asked)
        monkeypatch.setattr(segment_module, "LOOKUP_READ", 0)
        mapped = seg.lookup(sp.lo, sp.hi, asked)
        monkeypatch.setattr(segment_module, "LOOKUP_READ", 65_536)
        assert read[0].tolist() == mapped[0].tolist() and read[1].tolist() == mapped[1].tolist()
        held = seg.rows_span(sp.lo, sp.hi)
        assert read[0].tolist() == np.isin(asked, held).tolist() and read[0].any()
    seg.close()


@pytest.mark.parametrize("asked_rows", [40, 600, 4_000])
def test_a_lookup_of_many_rows_marks_a_table_and_finds_what_binary_search_finds(tmp_path, monkeypatch, asked_rows):
    """Rows as many as an eighth of the list or more are looked up in a table of the segment's rows: the
    same hits and counts as a binary search a row, and as the list itself holds."""
    from rag.storage.segments import segment as segment_module

    rng = np.random.default_rng(asked_rows)
    n = 5000
    seg = _three_term_segment(tmp_path, rng, n, draws=2, max_tf=200)
    asked = np.sort(rng.choice(n, asked_rows, replace=False))
    for sp in seg.term_lists(np.array([7, 8, 9], np.uint64)):
        held, counts = seg.rows_span(sp.lo, sp.hi), seg.tf_span(sp.lo, sp.hi)
        hit, got = seg.lookup(sp.lo, sp.hi, asked)
        monkeypatch.setattr(segment_module, "LOOKUP_MARK", 0)  # binary search only
        hit_b, got_b = seg.lookup(sp.lo, sp.hi, asked)
        monkeypatch.undo()
        assert hit.tolist() == hit_b.tolist() == np.isin(asked, held).tolist()
        assert got.tolist() == got_b.tolist() == counts[np.searchsorted(held, asked[hit])].tolist()
        assert got.dtype == got_b.dtype
    seg.close()
