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

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import ConfigError
from rag.storage.snapshot import FORMAT_VERSION, MANIFEST, _atomic_write, _previous_manifest, _versions

KINDS = ("faiss", "segments", "milvus")


@dataclass(frozen=True)
class StoreSpec:
    kind: str  # faiss | segments | milvus
    uri: str = ""  # milvus: a Lite file (absolute) or http(s)://host:port

    @property
    def text(self) -> str:
        return self.kind if self.kind in ("faiss", "segments") else f"milvus:{self.uri}"


def parse_store(spec: str | None, base: Path | None = None) -> StoreSpec:
    """``""``/``faiss`` → the FAISS snapshot; ``segments`` → the segmented index in the folder
    (``rag.storage.segments``); ``milvus:PATH.db`` or ``milvus:http://host:port`` → Milvus.

    A Lite path is made absolute (against ``base``, else the working folder) so the manifest names one file."""
    spec = (spec or "").strip()
    if spec in ("", "faiss"):
        return StoreSpec("faiss")
    if spec == "segments":
        return StoreSpec("segments")
    kind, sep, uri = spec.partition(":")
    if kind != "milvus" or not sep or not uri.strip():
        raise ConfigError("store must be faiss, segments, milvus:PATH.db or milvus:http://HOST:PORT. "
                          f"Currently, it is {spec!r}")
    uri = uri.strip()
    if uri.startswith(("http://", "https://", "tcp://", "grpc://")):
        return StoreSpec("milvus", uri)
    if not uri.endswith(".db"):
        raise ConfigError(f"a Milvus Lite store is a file ending in .db (or give http://HOST:PORT). Currently, it is {uri!r}")
    path = Path(uri).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return StoreSpec("milvus", str(path.resolve()))


def recorded_store(manifest: dict[str, Any]) -> StoreSpec:
    entry = manifest.get("store") or {}
    return StoreSpec(entry.get("kind", "faiss"), entry.get("uri", ""))


def collection_name(index_dir: Path, rebuild: int = 0) -> str:
    """One collection per index: named by the folder, and a hash of its absolute path so that two
    folders of the same name (two knowledge bases called ``news`` on one server) never share one;
    a rebuild writes a new collection (``_r<n>``), and the old one serves until the new manifest names it."""
    import hashlib  # noqa: PLC0415

    folder = Path(index_dir).resolve()
    tag = hashlib.sha1(str(folder).encode()).hexdigest()[:10]
    safe = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in folder.name)[:40] or "index"
    return f"rag_{safe}_{tag}" + (f"_r{rebuild}" if rebuild else "")


@dataclass
class StoreSnapshot:
    """One state of a store-backed index, as the pipeline reads it: the manifest's documents and the store."""

    store: Any  # rag.storage.milvus.MilvusStore (a SearchStore)
    documents: dict[str, dict[str, Any]]
    embedder: dict[str, Any]
    chunking: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(int(meta.get("chunks", 0)) for meta in self.documents.values())

    def live(self) -> dict[str, str]:
        """The documents this state shows, with the sha256 their rows must carry."""
        return {doc_id: meta["sha256"] for doc_id, meta in self.documents.items()}


def save_store_manifest(index_dir: Path, snap: StoreSnapshot, spec: StoreSpec,
                        previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Name the store's new documents: the step that makes a write visible (atomic, fsynced).

    ``previous`` is the manifest in force when the caller has it (under the write lock), which saves
    reading it again: at 100k documents it is tens of megabytes."""
    index_dir.mkdir(parents=True, exist_ok=True)
    old = previous if previous is not None else _previous_manifest(index_dir)
    number = int(str((old or {}).get("generation", "store-000000")).rpartition("-")[2] or 0) + 1
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    manifest = {
        "format_version": FORMAT_VERSION,
        "generation": f"store-{number:06d}",
        "store": snap.store.manifest_entry() if spec.kind == "segments" else
        {"kind": spec.kind, "uri": spec.uri, "collection": snap.store.collection},
        "embedder": snap.embedder,
        "chunking": snap.chunking,
        "counts": {"documents": len(snap.documents), "chunks": snap.size},
        "documents": snap.documents,
        "checksums": {},  # nothing of the index's data is in the folder: the store keeps it
        "versions": _versions(),
        "created_at": (old or {}).get("created_at", now),
        "updated_at": now,
    }
    # without indent: json's C encoder (indent falls back to the pure-Python one, 2 s for 100k documents)
    _atomic_write(index_dir / MANIFEST, json.dumps(manifest, ensure_ascii=False, separators=(",", ":")))
    snap.manifest = manifest
    return manifest


def milvus_token() -> str | None:
    return os.environ.get("MILVUS_TOKEN") or None


# One store object per collection in this process: a reload after another process's write (a new
# manifest) reuses its connection and reloads only what the manifest and the BM25 state changed.
_OPEN: dict[tuple[str, str], Any] = {}


def _store(spec: StoreSpec, collection: str, index_dir: Path, embedder: dict[str, Any], chunking: dict[str, Any],
           documents: dict[str, dict[str, Any]], *, create: bool = False) -> Any:
    from rag.storage.milvus import MilvusStore  # noqa: PLC0415 - pymilvus only when a Milvus store is used
    from rag.storage.sparse_bm25 import DfState  # noqa: PLC0415

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
    _match_documents(store, documents)
    return store


def _match_documents(store: Any, documents: dict[str, Any]) -> None:
    """A doc glob in a filter matches these documents: the manifest's now in force."""
    store._doc_ids = documents.keys


def _crashed(index_dir: Path, collection: str) -> bool:
    """A writer left hidden rows (its journal is not empty): the reopen removes them."""
    from rag.errors import IndexCorruptError  # noqa: PLC0415
    from rag.storage.milvus_rows import Journal, journal_path  # noqa: PLC0415 - pymilvus-free, but Milvus-only

    try:
        return bool(Journal(journal_path(index_dir, collection)).hidden())
    except IndexCorruptError:
        return False  # as before: a damaged journal is not taken for a crash (see the closing note)


def empty_store_snapshot(index_dir: Path, spec: StoreSpec, embedder: dict[str, Any], chunking: dict[str, Any],
                         rebuild: int = 0) -> StoreSnapshot:
    """A new, empty store-backed index (its collection created; nothing is visible until the manifest is saved)."""
    if spec.kind == "segments":
        from rag.storage import segments  # noqa: PLC0415 - one module per store kind

        return segments.empty(index_dir, embedder, chunking)
    collection = collection_name(index_dir, rebuild)
    store = _store(spec, collection, index_dir, embedder, chunking, {}, create=True)
    return StoreSnapshot(store, {}, embedder, chunking)


def load_store_snapshot(index_dir: Path, manifest: dict[str, Any]) -> StoreSnapshot:
    spec = recorded_store(manifest)
    if spec.kind == "segments":
        from rag.storage import segments  # noqa: PLC0415

        return segments.load(index_dir, manifest)
    documents = dict(manifest.get("documents") or {})
    store = _store(spec, manifest["store"]["collection"], index_dir, manifest["embedder"], manifest.get("chunking", {}),
                   documents)
    return StoreSnapshot(store, documents, manifest["embedder"], manifest.get("chunking", {}), manifest)




# ---- writing -----------------------------------------------------------------------------------
def update_store(
    base: StoreSnapshot, index_dir: Path, spec: StoreSpec, paths: Any, embedder: Any, chunking: Any, *,
    sync: bool, max_bytes: int, progress: bool, batch_size: int, distributed: Any = None, flat_max: int | None = None,
    texts: Any = None,
) -> tuple[StoreSnapshot, Any]:
    """``build_snapshot`` for a store-backed index: the scan's new chunks embedded and inserted (hidden),
    the manifest saved, then the replaced and removed rows deleted (``publish``); ``texts``
    (``rag.storage.sources.SourceTexts``) keeps the documents' texts for the viewer, as ``scan`` says."""
    from dataclasses import asdict  # noqa: PLC0415

    from rag.ingest.chunking import indexed_text  # noqa: PLC0415
    from rag.storage.build import _embed, _embedder_entry, scan  # noqa: PLC0415
    from rag.types import IndexReport  # noqa: PLC0415

    if spec.kind == "segments":
        from rag.storage import segments  # noqa: PLC0415

        return segments.update(base, index_dir, spec, paths, embedder, chunking, sync=sync, max_bytes=max_bytes,
                               progress=progress, batch_size=batch_size, distributed=distributed,
                               flat_max=flat_max, texts=texts)
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
        store.add(fresh, _embed(embedder, dense_texts, progress, batch_size, distributed), shas)
    drop = set(plan.removed) | set(plan.new_chunks)
    documents = {k: v for k, v in base.documents.items() if k not in drop} | plan.new_docs
    snap = StoreSnapshot(store, dict(sorted(documents.items())), base.embedder or _embedder_entry(embedder),
                         asdict(chunking))
    if drop or not (index_dir / MANIFEST).is_file():
        save_store_manifest(index_dir, snap, spec)
        _match_documents(store, snap.documents)
        store.publish(snap.live())
    else:
        snap.manifest = base.manifest
    report = IndexReport(
        added=plan.added, updated=plan.updated, unchanged=plan.unchanged, removed=plan.removed, skipped=plan.skipped,
        chunks_embedded=len(fresh), chunks_reused=0, total_chunks=snap.size, seconds=time.perf_counter() - t0,
    )
    return snap, report


def delete_from_store(base: StoreSnapshot, index_dir: Path, spec: StoreSpec, doc_ids: list[str],
                      flat_max: int | None = None) -> StoreSnapshot:
    """Remove documents: hidden at once (journal), gone from the manifest, then their rows deleted."""
    if spec.kind == "segments":
        from rag.storage import segments  # noqa: PLC0415

        return segments.delete(base, index_dir, spec, doc_ids, flat_max)
    _hide_removed(base, doc_ids)
    snap = StoreSnapshot(base.store, {k: v for k, v in base.documents.items() if k not in set(doc_ids)},
                         base.embedder, base.chunking)
    save_store_manifest(index_dir, snap, spec)
    _match_documents(base.store, snap.documents)
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
    if not name or name == new.store.collection or old.get("uri") != recorded_store(new.manifest).uri:
        return
    if new.store.client.has_collection(name):
        new.store.client.drop_collection(name)
    for leftover in index_dir.glob(f"milvus-{name}-*"):
        leftover.unlink(missing_ok=True)
    _OPEN.pop((old.get("uri"), name), None)


def next_rebuild(index_dir: Path) -> int:
    """The rebuild number of a new collection for this index (one more than the one in force)."""
    old = _previous_manifest(index_dir) or {}
    name = (old.get("store") or {}).get("collection", "")
    tail = name.rpartition("_r")[2]
    return int(tail) + 1 if "_r" in name and tail.isdigit() else (1 if name else 0)


__all__ = ["KINDS", "StoreSnapshot", "StoreSpec", "collection_name", "delete_from_store", "drop_replaced",
           "empty_store_snapshot", "load_store_snapshot", "milvus_token", "next_rebuild", "parse_store",
           "recorded_store", "save_store_manifest", "update_store"]
