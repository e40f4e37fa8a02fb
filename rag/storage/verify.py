"""``rag verify``: check an index's integrity and say exactly what is wrong.

Checks the manifest, the checksum of every file of the generation (BM25's too; a
damaged BM25 term cache is a warning, as it only costs time), that FAISS, the chunk
store, the document table and BM25 agree on counts and ids, that the recorded embedder is
the one that made the vectors (a sample is re-embedded), whether the source
files have changed since they were indexed, and whether the source viewer has every document's
kept text (``rag.storage.sources``; one missing is a warning: the viewer rebuilds it from chunks).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import RagError
from rag.storage import sources
from rag.storage.backend import backend_for
from rag.storage.manifest import read_manifest, store_kind


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)  # the index is damaged
    warnings: list[str] = field(default_factory=list)  # the index is sound but out of date
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "errors": self.errors, "warnings": self.warnings, **self.facts}


def verify(index_dir: str | Path, check_embedder: bool = True, sample: int = 3) -> Report:
    index_dir = Path(index_dir)
    report = Report()
    try:
        manifest = read_manifest(index_dir)
    except RagError as exc:
        report.errors.append(str(exc))
        return report
    report.facts |= {"generation": manifest["generation"], "embedder": manifest["embedder"], "counts": manifest["counts"]}
    documents = backend_for(store_kind(manifest)).verify(index_dir, manifest, report, check_embedder=check_embedder,
                                                         sample=sample)
    if documents is None:  # the index's own files are damaged: what else is said would mislead
        return report
    _check_sources(documents, report)
    report.warnings += sources.check_texts(index_dir, documents)
    return report


def _check_sources(documents: dict, report: Report) -> None:
    for doc_id, meta in sorted(documents.items()):
        path = Path(meta.get("path", ""))
        if not path.is_file():
            report.warnings.append(f"{doc_id!r}: source file {path} no longer exists")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != meta.get("sha256"):
            report.warnings.append(f"{doc_id!r}: source file changed since it was indexed; run `rag index` to update")
