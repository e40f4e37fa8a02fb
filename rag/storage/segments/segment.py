"""One immutable segment of a segmented index: its chunks, vectors and BM25 postings, as plain files.

A segment is written once (by an add, or by merging segments) and never changed; which of its
rows are live is decided by the manifest that names it (see ``rag.storage.segments.index``). So a
change to a large index writes only a small new segment, as Lucene does, instead of rewriting
every array. Files (all ``.npy`` are memory-mapped, nothing is pickled):

- ``meta.json``: rows, dim, the first row's key, the documents ``[doc_id, sha256]`` and the
  approximate index's parameters;
- ``rows.npy`` (int32): each row's document, an index into ``meta["docs"]``;
- ``chunks.jsonl`` + ``offsets.npy`` (int32, or int64 past 2 GB): one chunk per line, read by byte offset on demand;
- ``vectors.npy`` (float16): the unit vectors, for exact cosines; ``ann.faiss``: an approximate
  index over a segment of ``faiss_flat_max`` rows or more, whose shortlist is re-scored from
  ``vectors.npy`` (``rag.storage.segments.ann``: IVF with 4-bit fast-scan PQ codes, 48 bytes a
  384-dim vector in memory; segments written by earlier versions hold IVF-SQ8, 384 bytes);
- BM25 postings by term: ``terms.npy`` (sorted uint64 hashes of the terms), ``term_ptr.npy`` (int32, or
  int64 past 2**31 postings), ``post_rows.npy`` (int32), ``post_tf.npy`` (uint8: a count over 255 in one chunk is stored as
  255, in every build alike) and ``doclen.npy`` (int32). Scores are
  computed at query time from these raw counts with the statistics of every live row of every
  segment, so they are the scores of a fresh build over the same chunks, however the chunks are
  split into segments and whatever was deleted (bm25s precomputes scores with N and avgdl baked
  in, which is why it must rebuild on every change);
- ``term_maxtf.npy`` (uint8) and ``term_minlen.npy`` (uint16), per term: the largest count and the
  shortest row among its postings, which bound the term's BM25 weight in any row of the segment
  (``rag.storage.segments.bm25_topk`` skips what cannot reach the top k with them). A segment written
  before them has neither: its bounds are then the largest count possible and its shortest row;
- ``date_ix.npy`` and ``article_ix.npy`` (int32, -1: none) into the distinct dates and article
  titles of ``labels.json``: what the date and article filters read without parsing chunks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson

from rag.errors import IndexCorruptError
from rag.storage import bm25
from rag.storage.checksums import file_checksums
from rag.storage.segments import ann as ann_index
from rag.storage.vectors import describe, tune_after_load
from rag.types import Chunk

ARRAYS = ("rows", "offsets", "vectors", "terms", "term_ptr", "post_rows", "post_tf", "doclen", "date_ix", "article_ix")
BOUNDS = ("term_maxtf", "term_minlen")  # written since the BM25 top k skips; an older segment lacks them
_PREAD = ("vectors", "post_rows", "post_tf")
LOOKUP_READ = 65_536  # postings: a list this long or shorter is read whole to look rows up in it
LOOKUP_MARK = 8  # rows looked up in a list read whole, times this, reach its length: a table, not binary searches
EXACT_ALLOWED = 20_000  # a filter letting at most this many rows of a segment through: searched exactly
MAX_TF = 255  # a term's count in one chunk, as stored (a 750-character chunk holds a term 255 times only if it is nothing else)
# ``terms.npy`` holds ``rag.storage.bm25.term_hash`` read little-endian: segments on disk were written so,
# and reading a query term another way would find none of their postings. Two terms of one index sharing
# a hash would merge their postings: at a million distinct terms the chance is about 3e-8.
TERM_BYTEORDER: Literal["little"] = "little"


# ---------------------------------------------------------------------------------------------- writing


@dataclass
class Rows:
    """What a new segment holds, in row order: chunks as JSON lines, vectors, BM25 term counts."""

    lines: list[bytes]  # each chunk's JSON line (with its newline)
    docs: list[tuple[str, str]]  # (doc_id, sha256)
    row_doc: np.ndarray  # int32 index into docs
    vectors: np.ndarray  # (n, dim) float16 or float32
    term_hashes: np.ndarray  # uint64, the distinct terms' hashes
    post_term: np.ndarray  # per posting: index into term_hashes
    post_row: np.ndarray  # per posting: row
    post_tf: np.ndarray  # per posting: count
    doclen: np.ndarray  # int32 terms per row (with repeats): BM25's document length
    date_ix: np.ndarray  # int32 into dates, -1: none
    article_ix: np.ndarray  # int32 into articles, -1: none
    dates: list[str]
    articles: list[str]


def rows_of_chunks(chunks: Sequence[Chunk], vectors: np.ndarray, shas: dict[str, str],
                   terms: Iterable[Sequence[str]]) -> Rows:
    """``Rows`` of new chunks; ``terms`` gives each chunk's BM25 terms (``index_terms`` of its indexed text)."""
    docs: dict[str, int] = {}
    vocab: dict[str, int] = {}
    articles: dict[str, int] = {}
    dates: dict[str, int] = {}
    row_doc, lines, date_ix, article_ix, doclen = [], [], [], [], []
    term_ids: list[np.ndarray] = []
    for chunk, chunk_terms in zip(chunks, terms, strict=True):
        row_doc.append(docs.setdefault(chunk.doc_id, len(docs)))
        lines.append((json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n").encode("utf-8"))
        date = chunk.meta.get("date")
        date_ix.append(dates.setdefault(date, len(dates)) if date else -1)
        title = chunk.meta.get("article")
        article_ix.append(articles.setdefault(title, len(articles)) if title else -1)
        doclen.append(len(chunk_terms))
        term_ids.append(np.fromiter((vocab.setdefault(t, len(vocab)) for t in chunk_terms), np.int64,
                                    count=len(chunk_terms)))
    lengths = np.array([len(t) for t in term_ids], np.int64)
    term, row, tf = postings_of(np.concatenate(term_ids) if term_ids else np.zeros(0, np.int64), lengths)
    del term_ids
    hashes = np.fromiter((bm25.term_hash(t, TERM_BYTEORDER) for t in vocab), np.uint64, count=len(vocab))
    return Rows(lines, [(d, shas[d]) for d in docs], np.array(row_doc, np.int32), vectors,
                hashes, term, row, tf, np.array(doclen, np.int32),
                np.array(date_ix, np.int32), np.array(article_ix, np.int32), list(dates), list(articles))


def postings_of(ids: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(term, row, count) of each distinct term of each row, from the rows' term ids laid end to end
    (``lengths[i]`` of them for row i); counts capped at ``MAX_TF``. One int64 key per occurrence,
    sorted in place and counted by runs: ``np.unique`` with counts kept a sorted copy beside it."""
    nb = max(len(lengths), 1)
    key = np.asarray(ids).astype(np.int64)
    key *= nb
    key += np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    key.sort()
    if not len(key):
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.uint8)
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    tf = np.minimum(np.diff(np.append(starts, len(key))), MAX_TF).astype(np.uint8)
    key = key[starts]
    return (key // nb).astype(np.int32), (key % nb).astype(np.int32), tf


def _cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def rows_of_segments(parts: Sequence[tuple[Segment, np.ndarray]]) -> Rows:
    """``Rows`` of the given rows of open segments (each ``(segment, sorted rows)``), in that order: a
    merge. Postings, lengths and vectors are copied, not recomputed, so no text is segmented again."""
    docs: dict[tuple[str, str], int] = {}
    articles: dict[str, int] = {}
    dates: dict[str, int] = {}
    lines: list[bytes] = []
    row_doc, vectors, doclen, date_ix, article_ix = [], [], [], [], []
    hashes, post_row, post_tf = [], [], []
    base = 0
    for seg, keep in parts:
        keep = np.asarray(keep, dtype=np.int64)
        doc_map = np.array([docs.setdefault(d, len(docs)) for d in seg.docs] or [0], np.int32)
        art_map = np.array([articles.setdefault(t, len(articles)) for t in seg.articles] + [-1], np.int32)
        date_map = np.array([dates.setdefault(t, len(dates)) for t in seg.dates] + [-1], np.int32)
        row_doc.append(doc_map[np.asarray(seg.a["rows"])[keep]])
        lines.extend(seg.line(int(r)) for r in keep)
        vectors.append(np.asarray(seg.a["vectors"][keep]))
        doclen.append(seg.doclen[keep])
        date_ix.append(date_map[np.asarray(seg.a["date_ix"])[keep]])
        article_ix.append(art_map[np.asarray(seg.a["article_ix"])[keep]])  # -1 stays -1 (the appended entry)
        new_row = np.full(seg.rows, -1, np.int64)
        new_row[keep] = base + np.arange(len(keep))
        rows_all = np.asarray(seg.a["post_rows"], dtype=np.int64)
        live = new_row[rows_all] >= 0
        per_posting = np.repeat(np.asarray(seg.a["terms"]), np.diff(np.asarray(seg.a["term_ptr"])))
        hashes.append(per_posting[live])
        post_row.append(new_row[rows_all[live]])
        post_tf.append(np.asarray(seg.a["post_tf"])[live])
        base += len(keep)
    dim = parts[0][0].meta["dim"] if parts else 0
    h = _cat(hashes, np.uint64)
    return Rows(lines, list(docs), _cat(row_doc, np.int32),
                np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float16),
                h, np.arange(len(h)), _cat(post_row, np.int64), _cat(post_tf, np.uint8), _cat(doclen, np.int32),
                _cat(date_ix, np.int32), _cat(article_ix, np.int32), list(dates), list(articles))


def write_segment(folder: Path, rows: Rows, key_base: int, ann: bool) -> dict[str, str]:
    """Write ``rows`` as a segment in ``folder`` (which must not exist); returns its files' SHA-256s.

    ``ann`` builds the approximate index beside the exact vectors (large segments)."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    tmp.mkdir(parents=True)
    n = len(rows.lines)
    terms, term_ptr, post_rows, post_tf = _sorted_postings(rows, n)
    maxtf, minlen = _term_bounds(term_ptr, post_rows, post_tf, rows.doclen)
    vectors16 = np.ascontiguousarray(rows.vectors, dtype=np.float16).reshape(n, -1)
    arrays = {
        "rows": rows.row_doc.astype(np.int32),
        "offsets": _narrow(np.concatenate([[0], np.cumsum([len(line) for line in rows.lines], dtype=np.int64)])),
        "vectors": vectors16,
        "terms": terms,
        "term_ptr": _narrow(term_ptr),
        "post_rows": post_rows,
        "post_tf": post_tf,
        "doclen": rows.doclen.astype(np.int32),
        "date_ix": rows.date_ix.astype(np.int32),
        "article_ix": rows.article_ix.astype(np.int32),
        "term_maxtf": maxtf,
        "term_minlen": minlen,
    }
    for name, arr in arrays.items():
        np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
    with (tmp / "chunks.jsonl").open("wb") as f:
        f.writelines(rows.lines)
    labels = {"articles": rows.articles, "dates": rows.dates}
    (tmp / "labels.json").write_text(json.dumps(labels, ensure_ascii=False), encoding="utf-8")
    ann_params = None
    if ann and n:
        import faiss  # noqa: PLC0415 - FAISS (~0.3 s) only for a large segment ANN index

        index = ann_index.build(vectors16.astype(np.float32))
        faiss.write_index(index, str(tmp / "ann.faiss"))
        ann_params = describe(index)
    meta = {"rows": n, "dim": int(vectors16.shape[1]) if n else int(rows.vectors.shape[-1]), "key_base": key_base,
            "docs": [list(d) for d in rows.docs], "ann": ann_params}
    (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    for p in tmp.iterdir():
        with p.open("rb") as f:
            os.fsync(f.fileno())
    os.replace(tmp, folder)
    return file_checksums(folder, sorted(p.name for p in folder.iterdir()))


def _sorted_postings(rows: Rows, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The postings ordered by term hash, then row: (distinct hashes, term_ptr, rows int32, counts uint8).

    Each posting is packed into one int64, (hash rank * n + row) * 256 + count, and sorted in place:
    a lexsort with its gathered keys and index arrays took three times the memory (a segment of
    250k chunks holds tens of millions of postings)."""
    # a merge lists one hash per posting, so hashes repeat: rank the distinct ones
    hashes, rank = np.unique(rows.term_hashes, return_inverse=True)
    span = max(n, 1)
    if len(hashes) * span * (MAX_TF + 1) >= 2**63:  # far beyond any segment (1e7 terms x 1e9 rows); kept honest
        raise ValueError(f"a segment of {n} rows and {len(hashes)} terms is too large to write")
    key = rank.astype(np.int64)[rows.post_term]
    del rank
    key *= span
    key += rows.post_row
    key <<= 8
    key |= np.minimum(rows.post_tf, MAX_TF).astype(np.int64)
    key.sort()
    post_tf = (key & MAX_TF).astype(np.uint8)
    key >>= 8
    post_rows = (key % span).astype(np.int32)
    key //= span  # now each posting's term rank
    counts = np.bincount(key, minlength=len(hashes))
    del key
    used = counts > 0
    term_ptr = np.concatenate([[0], np.cumsum(counts[used])]).astype(np.int64)
    return hashes[used].astype(np.uint64), term_ptr, post_rows, post_tf


def _narrow(positions: np.ndarray) -> np.ndarray:
    """Ascending positions as int32 when the last fits (every segment short of 2 GB of chunks or 2**31
    postings), else int64: readers take either, and int32 saves 18 bytes a chunk at 10M chunks."""
    fits = not len(positions) or int(positions[-1]) < 2**31
    return positions.astype(np.int32 if fits else np.int64)


def _term_bounds(term_ptr: np.ndarray, post_rows: np.ndarray, post_tf: np.ndarray,
                 doclen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per term (postings grouped by ``term_ptr``, none empty): its largest count and its shortest row."""
    if not len(post_tf):
        return np.zeros(0, np.uint8), np.zeros(0, np.uint16)
    starts = term_ptr[:-1]
    lengths = np.asarray(doclen, dtype=np.int32)[post_rows]
    # uint16: a lower bound on a length stays one when clipped down (2 bytes a term: 8 bytes a chunk at 1M)
    shortest = np.minimum(np.minimum.reduceat(lengths, starts), np.iinfo(np.uint16).max)
    return np.maximum.reduceat(post_tf, starts).astype(np.uint8), shortest.astype(np.uint16)


# ---------------------------------------------------------------------------------------------- reading


class Segment:
    """An open segment: its arrays memory-mapped, its approximate index (if any) in memory."""

    def __init__(self, folder: Path, checksums: dict[str, str] | None = None) -> None:
        self.folder, self.name = folder, folder.name
        try:
            if checksums:
                _check(folder, checksums)
            self.meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            self.a = {n: np.load(folder / f"{n}.npy", mmap_mode="r", allow_pickle=False) for n in ARRAYS}
            self.a |= {n: np.load(folder / f"{n}.npy", mmap_mode="r", allow_pickle=False) for n in BOUNDS
                       if (folder / f"{n}.npy").is_file()}
            labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
            self.articles: list[str] = labels["articles"]
            self.dates: list[str] = labels["dates"]
            self._file = (folder / "chunks.jsonl").open("rb")
            size = os.fstat(self._file.fileno()).st_size
            self._size = size
            # Queries read a few rows and postings at random places; read with pread, not through the maps:
            # each page fault on a map also maps its cached neighbours, and a serving process at 1M chunks
            # held 1.4 GB more of these files after 100 questions (bench/scale.py). Merges use the maps.
            self._reader = {n: _ArrayReader(folder / f"{n}.npy", self.a[n]) for n in _PREAD}
        except (OSError, ValueError, KeyError) as exc:
            raise IndexCorruptError(f"cannot read the index segment {folder}: {exc}; rebuild with "
                                    "`rag index --rebuild`") from exc
        self.rows = int(self.meta["rows"])
        self.key_base = int(self.meta["key_base"])
        self.docs = [tuple(d) for d in self.meta["docs"]]
        if len(self.a["rows"]) != self.rows or len(self.a["offsets"]) != self.rows + 1 or \
                int(self.a["offsets"][-1]) != self._size:
            raise IndexCorruptError(f"the index segment {folder} disagrees with itself ({self.rows} rows); rebuild "
                                    "with `rag index --rebuild`")
        self.doclen = np.asarray(self.a["doclen"], dtype=np.int64)  # read on every BM25 query: in memory
        if "term_maxtf" in self.a and len(self.a["term_maxtf"]) != len(self.a["terms"]):
            raise IndexCorruptError(f"the index segment {folder} has {len(self.a['terms'])} terms but bounds for "
                                    f"{len(self.a['term_maxtf'])}; rebuild with `rag index --rebuild`")
        self._min_len = int(self.doclen.min()) if self.rows else 0
        self.ann = self._load_ann()
        self._flat = None

    def _load_ann(self) -> Any:
        if not (self.folder / "ann.faiss").is_file():
            return None
        import faiss  # noqa: PLC0415 - FAISS only when a segment has an ANN index

        try:
            index = faiss.read_index(str(self.folder / "ann.faiss"))
        except RuntimeError as exc:
            raise IndexCorruptError(f"cannot read {self.folder / 'ann.faiss'}: {exc}") from exc
        return tune_after_load(index, self.meta.get("ann"))

    # ---- dense ----

    def flat(self) -> Any:
        """An exact index over the vectors (small segments), built on first use."""
        if self._flat is None:
            import faiss  # noqa: PLC0415 - FAISS when the exact index is first built

            index = faiss.IndexFlatIP(int(self.meta["dim"]))
            if self.rows:
                index.add(np.asarray(self.a["vectors"], dtype=np.float32))
            self._flat = index
        return self._flat

    def dense(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cosines) of the ``k`` rows nearest ``q`` among ``mask`` (None: every row), best first."""
        k = min(k, self.rows)
        if k <= 0 or (mask is not None and not mask.any()):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if self.ann is None:
            return self._flat_search(q, k, mask)
        if self.exact_only(mask):  # a small allowed set: exact (an ID filter on IVF misses)
            rows = np.flatnonzero(mask)
            return self._best(rows, self.cosines(rows, q), k)
        rows, _ = self.approximate(q, self.shortlist(k), mask)
        return self._best(rows, self.cosines(rows, q), k)

    def _flat_search(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        import faiss  # noqa: PLC0415 - FAISS when a segment is first searched

        x = np.ascontiguousarray(q, dtype=np.float32).reshape(1, -1)
        index = self.flat()
        if mask is None:
            scores, ids = index.search(x, k)
        else:
            sel = faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little"))
            scores, ids = index.search(x, k, params=faiss.SearchParameters(sel=sel))
        keep = ids[0] >= 0
        return ids[0][keep].astype(np.int64), scores[0][keep]

    def lists(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inner products, list numbers) of the query with every IVF list's centroid, best first."""
        x = np.ascontiguousarray(q, dtype=np.float32).reshape(1, -1)
        scores, lists = self.ann.quantizer.search(x, int(self.ann.nlist))
        return scores[0], lists[0]

    def approximate_in(self, q: np.ndarray, n: int, lists: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``approximate`` over the given IVF lists only (at most ``nprobe`` of them, best first), every row allowed."""
        width = int(self.ann.nprobe)
        assign = np.full((1, width), -1, np.int64)  # FAISS skips a list number below 0
        centroid = np.zeros((1, width), np.float32)
        assign[0, : min(width, len(lists))] = lists[:width]
        centroid[0, : min(width, len(lists))] = scores[:width]
        x = np.ascontiguousarray(q, dtype=np.float32).reshape(1, -1)
        found, ids = self.ann.search_preassigned(x, min(self.rows, n), assign, centroid)
        keep = ids[0] >= 0
        return ids[0][keep].astype(np.int64), found[0][keep]

    def shortlist(self, k: int) -> int:
        """How many approximate neighbours are re-scored exactly for the ``k`` best (an IVF segment)."""
        return ann_index.shortlist(k, self.ann)

    def exact_only(self, mask: np.ndarray | None) -> bool:
        """Whether ``dense`` searches this segment exactly: no IVF index, or few rows allowed (an ID filter
        on IVF misses some)."""
        return self.ann is None or (mask is not None and int(mask.sum()) <= EXACT_ALLOWED)

    def approximate(self, q: np.ndarray, n: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, approximate inner products) of the IVF index's ``n`` best rows among ``mask``: a
        shortlist for exact re-scoring (a segment with an approximate index only)."""
        import faiss  # noqa: PLC0415 - FAISS when a segment is first searched

        x = np.ascontiguousarray(q, dtype=np.float32).reshape(1, -1)
        n = min(self.rows, n)
        if mask is None:
            scores, ids = self.ann.search(x, n)
        else:
            sel = faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little"))
            scores, ids = self.ann.search(x, n, params=faiss.SearchParametersIVF(sel=sel, nprobe=self.ann.nprobe))
        keep = ids[0] >= 0
        return ids[0][keep].astype(np.int64), scores[0][keep]

    @staticmethod
    def _best(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(-scores, kind="stable")[:k]
        return rows[order], scores[order]

    def cosines(self, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Exact inner products with the stored (float16) vectors of ``rows``."""
        if not len(rows):
            return np.zeros(0, np.float32)
        order = np.argsort(rows)  # sorted reads from the memory map, then back to the asked order
        vecs = self._reader["vectors"].rows(rows[order]).astype(np.float32)
        out = np.empty(len(rows), np.float32)
        out[order] = vecs @ np.asarray(q, dtype=np.float32)
        return out

    # ---- lexical ----

    def term_lists(self, hashes: np.ndarray) -> list[Span | None]:
        """Per term hash: where its postings lie in this segment, and its bounds; None when it is not here.
        Nothing is read from the posting files: ``rows_span`` and ``tf_span`` read them. Each array is
        indexed once for all the terms (an index into a memory map a term at a time cost about a
        millisecond a question over 40 segments)."""
        terms = self.a["terms"]
        if not len(terms):
            return [None] * len(hashes)
        at = np.minimum(np.searchsorted(terms, hashes), len(terms) - 1)
        here = np.asarray(terms[at]) == hashes
        ptr = self.a["term_ptr"]
        lo, hi = np.asarray(ptr[at]), np.asarray(ptr[at + 1])
        if "term_maxtf" in self.a:
            max_tf, min_len = np.asarray(self.a["term_maxtf"][at]), np.asarray(self.a["term_minlen"][at])
        else:  # a segment written before the bounds: the loosest true ones
            max_tf, min_len = np.full(len(at), MAX_TF), np.full(len(at), self._min_len)
        return [Span(int(lo[j]), int(hi[j]), int(max_tf[j]), int(min_len[j])) if here[j] else None
                for j in range(len(hashes))]

    def rows_span(self, lo: int, hi: int) -> np.ndarray:
        """Posting rows ``lo:hi`` (one term's rows ascending, when the span is its ``Span``)."""
        return self._reader["post_rows"].span(lo, hi)

    def tf_span(self, lo: int, hi: int) -> np.ndarray:
        return self._reader["post_tf"].span(lo, hi)

    def lookup(self, lo: int, hi: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of ``rows`` (ascending) postings ``lo:hi`` (one term's) hold, and their counts there.

        A long list is binary-searched through the memory map, touching a few pages a row: reading a
        common term's whole list to look up a few hundred rows read ~100 MB a question at 10M chunks."""
        read = hi - lo <= LOOKUP_READ or len(rows) * 64 >= hi - lo
        span = self.rows_span(lo, hi) if read else self.a["post_rows"][lo:hi]
        if read and len(rows) * LOOKUP_MARK >= hi - lo:
            # As many rows as a few postings each: write the list's counts into a table of the segment's
            # rows (0: not in the list; a posting's count is at least 1) and read the rows' entries, one
            # pass each, instead of a binary search a row (22,000 rows in a 22,000-long list: ~60
            # against 330 us; at 10M such lookups were 22 ms of a slow question).
            counts = np.zeros(self.rows, self.a["post_tf"].dtype)
            counts[span] = self.tf_span(lo, hi)
            got = counts[rows]
            hit = got > 0
            return hit, got[hit]
        pos = np.minimum(np.searchsorted(span, rows), hi - lo - 1)
        hit = np.asarray(span[pos]) == rows
        tf = self.tf_span(lo, hi)[pos[hit]] if read else np.asarray(self.a["post_tf"][lo + pos[hit]])
        return hit, tf

    # ---- chunks ----

    def chunk(self, row: int) -> Chunk:
        return Chunk.from_dict(orjson.loads(self.line(row)))  # a search reads ~200: orjson parses 3x faster than json

    def line(self, row: int) -> bytes:
        off = self.a["offsets"]
        start = int(off[row])
        return os.pread(self._file.fileno(), int(off[row + 1]) - start, start)

    def close(self) -> None:
        self._file.close()
        for reader in self._reader.values():
            reader.close()


@dataclass(frozen=True)
class Span:
    """One term's postings in a segment: rows ``lo:hi`` of the posting files, its largest count and shortest row."""

    lo: int
    hi: int
    max_tf: int
    min_len: int


class _ArrayReader:
    """Rows or spans of a C-ordered ``.npy`` file read with ``os.pread`` (see ``Segment.__init__``)."""

    def __init__(self, path: Path, mapped: np.ndarray) -> None:
        self.dtype, self.shape = mapped.dtype, mapped.shape
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.offset = int(getattr(mapped, "offset", 0))  # np.memmap: where the data starts in the file
        self.fd = os.open(path, os.O_RDONLY)

    def span(self, lo: int, hi: int) -> np.ndarray:
        data = os.pread(self.fd, (hi - lo) * self.row_bytes, self.offset + lo * self.row_bytes)
        return np.frombuffer(data, self.dtype).reshape(hi - lo, *self.shape[1:])

    def rows(self, rows: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros((0, *self.shape[1:]), self.dtype)
        fd, size, base = self.fd, self.row_bytes, self.offset
        # one array from the joined bytes: 0.28 ms for 200 rows of a 1M-chunk index, against 0.72 ms for an array a row
        data = b"".join([os.pread(fd, size, base + int(r) * size) for r in rows])
        return np.frombuffer(data, self.dtype).reshape(len(rows), *self.shape[1:])

    def close(self) -> None:
        os.close(self.fd)


def _check(folder: Path, checksums: dict[str, str]) -> None:
    for name in sorted(checksums):
        if not (folder / name).is_file():
            raise IndexCorruptError(f"the index segment {folder} lacks {name}; rebuild with `rag index --rebuild`")
    got = file_checksums(folder, sorted(checksums))  # several files at once: hashlib releases the GIL
    for name, want in sorted(checksums.items()):
        if got[name] != want:
            raise IndexCorruptError(f"{folder / name} does not match its checksum in the manifest (damaged or "
                                    "changed outside rag); rebuild with `rag index --rebuild`")


__all__ = [
    "ARRAYS",
    "BOUNDS",
    "TERM_BYTEORDER",
    "Rows",
    "Segment",
    "Span",
    "postings_of",
    "rows_of_chunks",
    "rows_of_segments",
    "write_segment",
]
