"""What indexing some paths changes: new, changed, unchanged and vanished documents, and the new
documents' chunks. Every backend plans its writes with ``scan``, whatever holds its chunks."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from rag.errors import LoaderError
from rag.ingest.chunking import ChunkSettings, chunk_source
from rag.ingest.files import SourceFile, document_entry, find_files, load_file
from rag.types import Chunk, IndexReport


class TextKeeper(Protocol):
    """Where a scan keeps each document's text for the viewer (``rag.storage.sources.SourceTexts``)."""

    def keep(self, doc: Any) -> None: ...

    def keep_missing(self, doc: Any, known: dict[str, Any]) -> None: ...


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

    def report(self, embedded: int, reused: int, total: int, started: float) -> IndexReport:
        """What every backend reports of the change it committed (``started``: its ``time.perf_counter()``)."""
        return IndexReport(added=self.added, updated=self.updated, unchanged=self.unchanged, removed=self.removed,
                           skipped=self.skipped, chunks_embedded=embedded, chunks_reused=reused, total_chunks=total,
                           seconds=time.perf_counter() - started)


def scan(
    documents: dict[str, dict], old_chunking: dict, paths: Sequence[str | Path], chunking: ChunkSettings, *,
    sync: bool, max_bytes: int, distributed: Any = None,
    spill: Callable[[dict[str, list[Chunk]], dict[str, dict]], None] | None = None, spill_at: int = 0,
    texts: TextKeeper | None = None,
) -> Scan:
    """Read, clean and chunk the new and changed files among ``paths`` against the indexed ``documents``
    (whatever store holds their chunks); ``sync`` also lists documents whose files under those folders are gone.
    ``distributed`` (``rag.indexing.distributed.RayIngest``) reads and chunks on a Ray cluster.

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
            chunks = chunk_source(src.doc_id, doc.text, chunking, doc.units, doc.boxes)
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


__all__ = ["Scan", "TextKeeper", "scan"]
