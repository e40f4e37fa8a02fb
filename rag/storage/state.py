"""The state of an index whose chunks live in a store (the segments in the folder, a Milvus collection).

``StoreSnapshot`` is what the facade reads in place of a FAISS ``Snapshot``: the manifest's documents
and the store that answers searches. ``save_store_manifest`` is such an index's commit: the store's
new rows are written (hidden) first, then the manifest names the new documents, atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from rag.errors import RagError
from rag.storage.manifest import MANIFEST, atomic_write, compose, previous_manifest
from rag.types import Chunk


@dataclass
class StoreSnapshot:
    """One state of a store-backed index, as the facade reads it: the manifest's documents and the store."""

    store: Any  # a SearchStore with manifest_entry() (rag.storage.segments.SegmentStore, rag.storage.milvus.MilvusStore)
    documents: dict[str, dict[str, Any]]
    embedder: dict[str, Any]
    chunking: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The backend that reads and writes it (rag.storage.backend)."""
        return self.store.kind

    @property
    def size(self) -> int:
        return sum(int(meta.get("chunks", 0)) for meta in self.documents.values())

    def live(self) -> dict[str, str]:
        """The documents this state shows, with the sha256 their rows must carry."""
        return {doc_id: meta["sha256"] for doc_id, meta in self.documents.items()}

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return self.store.doc_chunks(doc_id) if doc_id in self.documents else []


def manifest_text(manifest: dict[str, Any]) -> str:
    """The manifest as compact UTF-8 JSON, as ``json.dumps(ensure_ascii=False, separators=(",", ":"))``
    writes it, by orjson in a tenth of the time (json's C encoder took 1.5 s a commit at 10M chunks);
    json's for what orjson refuses (a key that is not a string, an integer over 64 bits)."""
    try:
        return orjson.dumps(manifest).decode("utf-8")
    except TypeError:
        return json.dumps(manifest, ensure_ascii=False, separators=(",", ":"))


def save_store_manifest(index_dir: Path, snap: StoreSnapshot, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Name the store's new documents: the step that makes a write visible (atomic, fsynced).

    ``previous`` is the manifest in force when the caller has it (under the write lock), which saves
    reading it again: at 100k documents it is tens of megabytes."""
    index_dir.mkdir(parents=True, exist_ok=True)
    old = previous if previous is not None else previous_manifest(index_dir)
    number = int(str((old or {}).get("generation", "store-000000")).rpartition("-")[2] or 0) + 1
    manifest = compose(
        old, f"store-{number:06d}", store=snap.store.manifest_entry(), embedder=snap.embedder, chunking=snap.chunking,
        counts={"documents": len(snap.documents), "chunks": snap.size}, documents=snap.documents,
        checksums={},  # nothing of the index's data is in the folder: the store keeps it
    )
    atomic_write(index_dir / MANIFEST, manifest_text(manifest))
    snap.manifest = manifest
    return manifest


def verify_store(load: Callable[[], StoreSnapshot], manifest: dict[str, Any], report: Any) -> dict[str, Any]:
    """``rag verify`` of a store-backed index (``load`` opens it): the store holds, per document, the chunks
    the manifest says, and no others; its own files check out. Returns the manifest's documents."""
    documents = manifest.get("documents") or {}
    try:
        snap = load()
        counts = snap.store.doc_chunk_counts()
    except RagError as exc:
        report.errors.append(str(exc))
        return documents
    report.errors += snap.store.verify_files()  # a segmented index: every segment file against its checksum
    report.facts["store"] = describe_store(snap)
    for doc_id in sorted(set(counts) - set(documents)):
        report.errors.append(f"{counts[doc_id]} chunks of {doc_id!r} are in the collection but the manifest has no "
                             "such document (a write that did not finish; the next write or open removes them)")
    for doc_id, meta in sorted(documents.items()):
        if counts.get(doc_id, 0) != meta.get("chunks"):
            report.errors.append(f"{doc_id!r}: the manifest says {meta.get('chunks')} chunks, the collection has "
                                 f"{counts.get(doc_id, 0)}")
    total = sum(counts.values())
    if total != manifest["counts"]["chunks"]:
        report.errors.append(f"chunk counts disagree: manifest {manifest['counts']['chunks']}, collection {total}")
    return documents


def describe_store(state: StoreSnapshot) -> dict[str, Any]:
    """The store's manifest entry, its segments counted rather than listed."""
    entry = state.store.manifest_entry()
    return {k: v for k, v in entry.items() if k != "segments"} | ({"segments": len(entry["segments"])} if "segments" in entry else {})


class StoreBackend:
    """What the segments and Milvus backends share (``rag.storage.backend.IndexBackend``): the state's own
    store answers searches, rows a writer inserted ahead of the manifest are hidden, and verify and describe
    read the store. Subclasses give ``kind``, ``load`` and the writes."""

    def search_store(self, state: StoreSnapshot) -> Any:
        return state.store

    def visible(self, state: StoreSnapshot, doc_id: str) -> bool:
        return doc_id in state.documents

    def verify(self, index_dir: Path, manifest: dict[str, Any], report: Any, *, check_embedder: bool = True,
               sample: int = 3) -> dict[str, Any] | None:
        return verify_store(lambda: self.load(index_dir, manifest), manifest, report)

    def describe(self, state: StoreSnapshot) -> dict[str, Any]:
        return describe_store(state)


__all__ = ["StoreBackend", "StoreSnapshot", "describe_store", "save_store_manifest", "verify_store"]
