"""The on-disk index: a FAISS file, a data-only chunk store and BM25 arrays, named by a manifest.

Every save writes a new generation folder and then atomically replaces
``manifest.json``, which names the generation in force.  A crash at any moment
leaves either the old or the new manifest, each pointing at complete files, so
an interrupted build never damages the previous index.  Nothing is pickled.

The manifest holds a SHA-256 of every file of the generation, keyed by its path
inside it (``chunks.jsonl``, ``bm25/params.index.json``).  Opening checks them all
except the BM25 term cache, which only a change reads: it is checked then, and a
damaged cache is dropped (the terms are segmented again), never a reason to refuse
the index.  A manifest without a file's checksum (the BM25 files, before they were
covered) leaves that file unchecked until the next save writes one.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.errors import IndexCorruptError
from rag.storage.checksums import LEXICAL_DIR, cache_check, check_files, data_files, file_checksums
from rag.storage.lexical import LexicalIndex
from rag.storage.manifest import MANIFEST, REBUILD, atomic_write, compose, fsync_tree, previous_manifest, read_manifest
from rag.storage.vectors import build_index, tune_after_load
from rag.storage.vectors import describe as describe_index
from rag.types import Chunk


@dataclass
class Snapshot:
    """One consistent state of the index; never mutated once published to readers."""

    chunks: list[Chunk]
    vectors: Any  # a faiss.Index holding one vector per chunk, in chunk order
    lexical: LexicalIndex
    documents: dict[str, dict[str, Any]]  # doc_id -> path, sha256, size, chunks, indexed_at
    embedder: dict[str, Any]  # name, dim
    chunking: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)

    kind = "faiss"  # the backend that reads and writes it (rag.storage.backend)

    @property
    def size(self) -> int:
        return len(self.chunks)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return [c for c in self.chunks if c.doc_id == doc_id]


def new_faiss_index(vectors: np.ndarray, dim: int, settings: Settings | None = None):
    """Inner-product search over unit vectors (cosines): exact for small corpora, approximate above
    ``faiss_flat_max`` vectors (see ``rag.storage.vectors``); row i is always chunk i."""
    return build_index(vectors, dim, settings=settings)


def load_snapshot(index_dir: Path, verify: bool = True) -> Snapshot:
    """The FAISS index in force in ``index_dir``."""
    return load_generation(index_dir, read_manifest(index_dir), verify)


def load_generation(index_dir: Path, manifest: dict[str, Any], verify: bool = True) -> Snapshot:
    """The generation ``manifest`` names, its files checked against the manifest's checksums."""
    import faiss  # noqa: PLC0415 - FAISS (~0.3 s) when a generation is loaded, not at import

    gen = index_dir / manifest["generation"]
    problems = check_files(gen, manifest, verify=verify)
    if problems:
        raise IndexCorruptError(problems[0].message())
    try:
        vectors = faiss.read_index(str(gen / "vectors.faiss"))
    except RuntimeError as exc:
        raise IndexCorruptError(f"cannot read {gen / 'vectors.faiss'}: {exc}") from exc
    vectors = tune_after_load(vectors, manifest.get("faiss"))
    with (gen / "chunks.jsonl").open(encoding="utf-8") as f:
        chunks = [Chunk.from_dict(json.loads(line)) for line in f if line.strip()]
    documents = json.loads((gen / "documents.json").read_text(encoding="utf-8"))
    n = manifest["counts"]["chunks"]
    if not (len(chunks) == vectors.ntotal == n):
        raise IndexCorruptError(
            f"index at {index_dir} disagrees with itself: manifest {n} chunks, chunk store {len(chunks)}, "
            f"FAISS {vectors.ntotal}; {REBUILD}"
        )
    try:
        lexical = LexicalIndex.load(gen / LEXICAL_DIR, len(chunks), cache_intact=cache_check(gen, manifest),
                                    texts=lambda: [c.text for c in chunks])  # older terms: rebuilt from these
    except (OSError, ValueError, KeyError) as exc:
        raise IndexCorruptError(f"cannot read the BM25 index in {gen / LEXICAL_DIR}: {exc}; {REBUILD}") from exc
    return Snapshot(chunks, vectors, lexical, documents, manifest["embedder"], manifest.get("chunking", {}), manifest)


def save_snapshot(index_dir: Path, snap: Snapshot) -> dict[str, Any]:
    """Write ``snap`` as a new generation, then switch the manifest to it atomically."""
    import faiss  # noqa: PLC0415 - FAISS when a generation is written

    index_dir.mkdir(parents=True, exist_ok=True)
    old = previous_manifest(index_dir)
    existing = [int(p.name.split("-")[1]) for p in index_dir.glob("gen-*") if p.name.split("-")[1].isdigit()]
    number = max(existing, default=0) + 1
    gen_name = f"gen-{number:06d}"
    tmp = index_dir / f".{gen_name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        faiss.write_index(snap.vectors, str(tmp / "vectors.faiss"))
        with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as f:
            for c in snap.chunks:
                f.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        (tmp / "documents.json").write_text(json.dumps(snap.documents, ensure_ascii=False, indent=1), encoding="utf-8")
        snap.lexical.save(tmp / LEXICAL_DIR)
        fsync_tree(tmp)
        os.replace(tmp, index_dir / gen_name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    manifest = compose(
        old, gen_name, embedder=snap.embedder, chunking=snap.chunking,
        # kind and search parameters (IVF nlist/nprobe, HNSW M/efSearch); load_generation re-applies them
        faiss=describe_index(snap.vectors),
        counts={"documents": len(snap.documents), "chunks": len(snap.chunks)},
        checksums=file_checksums(index_dir / gen_name, data_files(index_dir / gen_name)),
    )
    atomic_write(index_dir / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))
    _remove_stale(index_dir, keep=gen_name)
    snap.lexical.saved_in(index_dir / gen_name / LEXICAL_DIR, cache_intact=cache_check(index_dir / gen_name, manifest))
    snap.manifest = manifest
    return manifest


def _remove_stale(index_dir: Path, keep: str) -> None:
    for p in index_dir.iterdir():
        if p.is_dir() and p.name != keep and (p.name.startswith("gen-") or p.name.startswith(".gen-")):
            shutil.rmtree(p, ignore_errors=True)
