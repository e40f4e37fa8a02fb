"""Turn source files into a new index snapshot: load, clean, chunk, embed what changed, rebuild search structures."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.embedding.backends import Embedder
from rag.errors import EmbedderError, LoaderError
from rag.ingest.chunking import ChunkSettings, chunk_source, indexed_text
from rag.ingest.files import SourceFile, document_entry, find_files, load_file
from rag.storage.lexical import LexicalIndex
from rag.storage.snapshot import Snapshot, new_faiss_index
from rag.storage.sources import SourceTexts
from rag.types import Chunk, IndexReport


def empty_snapshot(embedder: Embedder, chunking: ChunkSettings) -> Snapshot:
    return Snapshot(
        chunks=[], vectors=new_faiss_index(np.zeros((0, embedder.dim), np.float32), embedder.dim),
        lexical=LexicalIndex(None, 0), documents={},
        embedder=_embedder_entry(embedder), chunking=asdict(chunking),
    )


def build_snapshot(
    old: Snapshot, paths: Sequence[str | Path], embedder: Embedder, chunking: ChunkSettings, *,
    sync: bool, max_bytes: int, progress: bool, batch_size: int = 32, settings: Settings | None = None,
    distributed: Any = None, texts: SourceTexts | None = None,
) -> tuple[Snapshot, IndexReport]:
    """A new snapshot with ``paths`` indexed; ``sync`` also drops vanished files under those folders.

    ``distributed`` (a ``rag.ingest.distributed.RayIngest``) reads, chunks and embeds on a Ray
    cluster instead of in this process; the chunks and, within float noise, the vectors are the same.
    ``texts`` keeps each document's text for the viewer (see ``scan``).
    """
    t0 = time.perf_counter()
    plan = scan(old.documents, old.chunking, paths, chunking, sync=sync, max_bytes=max_bytes, distributed=distributed,
                texts=texts)
    added, updated, unchanged, removed, skipped = plan.added, plan.updated, plan.unchanged, plan.removed, plan.skipped
    new_docs, new_chunks = plan.new_docs, plan.new_chunks
    drop = set(removed) | set(new_chunks)
    kept_at = [i for i, c in enumerate(old.chunks) if c.doc_id not in drop]
    kept = [old.chunks[i] for i in kept_at]
    fresh = [c for doc_id in sorted(new_chunks) for c in new_chunks[doc_id]]
    same = old.chunking == asdict(chunking)
    vectors, embedded, reused = _vectors(old if same else None, kept, fresh, embedder, chunking, progress, batch_size,
                                        distributed)
    chunks = kept + fresh
    documents = {k: v for k, v in old.documents.items() if k not in drop} | new_docs
    snap = Snapshot(
        chunks=chunks, vectors=new_faiss_index(vectors, embedder.dim, settings),
        lexical=_lexical(chunks, chunking, old if same else None, kept_at) if (drop or not old.chunks or not same)
        else old.lexical,
        documents=dict(sorted(documents.items())),
        embedder=_embedder_entry(embedder), chunking=asdict(chunking),
    )
    report = IndexReport(
        added=added, updated=updated, unchanged=unchanged, removed=removed, skipped=skipped,
        chunks_embedded=embedded, chunks_reused=reused, total_chunks=len(chunks),
        seconds=time.perf_counter() - t0,
    )
    return snap, report


@dataclass
class Scan:
    """What indexing ``paths`` changes: documents to add, update, keep or remove, their new chunks, and files skipped."""

    added: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    skipped: dict[str, str]
    new_docs: dict[str, dict]
    new_chunks: dict[str, list[Chunk]]


def scan(
    documents: dict[str, dict], old_chunking: dict, paths: Sequence[str | Path], chunking: ChunkSettings, *,
    sync: bool, max_bytes: int, distributed: Any = None,
    spill: Callable[[dict[str, list[Chunk]], dict[str, dict]], None] | None = None, spill_at: int = 0,
    texts: SourceTexts | None = None,
) -> Scan:
    """Read, clean and chunk the new and changed files among ``paths`` against the indexed ``documents``
    (whatever store holds their chunks); ``sync`` also lists documents whose files under those folders are gone.
    ``distributed`` (``rag.ingest.distributed.RayIngest``) reads and chunks on a Ray cluster.

    ``spill``: once the new chunks held reach ``spill_at``, they are handed to ``spill`` (whole
    documents, in the order read, with ``new_docs`` so far) and no longer held, so a store that
    writes as it goes (segments) indexes a corpus of any size in bounded memory; the returned
    ``new_chunks`` are those never spilled.

    ``texts`` keeps the text each new or updated document was read as (what its chunks' offsets point
    into), before any manifest names it, and an unchanged document's when the index has none yet.
    Files read on a cluster keep none: their text stays on the workers (the viewer rebuilds it from chunks)."""
    files, skipped = find_files(paths)
    renamed = _renamed(documents, files)
    added, updated, unchanged = [], [], []
    new_docs: dict[str, dict] = {}
    new_chunks: dict[str, list[Chunk]] = {}
    held = 0  # chunks in new_chunks
    # on a cluster every file is read and chunked up front, in parallel; the loop below then decides as before
    ready, failed = distributed.prepare(files, chunking, max_bytes) if distributed is not None else ({}, {})
    for src in files:
        known = None if src.doc_id in renamed else documents.get(src.doc_id)
        if src.doc_id in failed:
            skipped[str(src.path)] = failed[src.doc_id]
            continue
        if distributed is None:
            try:
                doc = load_file(src, max_bytes=max_bytes)
            except LoaderError as exc:
                skipped[str(src.path)] = str(exc)
                continue
            entry = document_entry(doc)
        else:
            entry, chunks = ready[src.doc_id]
        if known and (clash := _taken(src, str(entry["sha256"]), known)):
            skipped[str(src.path)] = clash
            continue
        if known and known["sha256"] == entry["sha256"] and old_chunking == asdict(chunking):
            if texts is not None and distributed is None:
                texts.keep_missing(doc, known)
            unchanged.append(src.doc_id)
            continue
        if distributed is None:
            chunks = chunk_source(src.doc_id, doc.text, chunking)
        if not chunks:
            skipped[str(src.path)] = f"{src.doc_id}: no text left after cleaning"
            continue
        if texts is not None and distributed is None:
            texts.keep(doc)
        (updated if known else added).append(src.doc_id)
        new_chunks[src.doc_id] = chunks
        new_docs[src.doc_id] = entry | {"chunks": len(chunks), "indexed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        held += len(chunks)
        if spill is not None and held >= spill_at:
            spill(new_chunks, new_docs)
            new_chunks, held = {}, 0
    # a file now named otherwise (its id qualified beside a namesake) is one document, not two
    moved = {doc_id for doc_id, new_id in renamed.items() if new_id in new_docs or new_id in unchanged}
    removed = sorted(set(_vanished(documents, paths) if sync else []) | moved)
    return Scan(added, updated, unchanged, removed, skipped, new_docs, new_chunks)


def remove_documents(old: Snapshot, doc_ids: Sequence[str], settings: Settings | None = None) -> Snapshot:
    drop = set(doc_ids)
    keep = [i for i, c in enumerate(old.chunks) if c.doc_id not in drop]
    chunks = [old.chunks[i] for i in keep]
    mat = old.vectors.reconstruct_n(0, old.size) if old.size else np.zeros((0, old.embedder["dim"]), np.float32)
    return Snapshot(
        chunks=chunks, vectors=new_faiss_index(mat[keep], int(old.embedder["dim"]), settings),
        lexical=_lexical(chunks, ChunkSettings(**old.chunking), old, keep),
        documents={k: v for k, v in old.documents.items() if k not in drop},
        embedder=old.embedder, chunking=old.chunking,
    )


def _renamed(documents: dict[str, dict], files: Sequence[SourceFile]) -> dict[str, str]:
    """Indexed documents whose file is among ``files`` under another id: old id -> new id."""
    now = {str(src.path): src.doc_id for src in files}
    return {doc_id: now[meta["path"]] for doc_id, meta in documents.items()
            if now.get(meta["path"], doc_id) != doc_id}


def _taken(src: SourceFile, sha256: str, known: dict) -> str | None:
    """Why ``src`` may not have its id: another file that still exists, with other content, is indexed under it.

    The same file, a copy of it (same bytes) or a file whose recorded path is gone (its
    folder was moved) is the same document, updated as before.
    """
    other = Path(known["path"])
    if other == src.path or known["sha256"] == sha256 or not other.is_file():
        return None
    return (f"{src.doc_id}: another document already has this id, {other}, and {src.path} would replace it; "
            f"index a folder holding both (their ids then differ by their folders), rename one of them, "
            f"or delete the indexed one first (rag delete {src.doc_id})")


def _vanished(documents: dict[str, dict], paths: Sequence[str | Path]) -> list[str]:
    """Indexed documents whose source file, inside one of the scanned folders, no longer exists."""
    roots = [Path(p).expanduser().resolve() for p in paths if Path(p).is_dir()]
    gone = []
    for doc_id, meta in documents.items():
        path = Path(meta["path"])
        if any(path.is_relative_to(r) for r in roots) and not path.is_file():
            gone.append(doc_id)
    return sorted(gone)


def _lexical(chunks: list[Chunk], chunking: ChunkSettings, old: Snapshot | None = None,
             kept_at: Sequence[int] = ()) -> LexicalIndex:
    """BM25 over ``chunks``, whose first ``len(kept_at)`` are ``old``'s chunks at those positions:
    their stored terms are reused, only the rest are segmented (see ``lexical``)."""
    texts = [indexed_text(c, chunking.headers, for_dense=False) for c in chunks]
    if old is None or not kept_at:
        return LexicalIndex.build(texts)
    cached, vocab = old.lexical.cached_terms(kept_at)
    return LexicalIndex.build_reusing(texts, cached + [None] * (len(chunks) - len(kept_at)), vocab)


def _vectors(
    old: Snapshot | None, kept: list[Chunk], fresh: list[Chunk], embedder: Embedder, chunking: ChunkSettings,
    progress: bool, batch_size: int, distributed: Any = None,
) -> tuple[np.ndarray, int, int]:
    """Vectors for kept + fresh chunks; a text already embedded (here or in the old index) is never embedded again.

    The cache key is the hash of the exact text the embedder sees, so a renamed file or a
    paragraph repeated across articles costs nothing.  ``old`` is None when the chunking
    settings changed: then the stored vectors are for other texts and nothing is reused.
    """
    chunks = kept + fresh
    keys = [_text_key(indexed_text(c, chunking.headers, for_dense=True)) for c in chunks]
    cache: dict[str, np.ndarray] = {}
    if old is not None and old.chunks:
        mat = old.vectors.reconstruct_n(0, old.size)
        for c, row in zip(old.chunks, mat):
            cache.setdefault(_text_key(indexed_text(c, chunking.headers, for_dense=True)), row)
    todo: dict[str, str] = {}
    for c, key in zip(chunks, keys):
        if key not in cache and key not in todo:
            todo[key] = indexed_text(c, chunking.headers, for_dense=True)
    cache.update(zip(todo, _embed(embedder, list(todo.values()), progress, batch_size, distributed)))
    rows = [cache[k] for k in keys]
    out = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, embedder.dim), np.float32)
    fresh_keys = keys[len(kept):]
    return out, len(todo), sum(1 for k in fresh_keys if k not in todo)


def _embed(embedder: Embedder, texts: list[str], progress: bool, batch_size: int, distributed: Any) -> np.ndarray:
    if distributed is None or not texts:  # nothing new: no cluster round trip
        return embed_with_progress(embedder, texts, progress, batch_size)
    vecs = distributed.embed(texts, embedder.name, batch_size)
    if vecs.shape != (len(texts), embedder.dim):  # the cluster resolved the spec to another model
        raise EmbedderError(f"the Ray workers' {embedder.name!r} gave vectors of shape {vecs.shape}; this process's "
                            f"model gives {embedder.dim} dimensions for {len(texts)} texts: install the same model there")
    return vecs


def _embedder_entry(embedder: Embedder) -> dict[str, object]:
    """What the manifest says of the embedder; the engine is for the record (engines' vectors agree)."""
    return {"name": embedder.name, "dim": embedder.dim, "engine": getattr(embedder, "engine", "unknown")}


def _text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def embed_with_progress(embedder: Embedder, texts: list[str], progress: bool, batch_size: int = 32) -> np.ndarray:
    """Embed passages in length-sorted blocks, showing chunks and chars/s on a progress bar."""
    if not texts:
        return np.zeros((0, embedder.dim), np.float32)
    from tqdm import tqdm  # noqa: PLC0415

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), embedder.dim), np.float32)
    block = max(batch_size * 4, 64)
    t0 = time.perf_counter()
    chars = 0
    with tqdm(total=len(texts), desc="embedding", unit="chunk", disable=not progress, file=sys.stderr) as bar:
        for b in range(0, len(order), block):
            idx = order[b : b + block]
            out[idx] = embedder.embed_passages([texts[i] for i in idx])
            chars += sum(len(texts[i]) for i in idx)
            bar.update(len(idx))
            bar.set_postfix_str(f"{chars / max(time.perf_counter() - t0, 1e-9):,.0f} chars/s")
    return out
