"""BM25 over jieba words, with bm25s's sparse matrices (fast at scale, saved as plain arrays).

bm25s cannot add or remove documents: every change rebuilds the index.  Segmenting the
text with jieba is most of that cost (80% of adding one file to a 5,800-chunk index), so
each chunk's terms are kept beside the index as vocabulary ids (``doc_terms.*.npy``).
A rebuild segments only the new chunks and reuses the ids of the kept ones; the
vocabulary only grows (a term of a deleted chunk keeps its id, with no postings) until a
full ``rag index --rebuild``.  The cache is an optimisation: when it is missing, from
another term version, or damaged (its checksum in the manifest, checked when a change
reads it), the terms are segmented again.

The terms themselves depend on ``index_terms`` (version 2 folds traditional to simplified), so
the version that made them is saved beside the arrays (``terms.json``, covered by the manifest's
checksums; an index without it was made by version 1).  Opening an index whose terms are from
another version rebuilds its BM25 in memory from the stored chunk texts (one segmentation pass,
logged), so its queries and its terms are always folded alike; the next change saves the new terms.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from rag.storage import bm25, bm25_saved
from rag.text.normalize import index_terms

logging.getLogger("bm25s").setLevel(logging.WARNING)  # "Building index from IDs" on every rebuild

TERMS_VERSION = 2  # bump whenever index_terms changes what it returns (2: traditional folded to simplified)
_IDS, _OFFSETS, _META = "doc_terms.ids.npy", "doc_terms.offsets.npy", "doc_terms.json"
CACHE_FILES = (_IDS, _OFFSETS, _META)  # the term cache: losing them costs time, never answers
TERMS_FILE = "terms.json"  # {"terms_version": N}: which index_terms made the BM25 arrays
_log = logging.getLogger(__name__)


class DocIds:
    """Every chunk's terms as vocabulary ids: one flat array and the offsets into it."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray) -> None:
        self.ids, self.offsets = ids, offsets

    @classmethod
    def of(cls, per_doc: list[np.ndarray]) -> DocIds:
        lengths = np.fromiter((len(d) for d in per_doc), dtype=np.int64, count=len(per_doc))
        ids = np.concatenate(per_doc) if per_doc else np.zeros(0, np.int64)
        width = np.uint32 if not len(ids) or ids.max() < 2**32 else np.int64
        return cls(ids.astype(width), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))

    def of_doc(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]  # a view: no copy per reused chunk


class IdLists(list):
    """bm25s's "list of lists of token ids" (it checks ``isinstance(list)``), made one chunk at a
    time: a million chunks' ids as Python ints all at once would take about 10 GB."""

    def __init__(self, doc_ids: DocIds) -> None:
        super().__init__()
        self.doc_ids = doc_ids

    def __len__(self) -> int:
        return len(self.doc_ids.offsets) - 1

    def __iter__(self) -> Iterator[list[int]]:
        ids, offsets = self.doc_ids.ids, self.doc_ids.offsets
        for i in range(len(self)):
            yield ids[offsets[i] : offsets[i + 1]].tolist()


class LexicalIndex:
    def __init__(
        self, retriever=None, n_docs: int = 0, *, doc_ids: DocIds | None = None, folder: Path | None = None,
        cache_intact: Callable[[str], bool] | None = None,
    ) -> None:
        self._bm25 = retriever
        self.n_docs = n_docs
        self._doc_ids = doc_ids  # each chunk's terms as vocabulary ids, held from a build until saved
        self._folder = folder  # where the saved doc_terms files are (read only when a rebuild reuses them)
        self._cache_intact = cache_intact  # name in CACHE_FILES -> still as saved (the store's checksums)
        self.upgraded_from: int | None = None  # the terms version on disk, when load rebuilt the terms
        self.stale_terms: int | None = None  # the older terms version of arrays loaded without rebuilding

    @property
    def num_docs(self) -> int:
        """How many chunks the BM25 arrays themselves say they hold (0 for an empty index)."""
        return int(self._bm25.scores["num_docs"]) if self._bm25 is not None else 0

    def has_term_cache(self) -> bool:
        """Whether a rebuild could reuse every chunk's stored terms instead of segmenting them."""
        return self._bm25 is not None and (self._doc_ids is not None or self._load_doc_ids() is not None)

    @classmethod
    def build(cls, texts: Sequence[str], show_progress: bool = False) -> LexicalIndex:
        """Segment every text (no reuse)."""
        return cls.build_reusing(texts, [None] * len(texts), show_progress=show_progress)

    @classmethod
    def build_reusing(
        cls, texts: Sequence[str], cached: Sequence[np.ndarray | None], vocab: dict[str, int] | None = None,
        show_progress: bool = False,
    ) -> LexicalIndex:
        """Build over ``texts``; ``cached[i]`` (ids in ``vocab``) stands in for segmenting ``texts[i]``."""
        if not texts:
            return cls(None, 0)
        vocab = dict(vocab or {})
        per_doc: list[np.ndarray] = []
        for text, ids in zip(texts, cached, strict=True):
            if ids is None:
                terms = index_terms(text)
                ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in terms), dtype=np.int64, count=len(terms))
            per_doc.append(ids)
        doc_ids = DocIds.of(per_doc)
        del per_doc
        return cls.from_ids(doc_ids, vocab, show_progress=show_progress)

    @classmethod
    def from_ids(cls, doc_ids: DocIds, vocab: dict[str, int], show_progress: bool = False) -> LexicalIndex:
        """The index of chunks given as term ids (``vocab`` numbers them 0..n-1)."""
        import bm25s  # noqa: PLC0415 - bm25s (~1 s) only when an index is built or loaded

        retriever = bm25s.BM25(k1=bm25.K1, b=bm25.B)  # the parameters the other stores' BM25 score with
        retriever.index((IdLists(doc_ids), vocab), show_progress=show_progress)
        return cls(retriever, len(doc_ids.offsets) - 1, doc_ids=doc_ids)

    def cached_terms(self, positions: Sequence[int]) -> tuple[list[np.ndarray | None], dict[str, int]]:
        """The stored term ids of the chunks at ``positions`` (None each where unavailable) and the vocabulary."""
        doc_ids = self._doc_ids if self._doc_ids is not None else self._load_doc_ids()
        if doc_ids is None or self._bm25 is None:
            return [None] * len(positions), {}
        return [doc_ids.of_doc(p) for p in positions], dict(self._bm25.vocab_dict)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self._bm25 is None:
            return
        self._bm25.save(str(folder), allow_pickle=False)
        (folder / TERMS_FILE).write_text(json.dumps({"terms_version": TERMS_VERSION}))
        doc_ids = self._doc_ids if self._doc_ids is not None else self._load_doc_ids()
        if doc_ids is None:
            return  # an index from before the cache: the next rebuild segments everything once
        np.save(folder / _IDS, doc_ids.ids, allow_pickle=False)
        np.save(folder / _OFFSETS, doc_ids.offsets, allow_pickle=False)
        (folder / _META).write_text(json.dumps({"terms_version": TERMS_VERSION, "docs": self.n_docs}))

    def saved_in(self, folder: Path, cache_intact: Callable[[str], bool] | None = None) -> None:
        """The index now lives in ``folder``: drop the in-memory term ids (1 KB a chunk), read them
        from there if a later rebuild wants them, if ``cache_intact`` says each file is as saved."""
        self._doc_ids, self._folder, self._cache_intact = None, folder, cache_intact

    @classmethod
    def load(
        cls, folder: Path, n_docs: int, cache_intact: Callable[[str], bool] | None = None,
        texts: Callable[[], Sequence[str]] | None = None,
    ) -> LexicalIndex:
        """The BM25 arrays in ``folder``; the term cache beside them is read (and ``cache_intact``
        asked about each of its files) only when a rebuild wants it: serving never does.

        Arrays made by another ``TERMS_VERSION`` are rebuilt from ``texts()`` (the chunk texts, in
        order).  Without ``texts`` they are loaded as they are, for checks (``rag verify``) only:
        ``stale_terms`` names their version, and scoring them raises ``ValueError``."""
        if n_docs == 0:
            return cls(None, 0)
        version = saved_terms_version(folder)
        if version != TERMS_VERSION and texts is not None:
            t0 = time.perf_counter()
            chunk_texts = texts()
            if len(chunk_texts) != n_docs:
                raise ValueError(f"{len(chunk_texts)} chunk texts for {n_docs} chunks")
            index = cls.build(chunk_texts)
            index.upgraded_from = version
            _log.warning(
                "BM25 terms in %s are from term version %s, not %s: rebuilt from the %d chunk texts in %.1f s "
                "(the next change to the index, or `rag index --rebuild`, saves them)",
                folder, version, TERMS_VERSION, n_docs, time.perf_counter() - t0,
            )
            return index
        retriever = bm25_saved.load(folder)  # bm25s's arrays, without importing bm25s (0.2 s of a cold start)
        index = cls(retriever, n_docs, folder=folder, cache_intact=cache_intact)
        index.stale_terms = version if version != TERMS_VERSION else None
        return index

    def _load_doc_ids(self) -> DocIds | None:
        folder = self._folder
        if folder is None:
            return None
        try:
            if self._cache_intact is not None and not all(self._cache_intact(name) for name in CACHE_FILES):
                return None  # damaged in a way the checks below could miss (ids still in range)
            meta = json.loads((folder / _META).read_text())
            ids = np.load(folder / _IDS, allow_pickle=False)
            offsets = np.load(folder / _OFFSETS, allow_pickle=False)
            if meta.get("terms_version") != TERMS_VERSION or len(offsets) != self.n_docs + 1 or offsets[-1] != len(ids):
                return None
            if len(ids) and int(ids.max()) >= len(self._bm25.vocab_dict):
                return None
        except (OSError, ValueError, KeyError):
            return None  # missing or damaged: segment again
        return DocIds(ids, offsets)

    def _check_terms(self) -> None:
        if self.stale_terms is not None:  # unfolded terms against folded queries: wrong, not just worse
            raise ValueError(f"these BM25 terms are from term version {self.stale_terms}, not {TERMS_VERSION}: "
                             "load them with the chunk texts to rebuild them")

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for ``query`` (zeros when no query word is known)."""
        if self._bm25 is None:
            return np.zeros(0, dtype=np.float32)
        self._check_terms()
        ids = self._bm25.get_tokens_ids(index_terms(query))
        if not ids:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)

    def idf(self, word: str) -> float:
        """Inverse document frequency of a word in this index (unknown words count as rarest)."""
        n = max(self.n_docs, 1)
        df = 0
        if self._bm25 is not None:  # one vocabulary lookup: no table built on the first question
            self._check_terms()
            tid = self._bm25.vocab_dict.get(word)
            indptr = self._bm25.scores["indptr"]
            if tid is not None and tid + 1 < len(indptr):
                df = int(indptr[tid + 1] - indptr[tid])
        return bm25.idf(df, n)  # the IDF the other stores give, to the bit



def saved_terms_version(folder: Path) -> int:
    """The ``TERMS_VERSION`` that made the BM25 arrays in ``folder`` (1: saved before it was recorded)."""
    try:
        return int(json.loads((folder / TERMS_FILE).read_text())["terms_version"])
    except FileNotFoundError:
        return 1
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"unreadable {folder / TERMS_FILE}: {exc}") from exc
