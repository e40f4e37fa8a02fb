"""``manifest.json``: the commit point of every index, whatever backend holds its data.

The manifest names the data in force (a FAISS generation folder, the segments, a Milvus collection),
the embedder and chunking the index was built with, and its documents' counts. Writing it is the
one atomic step that makes a change visible (``atomic_write``: a temp file, fsync, rename, fsync
of the folder): a crash leaves the old manifest or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rag.catalogue import REBUILD
from rag.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The manifest in force, checked for the keys every reader needs and for this format version."""
    path = index_dir / MANIFEST
    if not path.is_file():
        raise IndexNotFoundError("index.no_manifest", index_dir=index_dir, manifest=MANIFEST)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError("index.bad_manifest", path=path, reason=str(exc)) from exc
    for key in ("format_version", "generation", "embedder", "counts", "checksums"):
        if key not in manifest:
            raise IndexCorruptError("index.manifest_key", path=path, key=key)
    if manifest["format_version"] != FORMAT_VERSION:
        raise IndexMismatchError("index.format", found=manifest["format_version"], index_dir=index_dir,
                                 expected=FORMAT_VERSION)
    return manifest


def previous_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The manifest in force, or None where there is none a writer could build on."""
    try:
        return read_manifest(index_dir)
    except (IndexNotFoundError, IndexCorruptError, IndexMismatchError):
        return None  # being replaced: a rebuild over a damaged or outdated index


def store_kind(manifest: dict[str, Any]) -> str:
    """The backend that holds the index's data (``faiss`` when the manifest names none)."""
    return (manifest.get("store") or {}).get("kind", "faiss")


def check_embedder(manifest: dict[str, Any], name: str, dim: int, index_dir: Path) -> None:
    built = manifest["embedder"]
    if built.get("name") != name or int(built.get("dim", -1)) != dim:
        raise IndexMismatchError("index.embedder_mismatch", index_dir=index_dir, built=built.get("name"),
                                 built_dim=built.get("dim"), name=name, dim=dim)


def compose(old: dict[str, Any] | None, generation: str, *, embedder: dict[str, Any], chunking: dict[str, Any],
            counts: dict[str, int], checksums: dict[str, str], store: dict[str, Any] | None = None,
            faiss: dict[str, Any] | None = None, documents: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new manifest after ``old``: every backend's manifest has this shape (the key order is fixed, so
    the file of an unchanged index stays the same bytes). ``store`` names a non-FAISS backend's data,
    ``faiss`` the FAISS index's search parameters, ``documents`` the documents where no generation
    folder keeps them."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    manifest: dict[str, Any] = {"format_version": FORMAT_VERSION, "generation": generation}
    if store is not None:
        manifest["store"] = store
    manifest |= {"embedder": embedder, "chunking": chunking}
    if faiss is not None:
        manifest["faiss"] = faiss
    manifest["counts"] = counts
    if documents is not None:
        manifest["documents"] = documents
    return manifest | {"checksums": checksums, "versions": versions(),
                       "created_at": (old or {}).get("created_at", now), "updated_at": now}


def versions() -> dict[str, str]:
    """The versions of the packages an index's files depend on, for the record."""
    out = {}
    for pkg in ("rag-zh", "faiss-cpu", "sentence-transformers", "openvino", "bm25s", "jieba"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["FORMAT_VERSION", "MANIFEST", "REBUILD", "atomic_write", "check_embedder", "compose", "fsync_dir",
           "fsync_tree", "previous_manifest", "read_manifest", "store_kind", "versions"]
