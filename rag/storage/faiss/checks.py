"""``rag verify`` of a FAISS snapshot: the generation's files against the manifest's checksums, FAISS,
the chunk store, the document table and BM25 agreeing on counts and ids, and a re-embedded sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding.backends import load_embedder
from rag.errors import RagError
from rag.storage import checksums
from rag.storage.lexical import LexicalIndex
from rag.text.indexed import indexed_text
from rag.types import Chunk


def verify_generation(index_dir: Path, manifest: dict[str, Any], report: Any, *, check_embedder: bool = True,
                      sample: int = 3) -> dict[str, Any] | None:
    """Check the generation the manifest names into ``report`` (``rag.storage.verify.Report``); its
    documents, or None when its files cannot be trusted (nothing more is checked then)."""
    gen = index_dir / manifest["generation"]
    _check_files(manifest, gen, report)
    if report.errors:
        return None
    chunks, documents, vectors = _read(gen, report)
    if vectors is None:
        return None
    _check_counts(manifest, chunks, documents, vectors, gen, report)
    if check_embedder and chunks and not report.errors:
        _check_vectors(manifest, chunks, vectors, sample, report)
    return documents


def _check_files(manifest, gen: Path, report: Any) -> None:
    for problem in checksums.check_files(gen, manifest, cache=True):
        (report.warnings if problem.cache else report.errors).append(problem.message())
    recorded = manifest["checksums"]
    for name in checksums.REQUIRED_FILES:  # always written: a manifest without one was edited
        if name not in recorded:
            report.errors.append(f"the manifest has no checksum for {name}; rebuild with `rag index --rebuild`")
    uncovered = [n for n in checksums.data_files(gen) if n not in recorded and n not in checksums.REQUIRED_FILES]
    if uncovered:
        report.warnings.append(
            f"{len(uncovered)} file(s) not covered by the manifest's checksums, so not checked: "
            f"{', '.join(uncovered)} (an index saved before every file was covered; the next change or `rag index --rebuild` covers them)"
        )


def _read(gen: Path, report: Any):
    import faiss  # noqa: PLC0415 - FAISS (~0.3 s) only when a generation is read

    chunks = []
    try:
        with (gen / "chunks.jsonl").open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):  # noqa: B007 - named in the error below
                if line.strip():
                    chunks.append(json.loads(line))
    except ValueError as exc:
        report.errors.append(f"chunks.jsonl line {line_no}: not valid JSON ({exc})")
        return [], {}, None
    try:
        documents = json.loads((gen / "documents.json").read_text(encoding="utf-8"))
        vectors = faiss.read_index(str(gen / "vectors.faiss"))
    except (ValueError, RuntimeError) as exc:
        report.errors.append(f"cannot read the index files in {gen}: {exc}")
        return chunks, {}, None
    return chunks, documents, vectors


def _check_counts(manifest, chunks, documents, vectors, gen: Path, report: Any) -> None:
    n = manifest["counts"]["chunks"]
    if not (len(chunks) == vectors.ntotal == n):
        report.errors.append(f"chunk counts disagree: manifest {n}, chunk store {len(chunks)}, FAISS {vectors.ntotal}")
    if vectors.d != manifest["embedder"]["dim"]:
        report.errors.append(f"FAISS dimension {vectors.d} differs from the embedder's {manifest['embedder']['dim']}")
    ids = [c["chunk_id"] for c in chunks]
    if len(set(ids)) != len(ids):
        report.errors.append(f"{len(ids) - len(set(ids))} duplicate chunk id(s) in the chunk store")
    per_doc: dict[str, int] = {}
    for c in chunks:
        per_doc[c["doc_id"]] = per_doc.get(c["doc_id"], 0) + 1
    for doc_id in sorted(set(per_doc) - set(documents)):
        report.errors.append(f"chunks of {doc_id!r} are in the store but the document is not in documents.json")
    for doc_id, meta in sorted(documents.items()):
        if per_doc.get(doc_id, 0) != meta.get("chunks"):
            report.errors.append(f"{doc_id!r}: documents.json says {meta.get('chunks')} chunks, the store has {per_doc.get(doc_id, 0)}")
    if len(documents) != manifest["counts"]["documents"]:
        report.errors.append(f"document counts disagree: manifest {manifest['counts']['documents']}, documents.json {len(documents)}")
    try:
        lexical = LexicalIndex.load(gen / checksums.LEXICAL_DIR, len(chunks), cache_intact=checksums.cache_check(gen, manifest))
        if lexical.n_docs and lexical.num_docs != len(chunks):
            report.errors.append(f"BM25 holds {lexical.num_docs} chunks, the store {len(chunks)}")
        if lexical.n_docs:  # a cache only: without it the next change segments every chunk once
            usable = lexical.has_term_cache()
            report.facts["bm25_term_cache"] = "ok" if usable else "absent or unusable: the next change re-segments"
    except (OSError, ValueError, KeyError) as exc:
        report.errors.append(f"BM25 index in {gen / checksums.LEXICAL_DIR} cannot be read: {exc}")


def _check_vectors(manifest, chunks, vectors, sample: int, report: Any) -> None:
    """Re-embed a few chunks: the stored vectors must be what the recorded embedder makes."""
    try:
        embedder = load_embedder(manifest["embedder"]["name"])
    except RagError as exc:
        report.errors.append(f"the recorded embedder cannot be loaded: {exc}")
        return
    rng = np.random.default_rng(0)
    picks = sorted(rng.choice(len(chunks), size=min(sample, len(chunks)), replace=False).tolist())
    headers = (manifest.get("chunking") or {}).get("headers", "none")
    texts = [indexed_text(Chunk.from_dict(chunks[i]), headers, for_dense=True) for i in picks]
    fresh = embedder.embed_passages(texts)
    stored = np.vstack([vectors.reconstruct(i) for i in picks])
    cos = (fresh * stored).sum(1)
    report.facts["embedder_check_min_cosine"] = round(float(cos.min()), 5)
    if cos.min() < 0.99:
        report.errors.append(
            f"stored vectors do not match the embedder {manifest['embedder']['name']!r} (cosine {cos.min():.3f} "
            "on a re-embedded sample): the manifest names the wrong model; rebuild with `rag index --rebuild`"
        )


__all__ = ["verify_generation"]
