"""Hybrid retrieval: dense (FAISS) and BM25 candidates fused by reciprocal rank."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .embedders import Embedder
from .errors import ConfigError
from .store import Snapshot
from .textnorm import normalize_for_match
from .types import Passage

MODES = ("hybrid", "dense", "lexical")
_STRIP = re.compile(r"[\s\"'“”‘’?？!！。,，、:：;；()（）《》]+")


@dataclass(frozen=True)
class RetrievalSettings:
    mode: str = "hybrid"
    candidates: int = 50  # per retriever, before fusion
    rrf_k: int = 60
    dense_weight: float = 1.0
    lexical_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"retrieval mode must be one of {', '.join(MODES)}. Currently, mode is {self.mode!r}")
        if self.candidates < 1:
            raise ConfigError(f"candidates must be greater than 0. Currently, candidates is {self.candidates}")


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.argpartition(-scores, k - 1)[:k]
    return idx[np.argsort(-scores[idx], kind="stable")]


def retrieve(
    snap: Snapshot, embedder: Embedder, query: str, top_k: int, settings: RetrievalSettings,
    query_vector: np.ndarray | None = None,
) -> list[Passage]:
    """The ``top_k`` best chunks for ``query`` (fewer when the index is smaller)."""
    if top_k < 1:
        raise ConfigError(f"top_k must be greater than 0. Currently, top_k is {top_k}")
    n = snap.size
    if n == 0:
        return []
    cand = max(settings.candidates, top_k)
    fused: dict[int, float] = {}
    dense: dict[int, float] = {}
    lex_scores = None
    if settings.mode in ("hybrid", "dense"):
        q = query_vector if query_vector is not None else embedder.embed_queries([query])[0]
        d, ids = snap.vectors.search(q.reshape(1, -1).astype(np.float32), min(cand, n))
        for rank, (i, s) in enumerate(zip(ids[0], d[0]), 1):
            if i < 0:
                continue
            dense[int(i)] = float(s)
            fused[int(i)] = fused.get(int(i), 0.0) + settings.dense_weight / (settings.rrf_k + rank)
    if settings.mode in ("hybrid", "lexical"):
        lex_scores = snap.lexical.scores(query)
        for rank, i in enumerate(_top(lex_scores, cand), 1):
            if lex_scores[i] <= 0:
                break
            fused[int(i)] = fused.get(int(i), 0.0) + settings.lexical_weight / (settings.rrf_k + rank)
    _boost_exact(snap, query, fused)
    order = sorted(fused, key=lambda i: -fused[i])[:top_k]
    if settings.mode != "lexical":
        _fill_dense(snap, embedder, query, query_vector, order, dense)
    return [
        Passage(
            chunk=snap.chunks[i], score=fused[i], rank=r,
            dense_score=dense.get(i), lexical_score=float(lex_scores[i]) if lex_scores is not None else None,
        )
        for r, i in enumerate(order, 1)
    ]


def _boost_exact(snap: Snapshot, query: str, fused: dict[int, float]) -> None:
    """A short query found verbatim in a chunk (a name, a number) ranks that chunk first."""
    needle = normalize_for_match(_STRIP.sub("", query))
    if not needle or len(needle) > 24 or not fused:
        return
    top = max(fused.values())
    for i in list(fused):
        if needle in normalize_for_match(snap.chunks[i].text):
            fused[i] += top


def _fill_dense(snap, embedder, query, query_vector, order, dense) -> None:  # noqa: ANN001
    """Dense cosine for lexical-only hits, so every passage carries both kinds of evidence."""
    missing = [i for i in order if i not in dense]
    if not missing:
        return
    q = query_vector if query_vector is not None else embedder.embed_queries([query])[0]
    for i in missing:
        dense[i] = float(np.dot(snap.vectors.reconstruct(int(i)), q))
