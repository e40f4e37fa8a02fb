"""The lexical baseline: BM25 as first written, a dict of posting lists scored in a pure-Python loop.

Same formula and parameters as bm25s in ``rag.storage.lexical`` (Lucene idf, k1=1.2, b=0.75,
repeated query terms counted again), so the scores agree and only the speed differs.
It offers the two methods the retriever calls, ``scores`` and ``idf``.
"""

from __future__ import annotations

import math
from array import array
from itertools import pairwise

import numpy as np

from rag.text.normalize import index_terms

K1, B = 1.2, 0.75


class NaiveBM25:
    def __init__(self, ptr: np.ndarray, term_ids: np.ndarray, terms: list[str]) -> None:
        """``term_ids[ptr[i]:ptr[i+1]]`` are document i's terms, ids into ``terms``."""
        n = len(ptr) - 1
        lengths = np.diff(ptr)
        self.n_docs = n
        self._norm = (K1 * (1 - B + B * lengths / max(lengths.mean(), 1e-9))).tolist()
        # grouping (term, doc) pairs is done with NumPy only to build the dict quickly at 1M chunks;
        # the search below is the pure-Python part being measured
        docs = np.repeat(np.arange(n, dtype=np.int64), lengths)
        keys, tf = np.unique(term_ids.astype(np.int64) * n + docs, return_counts=True)
        del docs
        term_of = keys // n
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(term_of)) + 1, [len(keys)]])
        doc_of = (keys % n).astype(np.int32)
        tf = tf.astype(np.int32)
        self.postings: dict[str, tuple[array, array]] = {}
        for s, e in pairwise(bounds):
            self.postings[terms[term_of[s]]] = (array("i", doc_of[s:e].tobytes()), array("i", tf[s:e].tobytes()))

    def idf(self, word: str) -> float:
        df = len(self.postings[word][0]) if word in self.postings else 0
        return math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))

    def scores(self, query: str) -> np.ndarray:
        acc: dict[int, float] = {}
        norm = self._norm
        for term in index_terms(query):
            posting = self.postings.get(term)
            if posting is None:
                continue
            w = self.idf(term)
            for d, tf in zip(*posting):
                acc[d] = acc.get(d, 0.0) + w * tf / (tf + norm[d])
        out = np.zeros(self.n_docs, dtype=np.float32)
        if acc:
            out[np.fromiter(acc.keys(), np.int64, len(acc))] = np.fromiter(acc.values(), np.float64, len(acc))
        return out
