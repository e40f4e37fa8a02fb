"""The ``RAG`` facade: the one object the CLI, the UI, the HTTP API and users call."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


from .chunking import ChunkSettings
from .config import Settings
from .embedders import Embedder, load_embedder
from .errors import ConfigError, DocumentNotFoundError, IndexNotFoundError
from .generators import ExtractiveGenerator, Generator
from .indexing import build_snapshot, empty_snapshot, remove_documents
from .retriever import RetrievalSettings, retrieve
from .store import Snapshot, check_embedder, load_snapshot, read_manifest, save_snapshot, write_lock
from .types import Answer, Citation, IndexReport, Passage

_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\n\t")


class RAG:
    def __init__(self, index_dir: Path, snap: Snapshot, embedder: Embedder, settings: Settings) -> None:
        self.index_dir = index_dir
        self.settings = settings
        self.embedder = embedder
        self._snap = snap
        self._write = threading.Lock()

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def open(
        cls, index_dir: str | Path = "index", *, create: bool = False, fresh: bool = False, **settings: Any
    ) -> "RAG":
        """Open the index in ``index_dir``; with ``create=True`` start an empty one if there is none.

        ``fresh=True`` starts empty without reading what is there (for rebuilding a damaged
        or outdated index); the old index stays on disk until the new one is saved.
        """
        index_dir = Path(index_dir)
        cfg = Settings.from_env().with_overrides(**settings)
        if (index_dir / "manifest.json").is_file() and not fresh:
            manifest = read_manifest(index_dir)
            built = manifest["embedder"]["name"]
            if "embedder" in settings and settings["embedder"] not in (None, built):
                embedder = load_embedder(settings["embedder"])
                check_embedder(manifest, embedder.name, embedder.dim, index_dir)
            cfg = cfg.with_overrides(embedder=built, **_chunking_from(manifest))
            embedder = load_embedder(built)
            check_embedder(manifest, embedder.name, embedder.dim, index_dir)
            snap = load_snapshot(index_dir)
        elif create or fresh:
            embedder = load_embedder(cfg.embedder)
            snap = empty_snapshot(embedder, cls._chunk_settings(cfg))
        else:
            raise IndexNotFoundError(
                f"no index at {index_dir}; build one with `rag index [PATHS] --index-dir {index_dir}` "
                "or use RAG.open(..., create=True)"
            )
        return cls(index_dir, snap, embedder, cfg)

    @staticmethod
    def _chunk_settings(cfg: Settings) -> ChunkSettings:
        return ChunkSettings(chunk_tokens=cfg.chunk_tokens, overlap_tokens=cfg.overlap_tokens)

    # ---- writing -------------------------------------------------------------------------
    def add(self, paths: str | Path | Iterable[str | Path]) -> IndexReport:
        """Index new or changed files (a file, a folder, or several); others are left as they are."""
        return self._update(paths, sync=False)

    def index(self, paths: str | Path | Iterable[str | Path], *, rebuild: bool = False) -> IndexReport:
        """Like ``add``, and also drop documents whose files under these folders are gone.

        ``rebuild`` re-reads and re-embeds everything from the sources; the old index
        stays in force until the new one is completely written.
        """
        return self._update(paths, sync=True, rebuild=rebuild)

    def _update(self, paths: str | Path | Iterable[str | Path], sync: bool, rebuild: bool = False) -> IndexReport:
        if isinstance(paths, (str, Path)):
            paths = [paths]
        with self._write, write_lock(self.index_dir):
            base = empty_snapshot(self.embedder, self._chunk_settings(self.settings)) if rebuild else self._snap
            snap, report = build_snapshot(
                base, list(paths), self.embedder, self._chunk_settings(self.settings),
                sync=sync, max_bytes=int(self.settings.max_file_mb * 1024 * 1024),
                progress=self.settings.progress, batch_size=self.settings.batch_size,
            )
            if rebuild or report.added or report.updated or report.removed or not (self.index_dir / "manifest.json").exists():
                save_snapshot(self.index_dir, snap)
            self._snap = snap
        return report

    def delete(self, doc_ids: str | Sequence[str]) -> list[str]:
        """Remove documents by id; unknown ids raise ``DocumentNotFoundError`` and nothing is removed."""
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        with self._write, write_lock(self.index_dir):
            missing = [d for d in ids if d not in self._snap.documents]
            if missing:
                raise DocumentNotFoundError(f"no such document(s) in the index: {', '.join(missing)}")
            snap = remove_documents(self._snap, ids)
            save_snapshot(self.index_dir, snap)
            self._snap = snap
        return ids

    # ---- reading -------------------------------------------------------------------------
    def documents(self) -> list[dict[str, Any]]:
        return [{"doc_id": k, **v} for k, v in sorted(self._snap.documents.items())]

    @property
    def size(self) -> int:
        return self._snap.size

    def search(self, question: str, top_k: int = 5, *, retrieval: str | None = None) -> list[Passage]:
        question = self._check_question(question)
        if top_k < 1:
            raise ConfigError(f"top_k must be greater than 0. Currently, top_k is {top_k}")
        settings = RetrievalSettings(mode=retrieval or self.settings.retrieval, candidates=self.settings.candidates)
        return retrieve(self._snap, self.embedder, question, top_k, settings)

    def ask(self, question: str, *, top_k: int | None = None, retrieval: str | None = None) -> Answer:
        t0 = time.perf_counter()
        question = self._check_question(question)
        snap = self._snap  # one snapshot for the whole answer, whatever writers do meanwhile
        k = self.settings.top_k if top_k is None else top_k
        if k < 1:
            raise ConfigError(f"top_k must be greater than 0. Currently, top_k is {k}")
        settings = RetrievalSettings(mode=retrieval or self.settings.retrieval, candidates=self.settings.candidates)
        qvec = self.embedder.embed_queries([question])[0]
        passages = retrieve(snap, self.embedder, question, k, settings, query_vector=qvec)
        t1 = time.perf_counter()
        draft = self._generator(snap).generate(question, passages)
        t2 = time.perf_counter()
        citations = [self._citation(passages, q) for q in draft.quotes]
        return Answer(
            question=question, answer=draft.text, abstained=draft.abstained, citations=citations,
            passages=list(passages), warnings=list(draft.warnings),
            timings={"retrieve_ms": (t1 - t0) * 1000, "generate_ms": (t2 - t1) * 1000, "total_ms": (t2 - t0) * 1000},
        )

    def _generator(self, snap: Snapshot) -> Generator:
        return ExtractiveGenerator(self.embedder, snap.lexical.idf)

    @staticmethod
    def _citation(passages: Sequence[Passage], quote: Any) -> Citation:
        chunk = passages[quote.n - 1].chunk
        start, end = chunk.source_span(quote.start, quote.end)
        return Citation(quote.n, chunk.doc_id, chunk.chunk_id, chunk.text[quote.start : quote.end], start, end)

    def _check_question(self, question: str) -> str:
        if not isinstance(question, str):
            raise ConfigError(f"question must be a string. Currently, it is {type(question).__name__}")
        q = question.translate(_CONTROL).strip()
        if not q:
            raise ConfigError("question is empty")
        if len(q) > self.settings.max_question_chars:
            raise ConfigError(
                f"question is {len(q)} characters, over the limit of {self.settings.max_question_chars} "
                "(max_question_chars)"
            )
        return q


def _chunking_from(manifest: dict[str, Any]) -> dict[str, Any]:
    ch = manifest.get("chunking") or {}
    return {k: ch[k] for k in ("chunk_tokens", "overlap_tokens") if k in ch}


__all__ = ["RAG"]
