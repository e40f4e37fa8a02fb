"""Turn source files into a new index snapshot: load, clean, chunk, embed what changed, rebuild search structures."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.embedding.backends import Embedder
from rag.indexing.embed import embed, embedder_entry
from rag.indexing.scan import TextKeeper, scan
from rag.ingest.chunking import ChunkSettings
from rag.storage.faiss.snapshot import Snapshot, new_faiss_index
from rag.storage.lexical import LexicalIndex
from rag.text.indexed import indexed_text
from rag.types import Chunk, IndexReport


def empty_snapshot(embedder: Embedder, chunking: ChunkSettings) -> Snapshot:
    return Snapshot(
        chunks=[], vectors=new_faiss_index(np.zeros((0, embedder.dim), np.float32), embedder.dim),
        lexical=LexicalIndex(None, 0), documents={},
        embedder=embedder_entry(embedder), chunking=asdict(chunking),
    )


def build_snapshot(
    old: Snapshot, paths: Sequence[str | Path], embedder: Embedder, chunking: ChunkSettings, *,
    sync: bool, max_bytes: int, progress: bool, batch_size: int = 32, settings: Settings | None = None,
    distributed: Any = None, texts: TextKeeper | None = None,
) -> tuple[Snapshot, IndexReport]:
    """A new snapshot with ``paths`` indexed; ``sync`` also drops vanished files under those folders.

    ``distributed`` (a ``rag.indexing.distributed.RayIngest``) reads, chunks and embeds on a Ray
    cluster instead of in this process; the chunks and, within float noise, the vectors are the same.
    ``texts`` keeps each document's text for the viewer (see ``scan``).
    """
    t0 = time.perf_counter()
    plan = scan(old.documents, old.chunking, paths, chunking, sync=sync, max_bytes=max_bytes, distributed=distributed,
                texts=texts)
    new_docs, new_chunks = plan.new_docs, plan.new_chunks
    drop = set(plan.removed) | set(new_chunks)
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
        embedder=embedder_entry(embedder), chunking=asdict(chunking),
    )
    return snap, plan.report(embedded, reused, len(chunks), t0)


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
    cache.update(zip(todo, embed(embedder, list(todo.values()), progress, batch_size, distributed)))
    rows = [cache[k] for k in keys]
    out = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, embedder.dim), np.float32)
    fresh_keys = keys[len(kept):]
    return out, len(todo), sum(1 for k in fresh_keys if k not in todo)


def _text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


