"""BM25's rule, once for every store: its parameters, its IDF, a term's weight in a chunk, a term's hash.

The FAISS snapshot scores with bm25s (``rag.storage.lexical``: method "lucene", k1=1.2, b=0.75); the
segmented store scores at query time from raw counts and the Milvus store from client-side sparse
vectors, and both must give bm25s's scores. So what they compute is bm25s's lucene variant, written
here as bm25s writes it (``math.log``: numpy's log can round the last bit otherwise on some CPUs).
"""

from __future__ import annotations

import hashlib
import math
from typing import Literal, TypeVar

import numpy as np

K1, B = 1.2, 0.75  # bm25s's defaults, which rag.storage.lexical builds with

_Num = TypeVar("_Num", float, np.ndarray)


def idf(df: int, n: int) -> float:
    """bm25s's lucene IDF of a term that ``df`` of ``n`` chunks hold (df=0: the rarest a term can be)."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def weight(tf: _Num, dl: _Num, avgdl: float, idf: float) -> _Num:
    """A term's BM25 score in a chunk holding it ``tf`` times among ``dl`` terms, with ``avgdl`` the mean
    chunk length: bm25s's lucene form, with no ``k1 + 1`` factor. Element-wise over arrays.

    ``idf`` is multiplied first, as the score is computed (``idf * tf / ...``): 1.0 gives the
    term-frequency part alone, to the bit (a store that applies IDF on the query side)."""
    return weight_normed(tf, length_norm(dl, avgdl), idf)


def length_norm(dl: _Num, avgdl: float) -> _Num:
    """The length part of :func:`weight`'s denominator (``k1 (1 - b + b dl / avgdl)``): a store may keep it
    per row while ``avgdl`` stays, and :func:`weight_normed` then gives :func:`weight`'s bits."""
    return K1 * ((1 - B) + B * dl / avgdl) if avgdl > 0 else K1 + 0 * dl  # no chunk yet: lengths count as average


def weight_normed(tf: _Num, norm: _Num, idf: float) -> _Num:
    """:func:`weight` given the row's :func:`length_norm`."""
    return idf * tf / (norm + tf)


def term_hash(term: str, byteorder: Literal["little", "big"]) -> int:
    """A term's 64-bit id, the same in every process and version (Python's ``hash`` is salted per process).

    The first 8 bytes of its BLAKE2b digest read as one integer. Stores read them in different byte
    orders and have written their indexes so: each names its own order, and keeps it."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest(), byteorder)


__all__ = ["K1", "B", "idf", "length_norm", "term_hash", "weight", "weight_normed"]
