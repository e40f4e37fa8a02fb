"""BM25 over jieba words, with bm25s's sparse matrices (fast at scale, saved as plain arrays)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .textnorm import index_terms

logging.getLogger("bm25s").setLevel(logging.WARNING)


class LexicalIndex:
    def __init__(self, retriever=None, n_docs: int = 0) -> None:
        self._bm25 = retriever
        self.n_docs = n_docs

    @classmethod
    def build(cls, texts: Sequence[str], show_progress: bool = False) -> LexicalIndex:
        import bm25s  # noqa: PLC0415

        if not texts:
            return cls(None, 0)
        retriever = bm25s.BM25(k1=1.2, b=0.75)
        retriever.index([index_terms(t) for t in texts], show_progress=show_progress)
        return cls(retriever, len(texts))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self._bm25 is not None:
            self._bm25.save(str(folder), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, n_docs: int) -> LexicalIndex:
        import bm25s  # noqa: PLC0415

        if n_docs == 0:
            return cls(None, 0)
        retriever = bm25s.BM25.load(str(folder), allow_pickle=False)
        return cls(retriever, n_docs)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for ``query`` (zeros when no query word is known)."""
        if self._bm25 is None:
            return np.zeros(0, dtype=np.float32)
        ids = self._bm25.get_tokens_ids(index_terms(query))
        if not ids:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)

    def idf(self, word: str) -> float:
        """Inverse document frequency of a word in this index (unknown words count as rarest)."""
        n = max(self.n_docs, 1)
        df = 0
        if self._bm25 is not None:  # one vocabulary lookup: no table built on the first question
            tid = self._bm25.vocab_dict.get(word)
            indptr = self._bm25.scores["indptr"]
            if tid is not None and tid + 1 < len(indptr):
                df = int(indptr[tid + 1] - indptr[tid])
        return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))
