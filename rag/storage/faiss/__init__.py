"""The default backend: a FAISS snapshot (vectors, chunk store, BM25 arrays) rewritten whole on each change.

``snapshot`` reads and writes a generation folder, ``build`` makes the next snapshot from a change
(re-using the vectors and BM25 terms of kept chunks)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rag.storage.backend import Change, StoreSpec
from rag.storage.faiss.checks import verify_generation
from rag.storage.faiss.snapshot import Snapshot, load_generation, save_snapshot
from rag.storage.manifest import MANIFEST
from rag.storage.store import SearchStore, SnapshotStore
from rag.storage.vectors import describe as describe_index
from rag.types import IndexReport

# From here a change to a FAISS snapshot takes tens of seconds (bench/update.py: 100k chunks), and the log says
# that a segmented index would not
LARGE_SNAPSHOT = 100_000


class FaissBackend:
    kind = "faiss"

    def empty(self, index_dir: Path, spec: StoreSpec, embedder: Any, chunking: Any, *, rebuild: bool) -> Snapshot:
        from rag.storage.faiss.build import empty_snapshot  # noqa: PLC0415 - see update

        return empty_snapshot(embedder, chunking)

    def load(self, index_dir: Path, manifest: dict[str, Any], *, verify: bool = True) -> Snapshot:
        return load_generation(index_dir, manifest, verify)

    def update(self, base: Snapshot, index_dir: Path, change: Change) -> tuple[Snapshot, IndexReport]:
        # build imports the readers of every file format (~0.2 s): only a change needs them, not a question
        from rag.storage.faiss.build import build_snapshot  # noqa: PLC0415 - as said

        snap, report = build_snapshot(
            base, list(change.paths), change.embedder, change.chunking, sync=change.sync, max_bytes=change.max_bytes,
            progress=change.progress, batch_size=change.batch_size, settings=change.settings,
            distributed=change.distributed, texts=change.texts,
        )
        if change.rebuild or report.added or report.updated or report.removed or not (index_dir / MANIFEST).exists():
            save_snapshot(index_dir, snap)
            if snap.size >= LARGE_SNAPSHOT and (report.added or report.updated or report.removed):
                logging.getLogger(__name__).warning(
                    "%s holds %d chunks in a FAISS snapshot, which every change rebuilds whole (%.0f s now); "
                    "`rag index --rebuild --store segments` makes a change cost what changed (bench/update.py)",
                    index_dir, snap.size, report.seconds)
        return snap, report

    def delete(self, base: Snapshot, index_dir: Path, doc_ids: list[str], settings: Any) -> Snapshot:
        from rag.storage.faiss.build import remove_documents  # noqa: PLC0415 - see update

        snap = remove_documents(base, doc_ids, settings)
        save_snapshot(index_dir, snap)
        return snap

    def after_rebuild(self, before: dict[str, Any] | None, state: Snapshot, index_dir: Path) -> None:
        """Nothing: ``save_snapshot`` already removed the replaced generation."""

    def search_store(self, state: Snapshot) -> SearchStore:
        return SnapshotStore(state)

    def visible(self, state: Snapshot, doc_id: str) -> bool:
        return True  # a snapshot's files hold only its own chunks

    def verify(self, index_dir: Path, manifest: dict[str, Any], report: Any, *, check_embedder: bool = True,
               sample: int = 3) -> dict[str, Any] | None:
        return verify_generation(index_dir, manifest, report, check_embedder=check_embedder, sample=sample)

    def describe(self, state: Snapshot) -> dict[str, Any]:
        return {"kind": self.kind, "generation": state.manifest.get("generation"), "faiss": describe_index(state.vectors)}


BACKEND = FaissBackend()

__all__ = ["BACKEND", "LARGE_SNAPSHOT", "FaissBackend"]
