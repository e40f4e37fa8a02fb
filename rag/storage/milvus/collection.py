"""An index whose chunks, vectors and BM25 weights live in Milvus; the index folder keeps the rest.

``--store milvus:PATH.db`` (Milvus Lite, embedded) or ``--store milvus:http://HOST:19530`` (a server or
cluster; the token from ``MILVUS_TOKEN``) names it when the index is built; the manifest records it,
so later commands find it from ``--index-dir`` alone. The folder keeps the manifest (documents,
chunking, embedder, the store), the term statistics of the client-side BM25, the uploads and the
feedback. ``StoreSnapshot`` is what the pipeline reads in place of a FAISS ``Snapshot``.

Writes are ordered so that a killed writer leaves the old or the new documents, never half of one:
the new rows go in first, tagged with their document's sha256; then the manifest names the new
documents (atomically); then the rows no manifest document owns are deleted. Readers keep only
passages of documents the manifest they read names, with that sha256, so rows written ahead of the
manifest (or left by a crash, which the next writer or open removes) are never shown.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rag.errors import IndexCorruptError
from rag.indexing.embed import embed, embedder_entry
from rag.indexing.scan import scan
from rag.storage.manifest import MANIFEST, previous_manifest
from rag.storage.milvus.client import MilvusStore
from rag.storage.milvus.rows import Journal, journal_path
from rag.storage.milvus.sparse_bm25 import DfState
from rag.storage.state import StoreSnapshot, save_store_manifest
from rag.text.indexed import indexed_text


def collection_name(index_dir: Path, rebuild: int = 0) -> str:
    """One collection per index: named by the folder, and a hash of its absolute path so that two
    folders of the same name (two knowledge bases called ``news`` on one server) never share one;
    a rebuild writes a new collection (``_r<n>``), and the old one serves until the new manifest names it."""
    folder = Path(index_dir).resolve()
    tag = hashlib.sha1(str(folder).encode()).hexdigest()[:10]
    safe = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in folder.name)[:40] or "index"
    return f"rag_{safe}_{tag}" + (f"_r{rebuild}" if rebuild else "")


def milvus_token() -> str | None:
    return os.environ.get("MILVUS_TOKEN") or None


# One store object per collection in this process: a reload after another process's write (a new
# manifest) reuses its connection and reloads only what the manifest and the BM25 state changed.
_OPEN: dict[tuple[str, str], Any] = {}


def forget_open_stores() -> None:
    """Drop this process's open stores: the next open reconnects, as a new process would."""
    _OPEN.clear()


def _store(spec: Any, collection: str, index_dir: Path, embedder: dict[str, Any], chunking: dict[str, Any],
           documents: dict[str, dict[str, Any]], *, create: bool = False) -> Any:
    key = (spec.uri, collection)
    store = _OPEN.get(key)
    if store is None:
        live = {d: m["sha256"] for d, m in documents.items()}
        store = MilvusStore.open(spec.uri, collection, int(embedder["dim"]), token=milvus_token(), create=create,
                                 headers=chunking.get("headers", "none"), state_dir=index_dir,
                                 live=live if _crashed(index_dir, collection) else None)
        _OPEN[key] = store
    else:
        store.state = DfState.load(store.state_path) or store.state  # another process may have written since
    store.match_documents(documents.keys)
    return store


def _crashed(index_dir: Path, collection: str) -> bool:
    """A writer left hidden rows (its journal is not empty): the reopen removes them."""
    try:
        return bool(Journal(journal_path(index_dir, collection)).hidden())
    except IndexCorruptError:
        return False  # as before: a damaged journal is not taken for a crash (see the closing note)


def empty_store_snapshot(index_dir: Path, spec: Any, embedder: dict[str, Any], chunking: dict[str, Any],
                         rebuild: int = 0) -> StoreSnapshot:
    """A new, empty Milvus-backed index (its collection created; nothing is visible until the manifest is saved)."""
    collection = collection_name(index_dir, rebuild)
    store = _store(spec, collection, index_dir, embedder, chunking, {}, create=True)
    return StoreSnapshot(store, {}, embedder, chunking)


def load_store_snapshot(index_dir: Path, manifest: dict[str, Any], spec: Any) -> StoreSnapshot:
    documents = dict(manifest.get("documents") or {})
    store = _store(spec, manifest["store"]["collection"], index_dir, manifest["embedder"], manifest.get("chunking", {}),
                   documents)
    return StoreSnapshot(store, documents, manifest["embedder"], manifest.get("chunking", {}), manifest)




# ---- writing -----------------------------------------------------------------------------------
def update_store(
    base: StoreSnapshot, index_dir: Path, paths: Any, embedder: Any, chunking: Any, *,
    sync: bool, max_bytes: int, progress: bool, batch_size: int, distributed: Any = None, texts: Any = None,
) -> tuple[StoreSnapshot, Any]:
    """``build_snapshot`` for a store-backed index: the scan's new chunks embedded and inserted (hidden),
    the manifest saved, then the replaced and removed rows deleted (``publish``); ``texts``
    (``rag.storage.sources.SourceTexts``) keeps the documents' texts for the viewer, as ``scan`` says."""
    t0 = time.perf_counter()
    plan = scan(base.documents, base.chunking, paths, chunking, sync=sync, max_bytes=max_bytes, distributed=distributed,
                texts=texts)
    fresh = [c for doc_id in sorted(plan.new_chunks) for c in plan.new_chunks[doc_id]]
    dense_texts = [indexed_text(c, chunking.headers, for_dense=True) for c in fresh]
    shas = {doc_id: meta["sha256"] for doc_id, meta in plan.new_docs.items()}
    store = base.store
    _hide_removed(base, plan.removed)
    if fresh and distributed is not None and store.is_server:  # the actors insert: no vectors through here
        store.add_on_workers(fresh, dense_texts, shas, distributed, embedder.name, batch_size)
    elif fresh:  # a Lite file takes one writer, this process: the actors embed, the rows go in from here
        store.add(fresh, embed(embedder, dense_texts, progress, batch_size, distributed), shas)
    drop = set(plan.removed) | set(plan.new_chunks)
    documents = {k: v for k, v in base.documents.items() if k not in drop} | plan.new_docs
    snap = StoreSnapshot(store, dict(sorted(documents.items())), base.embedder or embedder_entry(embedder),
                         asdict(chunking))
    if drop or not (index_dir / MANIFEST).is_file():
        save_store_manifest(index_dir, snap)
        store.match_documents(snap.documents.keys)
        store.publish(snap.live())
    else:
        snap.manifest = base.manifest
    return snap, plan.report(len(fresh), 0, snap.size, t0)


def delete_from_store(base: StoreSnapshot, index_dir: Path, doc_ids: list[str]) -> StoreSnapshot:
    """Remove documents: hidden at once (journal), gone from the manifest, then their rows deleted."""
    _hide_removed(base, doc_ids)
    snap = StoreSnapshot(base.store, {k: v for k, v in base.documents.items() if k not in set(doc_ids)},
                         base.embedder, base.chunking)
    save_store_manifest(index_dir, snap)
    base.store.match_documents(snap.documents.keys)
    base.store.publish(snap.live())
    return snap


def _hide_removed(base: StoreSnapshot, doc_ids: Any) -> None:
    """Hide the rows of documents about to be removed before the manifest drops them: a writer killed
    in between leaves them hidden, and the next open deletes them."""
    pairs = [(d, base.documents[d]["sha256"]) for d in doc_ids if d in base.documents]
    if pairs:
        base.store.journal.hide([*base.store.journal.hidden(), *pairs])


def drop_replaced(old_manifest: dict[str, Any] | None, new: StoreSnapshot, index_dir: Path) -> None:
    """After a rebuild into a new collection is in force, the collection the old manifest named goes
    (with its BM25 state and journal), when it is in the same Milvus."""
    old = (old_manifest or {}).get("store") or {}
    name = old.get("collection")
    if not name or name == new.store.collection or old.get("uri") != new.store.uri:
        return
    if new.store.client.has_collection(name):
        new.store.client.drop_collection(name)
    for leftover in index_dir.glob(f"milvus-{name}-*"):
        leftover.unlink(missing_ok=True)
    _OPEN.pop((old.get("uri"), name), None)


def next_rebuild(index_dir: Path) -> int:
    """The rebuild number of a new collection for this index (one more than the one in force)."""
    old = previous_manifest(index_dir) or {}
    name = (old.get("store") or {}).get("collection", "")
    tail = name.rpartition("_r")[2]
    return int(tail) + 1 if "_r" in name and tail.isdigit() else (1 if name else 0)


__all__ = ["collection_name", "delete_from_store", "drop_replaced", "empty_store_snapshot", "forget_open_stores", "load_store_snapshot",
           "milvus_token", "next_rebuild", "update_store"]
