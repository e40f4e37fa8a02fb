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

KINDS = ("faiss", "milvus")


@dataclass(frozen=True)
class StoreSpec:
    kind: str  # faiss | milvus
    uri: str = ""  # milvus: a Lite file (absolute) or http(s)://host:port

    @property
    def text(self) -> str:
        return "faiss" if self.kind == "faiss" else f"milvus:{self.uri}"


def parse_store(spec: str | None, base: Path | None = None) -> StoreSpec:
    """``""``/``faiss`` → the FAISS snapshot; ``milvus:PATH.db`` or ``milvus:http://host:port`` → Milvus.

    A Lite path is made absolute (against ``base``, else the working folder) so the manifest names one file."""
    spec = (spec or "").strip()
    if spec in ("", "faiss"):
        return StoreSpec("faiss")
    kind, sep, uri = spec.partition(":")
    if kind != "milvus" or not sep or not uri.strip():
        raise ConfigError(f"store must be faiss, milvus:PATH.db or milvus:http://HOST:PORT. Currently, it is {spec!r}")
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


def collection_name(index_dir: Path) -> str:
    """One collection per index: named by the folder, and a hash of its absolute path so that two
    folders of the same name (two knowledge bases called ``news`` on one server) never share one."""
    import hashlib  # noqa: PLC0415

    folder = Path(index_dir).resolve()
    tag = hashlib.sha1(str(folder).encode()).hexdigest()[:10]
    safe = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in folder.name)[:40] or "index"
    return f"rag_{safe}_{tag}"


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


def save_store_manifest(index_dir: Path, snap: StoreSnapshot, spec: StoreSpec) -> dict[str, Any]:
    """Name the store's new documents: the step that makes a write visible (atomic, fsynced)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    old = _previous_manifest(index_dir)
    number = int(str((old or {}).get("generation", "store-000000")).rpartition("-")[2] or 0) + 1
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    manifest = {
        "format_version": FORMAT_VERSION,
        "generation": f"store-{number:06d}",
        "store": {"kind": spec.kind, "uri": spec.uri, "collection": snap.store.collection},
        "embedder": snap.embedder,
        "chunking": snap.chunking,
        "counts": {"documents": len(snap.documents), "chunks": sum(int(d["chunks"]) for d in snap.documents.values())},
        "documents": snap.documents,
        "checksums": {},  # nothing of the index's data is in the folder: the store keeps it
        "versions": _versions(),
        "created_at": (old or {}).get("created_at", now),
        "updated_at": now,
    }
    _atomic_write(index_dir / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
    snap.manifest = manifest
    return manifest


def milvus_token() -> str | None:
    return os.environ.get("MILVUS_TOKEN") or None


__all__ = ["KINDS", "StoreSnapshot", "StoreSpec", "collection_name", "milvus_token", "parse_store", "recorded_store",
           "save_store_manifest"]
