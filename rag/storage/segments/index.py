"""A segmented index in the index folder (``--store segments``): changes cost what changed, not the corpus.

The FAISS snapshot rewrites every file on every change, and bm25s rebuilds its whole matrix:
seconds at 100k chunks, minutes at a million. Here, as in Lucene, an index is a list of immutable
segments (``rag.storage.segments.segment``) named by the manifest:

- adding or updating a document writes one new small segment with its chunks;
- deleting one writes nothing but the manifest: each segment's entry lists the documents whose
  rows in it are live, so a deleted (or replaced) document's rows are simply no longer listed;
- BM25 is scored at query time from raw term counts with the statistics of the live rows
  (N, average length, document frequencies), so its scores equal a fresh build's exactly;
- small segments are merged in the background of a change once there are more than
  ``MERGE_AT`` of them (tiered, as Lucene does: similar sizes together, never a large segment
  for a few small ones), which keeps the number of segments a query visits low.

The manifest is the one commit point: a segment no manifest names (a writer killed while writing)
is invisible and removed by the next write. ``SegmentStore`` is a ``SearchStore``; one is made per
manifest, over segments opened once per process (memory-mapped) and shared between them.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import current
from rag.errors import IndexCorruptError
from rag.filters import Filter
from rag.indexing.embed import embed, embedder_entry
from rag.indexing.scan import scan
from rag.storage import bm25
from rag.storage.segments import bm25_topk
from rag.storage.segments.bm25_topk import TermList
from rag.storage.segments.segment import (
    TERM_BYTEORDER,
    Rows,
    Segment,
    Span,
    rows_of_chunks,
    rows_of_segments,
    write_segment,
)
from rag.storage.state import StoreSnapshot, save_store_manifest
from rag.storage.store import NOTHING
from rag.text.indexed import indexed_text
from rag.text.normalize import index_terms
from rag.types import Chunk

SEGMENTS_DIR = "segments"
MERGE_AT = 8  # more segments than this: the smallest are merged (tiered)
MAX_AUTO_MERGE_ROWS = 200_000  # larger merges wait for `rag index --rebuild` (they re-train the IVF index)
# One change writes segments of at most this many rows. Every search visits every segment, and each
# visit has its fixed costs (a BM25 top k, an IVF probe, their Python around a dozen numpy calls a
# term): at 10M synthetic chunks, warm and alternating, 10 segments of 1,000,000 rows searched at
# p50 25-36 / p95 44-55 ms against 40-48 / 72-80 ms for 40 of 250,000 (docs/performance.md, part 5,
# seventh round).
# The price is the build's memory: a segment's chunks and vectors are held until it is written.
SEGMENT_MAX_ROWS = 1_000_000
DF_MEMO = 65_536  # distinct terms whose live document frequency a view remembers
_log = logging.getLogger(__name__)

_OPEN: dict[tuple[str, str], Segment] = {}  # (folder, segment name) -> open segment: immutable, shared
_OPEN_LOCK = threading.Lock()


def _segment(index_dir: Path, entry: Mapping[str, Any]) -> Segment:
    folder = index_dir / SEGMENTS_DIR / entry["name"]
    key = (str(folder.resolve()), entry["name"])
    with _OPEN_LOCK:
        seg = _OPEN.get(key)
        if seg is None:
            seg = Segment(folder, entry.get("checksums"))  # checked once per process, when first opened
            _OPEN[key] = seg
        return seg


@dataclass(frozen=True)
class _SegmentState:
    """Which rows of one segment are live, given the documents its manifest entry lists."""

    owned: list[str]
    mask: np.ndarray | None  # None: every row
    docmap: dict[str, int]  # live document -> its index in the segment's documents
    n: int
    total_len: int  # BM25 length of the live rows

    @classmethod
    def of(cls, seg: Segment, owned: list[str], documents: Mapping[str, Mapping[str, Any]]) -> _SegmentState:
        listed = set(owned)
        ok = np.array([d in listed and (documents.get(d) or {}).get("sha256") == sha for d, sha in seg.docs]
                      or [False])
        mask = ok[np.asarray(seg.a["rows"])] if seg.rows else np.zeros(0, bool)
        full = bool(mask.all())
        return cls(owned, None if full else mask, {seg.docs[j][0]: int(j) for j in np.flatnonzero(ok)},
                   seg.rows if full else int(mask.sum()), int(seg.doclen.sum() if full else seg.doclen[mask].sum()))


_LAST_VIEW: dict[str, SegmentStore] = {}  # folder -> the newest view made of it here (lends unchanged segments' state)


class SegmentStore:
    """The live rows of the segments one manifest names, as a ``SearchStore``; keys are
    ``key_base + row`` of each segment, never reused within an index folder."""

    kind = "segments"

    def __init__(self, index_dir: Path, entry: Mapping[str, Any], documents: Mapping[str, Mapping[str, Any]],
                 dim: int, previous: SegmentStore | None = None) -> None:
        """``previous`` (default: the last view made of this folder in this process) lends the liveness of
        every segment whose documents are listed as before: a change recomputes only the segments it touched."""
        self.index_dir = index_dir
        self.entry = {"kind": "segments", "next_key": int(entry.get("next_key", 0)),
                      "segments": [dict(s) for s in entry.get("segments", [])]}
        self.dim = dim
        self.segments = [_segment(index_dir, s) for s in self.entry["segments"]]
        self._bases = np.array([s.key_base for s in self.segments], np.int64)
        folder = str(Path(index_dir).resolve())
        lender = previous or _LAST_VIEW.get(folder)
        known = lender._states if lender is not None else {}
        self._states = {}
        for seg, s in zip(self.segments, self.entry["segments"], strict=True):
            owned = list(s.get("docs", []))
            state = known.get(seg.name)
            if state is None or state.owned != owned:
                state = _SegmentState.of(seg, owned, documents)
            self._states[seg.name] = state
        states = [self._states[seg.name] for seg in self.segments]
        self.live: list[np.ndarray | None] = [st.mask for st in states]
        self._doc_rows = {d: (i, j) for i, st in enumerate(states) for d, j in st.docmap.items()}
        self.n = sum(st.n for st in states)
        self.avgdl = sum(st.total_len for st in states) / self.n if self.n else 1.0
        self._df_memo: dict[int, int] = {}
        _LAST_VIEW[folder] = self

    # ---- SearchStore ----

    @property
    def size(self) -> int:
        return self.n

    def where(self, filters: Mapping[str, str]) -> Any:
        if not filters:
            return None

        spec = Filter.of(filters)
        docs = spec.docs(set(self._doc_rows))
        keys = []
        for i, seg in enumerate(self.segments):
            mask = self._mask(i)
            if docs is not None:
                allowed_doc = np.array([d in docs for d, _ in seg.docs] or [False])
                mask &= allowed_doc[np.asarray(seg.a["rows"])]
            if spec.article is not None:
                mask &= _per_label(spec.article_passes, seg.articles, seg.a["article_ix"])
            if spec.dated:
                mask &= _per_label(spec.date_passes, seg.dates, seg.a["date_ix"])
            keys.append(seg.key_base + np.flatnonzero(mask))
        allowed = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        return NOTHING if len(allowed) == 0 else allowed

    def dense(self, query_vector: np.ndarray, k: int, where: Any) -> list[tuple[int, float]]:
        """The ``k`` best cosines. Segments with an IVF index each give a shortlist of approximate
        neighbours; only the best ``n`` of all of them (``n``: the longest of their segments' shortlists
        for ``k``) are re-scored exactly, so the exact reads stay the same however many segments there are
        (each segment's own shortlist re-scored read 40 times as many rows at 10M chunks)."""
        found: list[tuple[int, float]] = []
        approx: list[tuple[int, np.ndarray, np.ndarray]] = []
        whole: list[int] = []  # IVF segments searched with every row allowed: their lists share one budget
        n = 0  # how many approximate neighbours are re-scored
        for i, seg in enumerate(self.segments):
            mask = self._allowed(i, where)
            if mask is not None and not mask.any():
                continue
            if seg.exact_only(mask):
                rows, scores = seg.dense(query_vector, k, mask)
                found += [(seg.key_base + int(r), float(s)) for r, s in zip(rows, scores)]
                continue
            n = max(n, seg.shortlist(k))
            if mask is None and len(self.segments) > 1:
                whole.append(i)
            else:
                approx.append((i, *seg.approximate(query_vector, seg.shortlist(k), mask)))
        approx += self._probe_shared(whole, query_vector, n)
        if approx:
            seg_of = np.concatenate([np.full(len(rows), i) for i, rows, _ in approx])
            rows = np.concatenate([rows for _, rows, _ in approx])
            best = np.argsort(-np.concatenate([s for _, _, s in approx]), kind="stable")[:n]
            for i in np.unique(seg_of[best]):
                picked = np.sort(rows[best[seg_of[best] == i]])
                seg = self.segments[int(i)]
                found += [(seg.key_base + int(r), float(s)) for r, s in zip(picked, seg.cosines(picked, query_vector))]
        return sorted(found, key=lambda kv: (-kv[1], kv[0]))[:k]

    def lexical(self, query: str, k: int, where: Any) -> list[tuple[int, float]]:

        terms = index_terms(query)  # with repeats, in order: bm25s sums a repeated query term again
        if not terms or not self.n:
            return []
        hashes = np.array([bm25.term_hash(t, TERM_BYTEORDER) for t in terms], np.uint64)
        spans = [seg.term_lists(hashes) for seg in self.segments]
        idf = [self._idf(int(h), [seg_spans[j] for seg_spans in spans]) for j, h in enumerate(hashes)]
        found: list[tuple[int, float]] = []
        theta = 0.0  # the k-th best score found so far: what a later segment's rows must reach
        for i, seg in enumerate(self.segments):
            lists = [TermList(j, idf_j, sp.lo, sp.hi, sp.max_tf, sp.min_len)
                     for j, (sp, idf_j) in enumerate(zip(spans[i], idf)) if sp is not None and idf_j is not None]
            mask = self._allowed(i, where)
            if not lists or (mask is not None and not mask.any()):
                continue
            rows, scores = bm25_topk.top_k(seg, lists, self.avgdl, k, mask, theta)
            found += [(seg.key_base + int(r), float(s)) for r, s in zip(rows, scores)]
            found = sorted(found, key=lambda kv: (-kv[1], kv[0]))[:k]
            if len(found) == k:
                theta = found[-1][1]
        return found

    def _probe_shared(self, whole: list[int], q: np.ndarray, n: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Approximate neighbours from the IVF lists of several segments, the lists chosen together: the best
        ``nprobe * ceil(cbrt(segments))`` centroids of all of them (at most each segment's own ``nprobe``
        in one segment). Each segment probing its own ``nprobe`` lists scanned 40 times one segment's
        vectors at 10M chunks; the centroids of all segments rank the same space, so most of those
        lists were far from the question."""
        if not whole:
            return []
        if len(whole) == 1:
            return [(whole[0], *self.segments[whole[0]].approximate(q, n, None))]
        per = [self.segments[i].lists(q) for i in whole]
        budget = shared_lists(max(int(self.segments[i].ann.nprobe) for i in whole), len(whole))
        scores = np.concatenate([s for s, _ in per])
        owner = np.concatenate([np.full(len(s), j) for j, (s, _) in enumerate(per)])
        starts = np.cumsum([0] + [len(s) for s, _ in per])
        picked = np.argsort(-scores, kind="stable")[:budget]
        out = []
        for j, i in enumerate(whole):
            mine = np.sort(picked[owner[picked] == j])  # positions in this segment's best-first order
            if len(mine):
                out.append((i, *self.segments[i].approximate_in(q, n, per[j][1][mine - starts[j]], scores[mine])))
        return out

    def _idf(self, h: int, per_segment: list[Span | None]) -> float | None:
        """A query term's IDF over the live rows (None: no live row holds it, as bm25s skips unknown terms)."""
        df = self._df(h, per_segment)
        return bm25.idf(df, self.n) if df else None

    def _df(self, h: int, per_segment: list[Span | None]) -> int:
        """How many live rows hold a term, given where its postings lie in each segment (None: not there).
        Remembered per view (a view's live rows never change): the fusion asks again for the query's terms."""
        df = self._df_memo.get(h)
        if df is None:
            df = 0
            for i, sp in enumerate(per_segment):
                if sp is not None:
                    live = self.live[i]
                    df += sp.hi - sp.lo if live is None else int(live[self.segments[i].rows_span(sp.lo, sp.hi)].sum())
            if len(self._df_memo) >= DF_MEMO:
                self._df_memo.clear()
            self._df_memo[h] = df
        return df

    def cosines(self, keys: Sequence[int], query_vector: np.ndarray) -> dict[int, float]:
        out: dict[int, float] = {}
        for i, rows, ks in self._by_segment(keys):
            out.update(zip(ks, map(float, self.segments[i].cosines(rows, query_vector))))
        return out

    def chunks(self, keys: Sequence[int]) -> dict[int, Chunk]:
        out: dict[int, Chunk] = {}
        for i, rows, ks in self._by_segment(keys):
            seg = self.segments[i]
            out.update((k, seg.chunk(int(r))) for k, r in zip(ks, rows))
        return out

    def idf(self, term: str) -> float:
        h = np.array([bm25.term_hash(term, TERM_BYTEORDER)], np.uint64)
        df = self._df_memo.get(int(h[0]))  # the fusion asks for the terms the lexical search just counted
        if df is None:
            df = self._df(int(h[0]), [seg.term_lists(h)[0] for seg in self.segments])
        return bm25.idf(df, max(self.n, 1))

    # ---- documents ----

    def doc_chunks(self, doc_id: str) -> list[Chunk]:
        """The live chunks of one document (the viewer's and the documents tab's list)."""
        found = self._rows_of(doc_id)
        return [found[0].chunk(int(r)) for r in found[1]] if found else []

    def doc_chunk_counts(self) -> dict[str, int]:
        """Live chunks per document (``rag verify`` compares them with the manifest)."""
        return {doc_id: len(self._rows_of(doc_id)[1]) for doc_id in sorted(self._doc_rows)}

    def vectors_of(self, doc_ids: Sequence[str], headers: str) -> dict[str, np.ndarray]:
        """The stored vectors of these documents' chunks by the text the embedder saw: an updated
        document re-embeds only its changed chunks (as the FAISS snapshot's text cache does)."""

        out: dict[str, np.ndarray] = {}
        for doc_id in doc_ids:
            seg, rows = self._rows_of(doc_id) or (None, [])
            for r in rows:
                out.setdefault(indexed_text(seg.chunk(int(r)), headers, for_dense=True),
                               np.asarray(seg.a["vectors"][r], np.float32))
        return out

    def verify_files(self) -> list[str]:
        """Every segment's files against the manifest's checksums, read again from disk (``rag verify``)."""
        problems = []
        for s in self.entry["segments"]:
            try:
                Segment(self.index_dir / SEGMENTS_DIR / s["name"], s.get("checksums")).close()
            except IndexCorruptError as exc:
                problems.append(str(exc))
        return problems

    def manifest_entry(self) -> dict[str, Any]:
        return self.entry

    # ---- helpers ----

    def _rows_of(self, doc_id: str) -> tuple[Segment, np.ndarray] | None:
        """The segment holding a live document and its rows there (None: no such document)."""
        where = self._doc_rows.get(doc_id)
        if where is None:
            return None
        seg = self.segments[where[0]]
        return seg, np.flatnonzero(np.asarray(seg.a["rows"]) == where[1])

    def _mask(self, i: int) -> np.ndarray:
        live = self.live[i]
        return np.ones(self.segments[i].rows, bool) if live is None else live.copy()

    def _allowed(self, i: int, where: Any) -> np.ndarray | None:
        """Segment ``i``'s rows a search may return: live and inside ``where`` (None: all of them)."""
        if where is None:
            return self.live[i]
        seg = self.segments[i]
        inside = where[(where >= seg.key_base) & (where < seg.key_base + seg.rows)] - seg.key_base
        mask = np.zeros(seg.rows, bool)
        mask[inside] = True
        return mask if self.live[i] is None else mask & self.live[i]

    def _by_segment(self, keys: Sequence[int]) -> list[tuple[int, np.ndarray, list[int]]]:
        if not len(keys) or not self.segments:
            return []
        ks = np.asarray(list(keys), np.int64)
        seg_of = np.searchsorted(self._bases, ks, side="right") - 1
        out = []
        for i in np.unique(seg_of):
            pick = seg_of == i
            out.append((int(i), ks[pick] - self._bases[i], [int(k) for k in ks[pick]]))
        return out

    def live_rows(self, i: int) -> np.ndarray:
        live = self.live[i]
        return np.arange(self.segments[i].rows) if live is None else np.flatnonzero(live)


def shared_lists(nprobe: int, segments: int) -> int:
    """How many IVF lists ``segments`` unfiltered segments probe together: ``nprobe`` (one segment's tuned
    breadth) times the cube root of their number, rounded up. On 40 segments of 10M synthetic chunks
    (``bench/ivf_budget.py``): x7 (the square root) gave recall@10 0.997 in 44 ms, x4 0.993 in 29 ms, x2
    0.986 in 19 ms, x1 0.957; on 4 segments x2 gave 0.995."""
    return nprobe * math.ceil(segments ** (1 / 3) - 1e-9)


def _per_label(passes: Callable[[str | None], bool], labels: Sequence[str], label_ix: np.ndarray) -> np.ndarray:
    """Each row's ``passes`` of its label (a title or a date), asked once per distinct label of the
    segment: ``label_ix`` indexes ``labels``, -1 (no label) the answer for None."""
    return np.array([*(passes(label) for label in labels), passes(None)], bool)[np.asarray(label_ix)]


# ---------------------------------------------------------------------------------------------- writing


def empty_entry() -> dict[str, Any]:
    return {"kind": "segments", "next_key": 0, "segments": []}


def _next_name(index_dir: Path) -> str:
    folder = index_dir / SEGMENTS_DIR
    numbers = [int(p.name.lstrip(".").split("-")[1].split(".")[0]) for p in folder.glob("*seg-*")
               if p.name.lstrip(".").split("-")[1].split(".")[0].isdigit()] if folder.is_dir() else []
    return f"seg-{max(numbers, default=0) + 1:06d}"


def add_rows(index_dir: Path, entry: dict[str, Any], rows: Rows, ann: bool) -> dict[str, Any]:
    """Write ``rows`` as a new segment; returns its manifest entry (its documents all live)."""
    name = _next_name(index_dir)
    key_base = int(entry["next_key"])
    checksums = write_segment(index_dir / SEGMENTS_DIR / name, rows, key_base, ann)
    entry["next_key"] = key_base + len(rows.lines)
    return {"name": name, "key_base": key_base, "rows": len(rows.lines), "docs": sorted({d for d, _ in rows.docs}),
            "checksums": checksums}


def add_chunks(index_dir: Path, entry: dict[str, Any], chunks: Sequence[Chunk], vectors: np.ndarray,
               shas: dict[str, str], headers: str, flat_max: int) -> list[dict[str, Any]]:
    """New segments holding ``chunks`` (at most ``SEGMENT_MAX_ROWS`` each, a document never split);
    their BM25 terms are segmented here, once."""

    out = []
    start = 0
    while start < len(chunks):
        end = min(start + SEGMENT_MAX_ROWS, len(chunks))
        while end < len(chunks) and chunks[end].doc_id == chunks[end - 1].doc_id:
            end += 1  # a document's chunks stay in one segment: its entry names it there
        part = chunks[start:end]
        terms = (index_terms(indexed_text(c, headers, for_dense=False)) for c in part)
        rows = rows_of_chunks(part, vectors[start:end], shas, terms)
        out.append(add_rows(index_dir, entry, rows, ann=len(part) >= flat_max))
        start = end
    return out


def plan_merge(store: SegmentStore, entries: list[dict[str, Any]]) -> list[int]:
    """Which of ``entries`` (indices) to merge. Only segments of fewer than ``MAX_AUTO_MERGE_ROWS`` live rows
    take part: none while there are at most ``MERGE_AT`` of them; else the smallest, taking the next only
    while it is at most twice the rows already taken (the first two always, if they fit) and the total
    stays within ``MAX_AUTO_MERGE_ROWS``. So a large segment is never rewritten for a few small ones, and
    full segments (a large build's, up to ``SEGMENT_MAX_ROWS`` each) are left alone: at 10M chunks a 10-row change
    merged two of them (32 s) before this rule."""
    sizes = {i: store._states[e["name"]].n for i, e in enumerate(entries)}
    small = sorted((i for i in sizes if sizes[i] < MAX_AUTO_MERGE_ROWS), key=lambda i: (sizes[i], i))
    if len(small) <= MERGE_AT:
        return []
    taken, total = [], 0
    for i in small:
        if total + sizes[i] > MAX_AUTO_MERGE_ROWS or (len(taken) >= 2 and sizes[i] > 2 * total):
            break
        taken.append(i)
        total += sizes[i]
    return sorted(taken) if len(taken) >= 2 else []


def merge(index_dir: Path, entry: dict[str, Any], store: SegmentStore, picked: list[int], documents: Mapping[str, Any],
          flat_max: int) -> dict[str, Any]:
    """One new segment with the live rows (as ``store`` sees them) of its segments at ``picked``
    (postings copied, nothing re-segmented)."""
    rows = rows_of_segments([(store.segments[i], store.live_rows(i)) for i in picked])
    new = add_rows(index_dir, entry, rows, ann=len(rows.lines) >= flat_max)
    new["docs"] = sorted({d for i in picked for d in store.entry["segments"][i].get("docs", [])} & set(documents))
    return new


def collect_garbage(index_dir: Path, entry: Mapping[str, Any]) -> None:
    """Remove segment folders the manifest in force does not name (replaced, merged, or left by a killed writer)."""
    folder = index_dir / SEGMENTS_DIR
    if not folder.is_dir():
        return
    named = {s["name"] for s in entry.get("segments", [])}
    for p in folder.iterdir():
        if p.name not in named:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    with _OPEN_LOCK:  # closed segments stay readable to the views that hold them (their maps stay open)
        for key in [k for k in _OPEN if Path(k[0]).parent == folder.resolve() and k[1] not in named]:
            del _OPEN[key]


def load(index_dir: Path, manifest: Mapping[str, Any]) -> Any:
    documents = dict(manifest.get("documents") or {})
    store = SegmentStore(index_dir, manifest["store"], documents, int(manifest["embedder"]["dim"]))
    return StoreSnapshot(store, documents, manifest["embedder"], manifest.get("chunking", {}), dict(manifest))


def empty(index_dir: Path, embedder: dict[str, Any], chunking: dict[str, Any]) -> Any:
    return StoreSnapshot(SegmentStore(index_dir, empty_entry(), {}, int(embedder["dim"])), {}, embedder, chunking)


def _flat_max(given: int | None) -> int:
    """Segments of this many rows or more get an approximate index: ``given``, else the setting ``faiss_flat_max``."""

    return current().faiss_flat_max if given is None else given


def commit(index_dir: Path, base: Any, documents: dict[str, dict[str, Any]],
           entries: list[dict[str, Any]], next_key: int, flat_max: int | None, embedder: dict[str, Any],
           chunking: dict[str, Any]) -> Any:
    """Merge if due, save the manifest naming ``entries`` and ``documents`` (the commit), remove garbage.

    ``flat_max`` (default: the setting ``faiss_flat_max``): a merged segment this large gets an approximate index."""
    flat_max = _flat_max(flat_max)

    entries = [e for e in entries if e.get("docs")]  # a segment with no live document is gone
    entry = {"kind": "segments", "next_key": next_key, "segments": entries}
    previous = base.store if isinstance(base.store, SegmentStore) else None
    store = SegmentStore(index_dir, entry, documents, int(embedder["dim"]), previous)
    picked = plan_merge(store, entries)
    if picked:
        t0 = time.perf_counter()
        merged = merge(index_dir, entry, store, picked, documents, flat_max)
        entry["segments"] = [e for i, e in enumerate(entries) if i not in set(picked)] + [merged]
        _log.info("merged %d segments into %s (%d rows) in %.2f s", len(picked), merged["name"], merged["rows"],
                  time.perf_counter() - t0)
        store = SegmentStore(index_dir, entry, documents, int(embedder["dim"]), store)
    ordered = documents if list(documents) == sorted(documents) else dict(sorted(documents.items()))
    snap = StoreSnapshot(store, ordered, embedder, chunking)
    save_store_manifest(index_dir, snap, previous=base.manifest or None)
    collect_garbage(index_dir, entry)
    return snap


def update(base: Any, index_dir: Path, paths: Any, embedder: Any, chunking: Any, *, sync: bool,
           max_bytes: int, progress: bool, batch_size: int, distributed: Any = None, flat_max: int | None = None,
           texts: Any = None) -> tuple[Any, Any]:
    """``build_snapshot`` for a segmented index: the scan's new chunks embedded into new segments,
    the replaced and removed documents dropped from their segments' entries, one manifest save.

    New chunks are written as they come, a segment every ``SEGMENT_MAX_ROWS`` chunks, and then no
    longer held: indexing a large corpus takes the memory of one segment, not of the corpus. Until the
    manifest names them they are invisible, and a killed run's segments are removed by the next write.
    ``texts`` (``rag.storage.sources.SourceTexts``) keeps the documents' texts for the viewer, as ``scan`` says."""
    t0 = time.perf_counter()
    entry = dict(base.store.manifest_entry())
    written: list[dict[str, Any]] = []
    reused = embedded = 0
    same = base.chunking == asdict(chunking)

    def write(new_chunks: dict[str, list[Chunk]], new_docs: dict[str, dict]) -> None:
        nonlocal reused, embedded
        if new_chunks:
            updated = [d for d in new_chunks if d in base.documents] if same else []
            shas = {d: new_docs[d]["sha256"] for d in new_chunks}
            entries, r, e = _write_new(index_dir, entry, base.store, updated, new_chunks, shas, embedder, chunking,
                                       progress, batch_size, distributed, _flat_max(flat_max))
            written.extend(entries)
            reused, embedded = reused + r, embedded + e

    plan = scan(base.documents, base.chunking, paths, chunking, sync=sync, max_bytes=max_bytes, distributed=distributed,
                spill=write, spill_at=SEGMENT_MAX_ROWS, texts=texts)
    write(plan.new_chunks, plan.new_docs)
    drop = set(plan.removed) | set(plan.new_docs)
    snap = base
    if drop or not base.manifest:
        entries = [dict(e, docs=[d for d in e["docs"] if d not in drop]) for e in entry["segments"]] + written
        documents = {k: v for k, v in base.documents.items() if k not in drop} | plan.new_docs
        snap = commit(index_dir, base, documents, entries, int(entry["next_key"]), flat_max,
                      base.embedder or embedder_entry(embedder), asdict(chunking))
    return snap, plan.report(embedded, reused, snap.size, t0)


def _write_new(index_dir: Path, entry: dict[str, Any], store: Any, updated: list[str],
               new_chunks: dict[str, list[Chunk]], shas: dict[str, str], embedder: Any, chunking: Any, progress: bool,
               batch_size: int, distributed: Any, flat_max: int) -> tuple[list[dict[str, Any]], int, int]:
    """Embed one batch of new documents' chunks (re-using the vectors that the ``updated`` documents'
    unchanged chunks have in ``store``) and write them as new segments: (their entries, chunks reused, embedded)."""
    fresh = [c for doc_id in sorted(new_chunks) for c in new_chunks[doc_id]]
    texts = [indexed_text(c, chunking.headers, for_dense=True) for c in fresh]
    known = store.vectors_of(sorted(updated), chunking.headers) if updated else {}
    todo = sorted({t for t in texts if t not in known})
    reused = sum(t in known for t in texts)
    known |= dict(zip(todo, embed(embedder, todo, progress, batch_size, distributed)))
    vectors = np.vstack([known[t] for t in texts]).astype(np.float32)
    return add_chunks(index_dir, entry, fresh, vectors, shas, chunking.headers, flat_max), reused, len(todo)


def delete(base: Any, index_dir: Path, doc_ids: Sequence[str], flat_max: int | None = None) -> Any:
    """Remove documents: their segments' entries stop listing them, in one manifest save; no data file is written."""
    drop = set(doc_ids)
    entry = base.store.manifest_entry()
    entries = [dict(e, docs=[d for d in e["docs"] if d not in drop]) for e in entry["segments"]]
    documents = {k: v for k, v in base.documents.items() if k not in drop}
    return commit(index_dir, base, documents, entries, int(entry["next_key"]), flat_max, base.embedder,
                  base.chunking)


__all__ = ["MERGE_AT", "SEGMENTS_DIR", "SegmentStore", "add_chunks", "collect_garbage", "commit", "delete",
           "empty", "load", "merge", "plan_merge", "shared_lists", "update"]
