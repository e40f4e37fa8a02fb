"""The Milvus backend: chunks, vectors and BM25 weights in a Milvus collection (a Lite file or a server);
the index folder keeps the manifest and the BM25 statistics (``collection``: the index's writes;
``client``: the store over pymilvus, imported only when a Milvus index is used; ``rows``: the row schema
and the journal of hidden rows; ``sparse_bm25``: the client-side BM25)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from rag.indexing.embed import embedder_entry
from rag.storage.backend import Change, StoreSpec, recorded_store
from rag.storage.milvus.collection import (
    delete_from_store,
    drop_replaced,
    empty_store_snapshot,
    load_store_snapshot,
    next_rebuild,
    update_store,
)
from rag.storage.state import StoreBackend, StoreSnapshot
from rag.types import IndexReport


class MilvusBackend(StoreBackend):
    kind = "milvus"

    def empty(self, index_dir: Path, spec: StoreSpec, embedder: Any, chunking: Any, *, rebuild: bool) -> StoreSnapshot:
        return empty_store_snapshot(index_dir, spec, embedder_entry(embedder), asdict(chunking),
                                    rebuild=next_rebuild(index_dir) if rebuild else 0)

    def load(self, index_dir: Path, manifest: dict[str, Any], *, verify: bool = True) -> StoreSnapshot:
        return load_store_snapshot(index_dir, manifest, recorded_store(manifest))

    def update(self, base: StoreSnapshot, index_dir: Path, change: Change) -> tuple[StoreSnapshot, IndexReport]:
        return update_store(base, index_dir, list(change.paths), change.embedder, change.chunking, sync=change.sync,
                            max_bytes=change.max_bytes, progress=change.progress, batch_size=change.batch_size,
                            distributed=change.distributed, texts=change.texts)

    def delete(self, base: StoreSnapshot, index_dir: Path, doc_ids: list[str], settings: Any) -> StoreSnapshot:
        return delete_from_store(base, index_dir, doc_ids)

    def after_rebuild(self, before: dict[str, Any] | None, state: StoreSnapshot, index_dir: Path) -> None:
        drop_replaced(before, state, index_dir)


BACKEND = MilvusBackend()

__all__ = ["BACKEND", "MilvusBackend"]
