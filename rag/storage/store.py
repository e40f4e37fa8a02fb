"""What retrieval reads from an index, whatever holds it: the ``SearchStore`` protocol.

``rag.retrieval.retrieve`` asks a store for dense and lexical candidates (each at most ``k``, best
first, inside the filters' ``where``), the cosine of a few more chunks, the chunks themselves and the
IDF of the query's terms; it fuses and re-ranks them itself, so every store ranks alike. Keys are
ints, stable for the life of a snapshot: positions in the chunk list for the FAISS snapshot
(``SnapshotStore``), primary keys for a store in a database. Nothing asks a store for all of its
chunks, so one that holds tens of millions keeps them where they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from rag.filters import allowed_positions
from rag.storage.vectors import search
from rag.types import Chunk


class _Nothing:
    def __repr__(self) -> str:
        return "NOTHING"


NOTHING = _Nothing()  # ``where`` that no chunk passes: filters that match no document (compare with ``is``)


class SearchStore(Protocol):
    @property
    def size(self) -> int:
        """How many chunks the store holds."""

    def where(self, filters: Mapping[str, str]) -> Any:
        """The store's form of validated filters (``rag.filters``): None passes every chunk,
        ``NOTHING`` none; anything else is the store's own (an array of keys, an expression)."""

    def dense(self, query_vector: np.ndarray, k: int, where: Any) -> list[tuple[int, float]]:
        """Up to ``k`` (key, inner product) of the chunks nearest ``query_vector``, best first."""

    def lexical(self, query: str, k: int, where: Any) -> list[tuple[int, float]]:
        """Up to ``k`` (key, BM25 score > 0) for ``query``, best first."""

    def cosines(self, keys: Sequence[int], query_vector: np.ndarray) -> dict[int, float]:
        """The inner product of ``query_vector`` with each of these chunks' vectors."""

    def chunks(self, keys: Sequence[int]) -> dict[int, Chunk]:
        """These chunks, by key."""

    def idf(self, term: str) -> float:
        """The term's inverse document frequency (unknown terms count as rarest)."""


class SnapshotStore:
    """The FAISS snapshot (vectors, bm25s, chunks in memory) as a ``SearchStore``; keys are positions."""

    def __init__(self, snap: Any) -> None:
        self.snap = snap

    @property
    def size(self) -> int:
        return self.snap.size

    def where(self, filters: Mapping[str, str]) -> Any:
        allowed = allowed_positions(self.snap.chunks, filters)
        return NOTHING if allowed is not None and len(allowed) == 0 else allowed

    def dense(self, query_vector: np.ndarray, k: int, where: Any) -> list[tuple[int, float]]:
        scores, ids = search(self.snap.vectors, query_vector, k, where)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def lexical(self, query: str, k: int, where: Any) -> list[tuple[int, float]]:
        scores = self.snap.lexical.scores(query)
        if not len(scores):
            return []
        if where is not None:
            mask = np.zeros(len(scores), dtype=bool)
            mask[where] = True
            scores = np.where(mask, scores, 0.0)
        return [(int(i), float(scores[i])) for i in top(scores, k) if scores[i] > 0]

    def cosines(self, keys: Sequence[int], query_vector: np.ndarray) -> dict[int, float]:
        if not len(keys):
            return {}
        # the vectors in one FAISS call (one a key cost a SWIG call each: 3% of a busy server's time); then one
        # dot product a key, as retrieval always did: a matrix product may round differently
        vecs = self.snap.vectors.reconstruct_batch(np.asarray(keys, dtype=np.int64))
        return {int(k): float(np.dot(v, query_vector)) for k, v in zip(keys, vecs)}

    def chunks(self, keys: Sequence[int]) -> dict[int, Chunk]:
        return {int(k): self.snap.chunks[k] for k in keys}

    def idf(self, term: str) -> float:
        return self.snap.lexical.idf(term)


def search_store(snap: Any) -> SearchStore:
    """What retrieval reads of an index state: its store (a store-backed index), else the FAISS snapshot's."""
    store = getattr(snap, "store", None)
    return store if store is not None else SnapshotStore(snap)


def top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, best first (ties in index order)."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.argpartition(-scores, k - 1)[:k]
    return idx[np.argsort(-scores[idx], kind="stable")]


__all__ = ["NOTHING", "SearchStore", "SnapshotStore", "search_store", "top"]
