"""One interface for the whole life of an index, whatever holds its data; backends chosen by kind.

An ``IndexBackend`` creates an empty index, opens the one a manifest names, applies a change (new,
changed and vanished files; deleted documents) and commits it with a manifest, and cleans up after
a rebuild. Its states (``IndexState``) answer searches through ``search_store`` and know their
documents and chunks. The facade (``rag.pipeline``) asks ``backend_for(kind)`` and never which kind it
holds. Three backends, one package each:

* ``faiss`` (the default): a FAISS snapshot rewritten whole on each change (``rag.storage.faiss``);
* ``segments``: immutable segments in the index folder, a change costs what changed (``rag.storage.segments``);
* ``milvus``: a Milvus collection, Lite file or server (``rag.storage.milvus``, pymilvus imported only here).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rag.errors import ConfigError
from rag.storage.manifest import read_manifest, store_kind
from rag.storage.store import SearchStore
from rag.types import Chunk, IndexReport

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
    """The store a manifest names (an index without one is a FAISS snapshot)."""
    entry = manifest.get("store") or {}
    return StoreSpec(entry.get("kind", "faiss"), entry.get("uri", ""))


class IndexState(Protocol):
    """One published state of an index: never changed once readers hold it."""

    kind: str
    documents: dict[str, dict[str, Any]]
    embedder: dict[str, Any]
    chunking: dict[str, Any]
    manifest: dict[str, Any]

    @property
    def size(self) -> int: ...

    def chunks_of(self, doc_id: str) -> list[Chunk]: ...


@dataclass(frozen=True)
class Change:
    """What ``IndexBackend.update`` is asked to index, and how (the facade's settings, resolved)."""

    paths: Sequence[str | Path]
    embedder: Any  # rag.embedding.backends.Embedder
    chunking: Any  # rag.ingest.chunking.ChunkSettings
    sync: bool  # also drop documents whose files under these folders are gone
    max_bytes: int
    progress: bool
    batch_size: int
    settings: Any  # rag.config.Settings (the FAISS index type, faiss_flat_max)
    distributed: Any = None  # rag.indexing.distributed.RayIngest, or None: in this process
    texts: Any = None  # rag.storage.sources.SourceTexts: the viewer's texts
    rebuild: bool = False  # ``base`` is a new, empty index replacing the one in force


class IndexBackend(Protocol):
    kind: str

    def empty(self, index_dir: Path, spec: StoreSpec, embedder: Any, chunking: Any, *, rebuild: bool) -> IndexState:
        """A new, empty index (nothing is visible until ``update`` commits)."""

    def load(self, index_dir: Path, manifest: dict[str, Any], *, verify: bool = True) -> IndexState:
        """The index ``manifest`` names."""

    def update(self, base: IndexState, index_dir: Path, change: Change) -> tuple[IndexState, IndexReport]:
        """``change`` applied to ``base`` and committed (a new manifest when anything changed)."""

    def delete(self, base: IndexState, index_dir: Path, doc_ids: list[str], settings: Any) -> IndexState:
        """These documents removed, committed."""

    def after_rebuild(self, before: dict[str, Any] | None, state: IndexState, index_dir: Path) -> None:
        """After a rebuild is in force: remove what only the replaced index used."""

    def search_store(self, state: IndexState) -> SearchStore:
        """What retrieval reads of ``state``."""

    def visible(self, state: IndexState, doc_id: str) -> bool:
        """Whether a passage of ``doc_id`` that the store returned belongs to ``state`` (a store may hold
        rows a writer inserted ahead of its manifest)."""

    def verify(self, index_dir: Path, manifest: dict[str, Any], report: Any, *, check_embedder: bool = True,
               sample: int = 3) -> dict[str, Any] | None:
        """``rag verify``: the index's own data checked into ``report`` (``rag.storage.verify.Report``); its
        documents, or None when its data cannot be trusted (nothing more is checked then)."""

    def describe(self, state: IndexState) -> dict[str, Any]:
        """What the index is, for people: its kind and where and how its data is kept."""


_MODULES = {"faiss": "rag.storage.faiss", "segments": "rag.storage.segments", "milvus": "rag.storage.milvus"}


def backend_for(kind: str) -> IndexBackend:
    """The backend of ``kind``; its package is imported on first use (pymilvus only for Milvus)."""
    if kind not in _MODULES:
        raise ConfigError(f"unknown index store kind {kind!r}; known: {', '.join(KINDS)}")
    return importlib.import_module(_MODULES[kind]).BACKEND


def open_index(index_dir: Path, verify: bool = True) -> IndexState:
    """The index in force in ``index_dir``, by the backend its manifest names."""
    manifest = read_manifest(index_dir)
    return backend_for(store_kind(manifest)).load(index_dir, manifest, verify=verify)


def search_store(state: IndexState) -> SearchStore:
    return backend_for(state.kind).search_store(state)


__all__ = ["KINDS", "Change", "IndexBackend", "IndexState", "StoreSpec", "backend_for", "open_index",
           "parse_store", "recorded_store", "search_store"]
