"""The segmented backend: immutable segments in the index folder; a change writes new segments and
edits the manifest's lists of live documents, so it costs what changed (``index``: the store and its
writes; ``segment``: one segment's files)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from rag.indexing.embed import embedder_entry
from rag.storage.backend import Change, StoreSpec
from rag.storage.segments.index import (
    MERGE_AT,
    SEGMENTS_DIR,
    SegmentStore,
    add_chunks,
    collect_garbage,
    commit,
    delete,
    empty,
    load,
    merge,
    plan_merge,
    update,
)
from rag.storage.state import StoreBackend, StoreSnapshot
from rag.types import IndexReport


class SegmentsBackend(StoreBackend):
    kind = "segments"

    def empty(self, index_dir: Path, spec: StoreSpec, embedder: Any, chunking: Any, *, rebuild: bool) -> StoreSnapshot:
        return empty(index_dir, embedder_entry(embedder), asdict(chunking))

    def load(self, index_dir: Path, manifest: dict[str, Any], *, verify: bool = True) -> StoreSnapshot:
        return load(index_dir, manifest)

    def update(self, base: StoreSnapshot, index_dir: Path, change: Change) -> tuple[StoreSnapshot, IndexReport]:
        return update(base, index_dir, list(change.paths), change.embedder, change.chunking, sync=change.sync,
                      max_bytes=change.max_bytes, progress=change.progress, batch_size=change.batch_size,
                      distributed=change.distributed, flat_max=change.settings.faiss_flat_max, texts=change.texts)

    def delete(self, base: StoreSnapshot, index_dir: Path, doc_ids: list[str], settings: Any) -> StoreSnapshot:
        return delete(base, index_dir, doc_ids, settings.faiss_flat_max)

    def after_rebuild(self, before: dict[str, Any] | None, state: StoreSnapshot, index_dir: Path) -> None:
        """Nothing: the commit already removed the segments no manifest names."""


BACKEND = SegmentsBackend()

__all__ = ["BACKEND", "MERGE_AT", "SEGMENTS_DIR", "SegmentStore", "SegmentsBackend", "add_chunks", "collect_garbage",
           "commit", "delete", "empty", "load", "merge", "plan_merge", "update"]
