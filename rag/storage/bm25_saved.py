"""BM25 arrays as bm25s saved them, read and scored without importing bm25s.

Importing bm25s (and scipy, which it imports) takes ~0.2 s, and a cold ``rag ask`` paid it only to add
up a few columns of a sparse matrix. ``SavedBM25`` reads bm25s's own files (``params.index.json``,
``vocab.index.json``, the CSC arrays) as ``bm25s.BM25.load`` does and scores as
``bm25s.BM25.get_scores_from_ids`` does: one ``np.add.at`` per query term id, in the query's order, in
the saved dtype, so every score is bm25s's to the bit (tests/storage/test_bm25_saved.py). Methods with a
non-occurrence array (BM25L, BM25+) are left to bm25s. Saving goes through bm25s itself
(``to_bm25s``): only a change to the index writes, and it has bm25s loaded anyway.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PARAMS, VOCAB = "params.index.json", "vocab.index.json"
DATA, INDICES, INDPTR = "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy"
PLAIN_METHODS = ("robertson", "lucene", "atire")  # bm25s's methods without a non-occurrence array


class NeedsBm25s(ValueError):
    """These arrays need bm25s itself (a method with a non-occurrence array)."""


class SavedBM25:
    """The part of ``bm25s.BM25`` that serving uses (``vocab_dict``, ``scores``, ``get_tokens_ids``,
    ``get_scores_from_ids``, ``save``), over the files bm25s saved in ``folder``."""

    def __init__(self, folder: Path) -> None:
        params: dict[str, Any] = json.loads((folder / PARAMS).read_text(encoding="utf-8"))
        if params.get("method") not in PLAIN_METHODS:
            raise NeedsBm25s(f"BM25 method {params.get('method')!r}")
        self.vocab_dict: dict[str, int] = json.loads((folder / VOCAB).read_text(encoding="utf-8"))
        self._version = params.pop("version", None)
        num_docs = params.pop("num_docs", None)
        self.params = params
        self.dtype = np.dtype(params.get("dtype", "float32"))
        self.int_dtype = np.dtype(params.get("int_dtype", "int32"))
        self.scores: dict[str, Any] = {
            "data": np.load(folder / DATA, allow_pickle=False),
            "indices": np.load(folder / INDICES, allow_pickle=False),
            "indptr": np.load(folder / INDPTR, allow_pickle=False),
            "num_docs": num_docs,
        }

    def get_tokens_ids(self, query_tokens: Sequence[str]) -> list[int]:
        """The ids of the tokens in the vocabulary, in order, repeats kept (as bm25s)."""
        return [self.vocab_dict[t] for t in query_tokens if t in self.vocab_dict]

    def get_scores_from_ids(self, query_tokens_ids: Sequence[int]) -> np.ndarray:
        """Every document's score: the sum, term by term in order, of its column entries (as bm25s)."""
        ids = np.asarray(query_tokens_ids, dtype=self.int_dtype)
        data, indices, indptr = self.scores["data"], self.scores["indices"], self.scores["indptr"]
        if int(ids.max(initial=0)) >= len(indptr) - 1:
            raise ValueError(f"the maximum token ID in the query ({int(ids.max())}) is higher than the number "
                             "of tokens in the index")
        starts, ends = indptr[ids], indptr[ids + 1]
        scores = np.zeros(self.scores["num_docs"], dtype=self.dtype)
        for start, end in zip(starts, ends, strict=True):
            np.add.at(scores, indices[start:end], data[start:end])
        return scores

    def to_bm25s(self) -> Any:
        """The same index as a ``bm25s.BM25`` (for writing it)."""
        import bm25s  # noqa: PLC0415 - bm25s (~0.2 s) only when an index is written

        obj = bm25s.BM25(**self.params)
        obj.vocab_dict = dict(self.vocab_dict)
        obj._original_version = self._version
        obj.unique_token_ids_set = set(obj.vocab_dict.values())
        obj.scores = dict(self.scores)
        obj.nonoccurrence_array = None
        return obj

    def save(self, folder: str, allow_pickle: bool = False) -> None:
        self.to_bm25s().save(folder, allow_pickle=allow_pickle)


def load(folder: Path) -> Any:
    """bm25s's arrays in ``folder``: a ``SavedBM25``, or ``bm25s.BM25`` itself where only it can score them."""
    try:
        return SavedBM25(folder)
    except NeedsBm25s:
        import bm25s  # noqa: PLC0415 - bm25s for the methods it alone scores

        return bm25s.BM25.load(str(folder), allow_pickle=False)


__all__ = ["NeedsBm25s", "SavedBM25", "load"]
