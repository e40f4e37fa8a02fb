"""The one BM25 rule every store scores with: bm25s's lucene scores, and the term ids on disk."""

from __future__ import annotations

import math

import bm25s
import numpy as np
import pytest

from rag.storage import bm25
from rag.storage.milvus.sparse_bm25 import doc_weights, term_id
from rag.storage.segments.segment import TERM_BYTEORDER

# Chunks as term ids into VOCAB: lengths 3 to 6, one term held by every chunk, one by a single chunk.
VOCAB = {"a": 0, "b": 1, "c": 2, "d": 3, "e": 4}
DOCS = [[0, 1, 1, 2], [0, 2, 2, 2, 3, 1], [0, 4, 1], [0, 1, 2, 3, 3]]


def _bm25s_scores(query: list[int]) -> np.ndarray:
    retriever = bm25s.BM25(k1=bm25.K1, b=bm25.B)  # method "lucene", as rag.storage.lexical builds it
    retriever.index((DOCS, VOCAB), show_progress=False)
    return retriever.get_scores_from_ids(query)


def _our_scores(query: list[int]) -> np.ndarray:
    n, avgdl = len(DOCS), sum(map(len, DOCS)) / len(DOCS)
    scores = np.zeros(n)
    for term in query:
        df = sum(term in doc for doc in DOCS)
        tf = np.array([doc.count(term) for doc in DOCS], np.float64)
        dl = np.array([len(doc) for doc in DOCS], np.int32)
        scores += np.where(tf > 0, bm25.weight(tf, dl, avgdl, bm25.idf(df, n)), 0.0)
    return scores


@pytest.mark.parametrize("query", [[0], [4], [1, 3], [2, 2, 4], [3, 0, 1, 2, 4]])
def test_idf_and_weight_give_the_scores_of_bm25s(query):
    # bm25s keeps its scores as float32: equal to that rounding, and zero exactly where no term is held
    ours, theirs = _our_scores(query), _bm25s_scores(query)
    assert np.allclose(ours, theirs, rtol=1e-6, atol=0)
    assert np.array_equal(ours == 0, theirs == 0)


def test_idf_is_bm25s_lucene_formula_and_falls_with_document_frequency():
    assert bm25.idf(1, 4) == math.log(1 + 3.5 / 1.5)
    assert bm25.idf(4, 4) == math.log(1 + 0.5 / 4.5) > 0  # a term in every chunk still counts a little
    values = [bm25.idf(df, 100) for df in range(101)]
    assert values == sorted(values, reverse=True) and len(set(values)) == 101


def test_weight_over_arrays_is_the_weight_of_each_element():
    tf = np.array([1.0, 2.0, 7.0, 255.0])
    dl = np.array([3, 40, 7, 900], np.int32)
    got = bm25.weight(tf, dl, 12.5, 2.25)
    assert got.tolist() == [bm25.weight(float(t), int(d), 12.5, 2.25) for t, d in zip(tf, dl)]


@pytest.mark.parametrize("avgdl", [12.5, 0.0])
def test_length_norms_kept_per_row_give_the_weight_to_the_bit(avgdl):
    # what a segment keeps per row for a view (rag.storage.segments.bm25_topk): norms of all its rows at
    # once, gathered later for the postings weighed, must give what weighing each posting alone gives
    rng = np.random.default_rng(0)
    doclen = rng.integers(1, 2_000, 5_000).astype(np.int64)
    rows = np.sort(rng.choice(len(doclen), 700, replace=False))
    tf = rng.integers(1, 256, len(rows)).astype(np.float64)
    norms = bm25.length_norm(doclen.astype(np.float64), avgdl)
    assert norms.shape == doclen.shape
    got = bm25.weight_normed(tf, norms[rows], 2.25)
    assert got.tolist() == bm25.weight(tf, doclen[rows], avgdl, 2.25).tolist()
    assert got.tolist() == [bm25.weight(float(t), int(d), avgdl, 2.25) for t, d in zip(tf, doclen[rows])]


def test_weight_with_idf_one_is_the_term_frequency_part_to_the_bit():
    # what a Milvus row stores: IDF is applied on the query side
    for tf, dl, avgdl in [(1, 3, 7.25), (3, 30, 7.25), (200, 911, 123.4)]:
        norm = bm25.K1 * ((1 - bm25.B) + bm25.B * dl / avgdl)
        assert bm25.weight(tf, dl, avgdl, 1.0) == tf / (norm + tf)
    assert doc_weights({7: 2, 9: 1}, 2.0) == {7: bm25.weight(2, 3, 2.0, 1.0), 9: bm25.weight(1, 3, 2.0, 1.0)}


def test_a_store_without_chunks_weighs_every_length_as_the_average():
    assert bm25.weight(2, 50, 0.0, 1.0) == 2 / (bm25.K1 + 2) == bm25.weight(2, 9, 9.0, 1.0)


def test_term_hashes_are_the_ids_existing_indexes_hold():
    # Changing either would make every saved segment and Milvus collection find nothing for a query.
    assert TERM_BYTEORDER == "little"
    assert bm25.term_hash("数字", TERM_BYTEORDER) == 13936712438219798439
    assert bm25.term_hash("bm25", TERM_BYTEORDER) == 11958019012758217330
    assert term_id("数字") == 3340649769 == 12103383763827190209 % (2**32 - 1)
    assert term_id("潮涌") == 443781394


def test_the_two_byte_orders_read_the_same_eight_bytes():
    for term in ["数字", "潮涌", "", "#a"]:
        little = bm25.term_hash(term, "little")
        assert 0 <= little < 2**64
        assert bm25.term_hash(term, "big") == int.from_bytes(little.to_bytes(8, "little"), "big")
