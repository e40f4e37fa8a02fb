"""Client-side BM25 for a vector database: documents and queries as sparse vectors whose inner product
is the score ``rag.storage.lexical.LexicalIndex.scores`` gives (bm25s, method "lucene", k1=1.2, b=0.75).

A chunk's sparse vector holds, for each of its ``index_terms``, the term-frequency part of BM25,
``tf / (tf + k1 * (1 - b + b * dl / avgdl))`` (bm25s's lucene variant has no ``k1 + 1`` factor, and
parity with it is the point); the query's vector holds ``idf(term)`` times the term's count in the
query (bm25s sums a repeated query term once per occurrence).  So IDF lives only on the query side
and follows the corpus exactly, from document frequencies kept here.

What drifts: ``avgdl`` is frozen into the stored document weights when they are written.  As the
corpus grows its real mean length moves away, and scores drift from what a rebuilt bm25s index
would give; ``DfState.drift`` measures it, and a store reports it (above ``MAX_DRIFT``) instead of
re-weighting every row behind the caller's back, which costs a rewrite of the whole collection.
(The database cannot apply ``dl / avgdl`` at query time to vectors it did not make itself.)

Term ids are a 32-bit hash of the term (``term_id``).  A collision merges two terms: their
frequencies add up in a chunk and their document frequencies in the corpus, so both get a lower
IDF and a query for one matches chunks holding the other.  About n²/2³³ pairs collide among n
distinct terms (about 1 at 100k terms, about 100 at a million), nearly all rare terms.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rag.errors import IndexCorruptError
from rag.storage import bm25
from rag.text.normalize import index_terms

MAX_DRIFT = 0.10  # relative move of avgdl past which stored weights are reported stale
_ID_SPACE = 2**32 - 1  # Milvus sparse indices are uint32 below 2**32 - 1
# Collections and their saved document frequencies hold ids of the hash read big-endian (the segmented
# store reads it little-endian); read another way, a query's ids would match none of the stored rows.
_TERM_BYTEORDER: Literal["big"] = "big"


def term_id(term: str) -> int:
    """A stable id of ``term`` (same in every process and version: not Python's salted ``hash``)."""
    return bm25.term_hash(term, _TERM_BYTEORDER) % _ID_SPACE


def term_counts(text: str) -> Counter[int]:
    """Each term id of ``text``'s index terms with its frequency (length: their sum)."""
    return Counter(term_id(t) for t in index_terms(text))


def doc_weights(counts: Mapping[int, int], avgdl: float) -> dict[int, float]:
    """The chunk's sparse vector: bm25s's lucene term-frequency component for each term id."""
    dl = sum(counts.values())
    return {tid: bm25.weight(tf, dl, avgdl, idf=1.0) for tid, tf in counts.items()}  # IDF is on the query side


@dataclass
class DfState:
    """Document frequencies by term id, chunk count, total length, the avgdl frozen into stored
    weights, and the next primary key; saved atomically (a JSON file beside the index)."""

    n: int = 0
    total_len: int = 0
    avgdl_stored: float = 0.0  # the avgdl the stored rows' weights were computed with (0: none yet)
    next_pk: int = 0
    df: dict[int, int] = field(default_factory=dict)

    @property
    def avgdl(self) -> float:
        return self.total_len / self.n if self.n else 0.0

    def drift(self) -> float:
        """How far the corpus's avgdl has moved from the one in the stored weights (relative)."""
        if not self.avgdl_stored or not self.n:
            return 0.0
        return abs(self.avgdl - self.avgdl_stored) / self.avgdl_stored

    def query_vector(self, query: str) -> dict[int, float]:
        """IDF times count of each query term the corpus holds (unknown terms score nothing, as in bm25s)."""
        counts = Counter(term_id(t) for t in index_terms(query))
        return {tid: c * bm25.idf(self.df[tid], self.n) for tid, c in counts.items() if self.df.get(tid)}

    def idf(self, term: str) -> float:
        return bm25.idf(self.df.get(term_id(term), 0), max(self.n, 1))

    def count(self, rows: Iterable[tuple[Iterable[int], int]], sign: int) -> None:
        """Add (sign 1) or remove (sign -1) chunks, given as (their distinct term ids, their length)."""
        for tids, dl in rows:
            self.n += sign
            self.total_len += sign * dl
            for tid in tids:
                left = self.df.get(tid, 0) + sign
                if left > 0:
                    self.df[tid] = left
                else:
                    self.df.pop(tid, None)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"n": self.n, "total_len": self.total_len, "avgdl_stored": self.avgdl_stored,
                "next_pk": self.next_pk, "df": {str(k): v for k, v in self.df.items()}}
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # readers see the old state or the new, never a torn file

    @classmethod
    def load(cls, path: Path) -> DfState | None:
        """The saved state, None when there is none (a new store, or lost: the store rebuilds it)."""
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(int(data["n"]), int(data["total_len"]), float(data["avgdl_stored"]), int(data["next_pk"]),
                       {int(k): int(v) for k, v in data["df"].items()})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"{path} is damaged ({exc}); delete it and reopen: it is rebuilt "
                                    "from the collection") from exc
