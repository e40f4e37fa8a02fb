"""The ``RAG`` facade: the one object the CLI, the UI, the HTTP API and users call."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings, differences
from rag.embedding.backends import Embedder, load_embedder
from rag.errors import ConfigError, DocumentNotFoundError, IndexNotFoundError, RagError
from rag.filters import validate as validate_filters
from rag.generation.base import Context
from rag.generation.dispatch import answer_pieces, chat_turns, standalone, to_answer, with_span
from rag.generation.resolve import Generators, GeneratorSpec
from rag.ingest.chunking import ChunkSettings
from rag.retrieval.retrieve import RetrievalSettings, retrieve
from rag.storage.backend import (
    Change,
    IndexState,
    backend_for,
    open_index,
    parse_store,
    recorded_store,
    search_store,
)
from rag.storage.live import LiveSnapshot
from rag.storage.lock import write_lock
from rag.storage.manifest import check_embedder, previous_manifest, read_manifest
from rag.storage.sources import SourceTexts, forget, sweep
from rag.text.normalize import full_dictionary, warm_up
from rag.text.unicode import is_encodable
from rag.types import Answer, AnswerEvent, Chunk, IndexReport, Passage

Filters = dict[str, str] | None  # see rag.filters: doc, article, date_from, date_to
History = Sequence[Any] | None  # [{"role": "user"|"assistant", "content": str}] or [(user, assistant)] pairs
Bases = Sequence[tuple[str, "RAG"]] | None  # named knowledge bases asked together (rag.bases)

_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\n\t")


class RAG:
    def __init__(
        self, index_dir: Path, snap: IndexState, embedder: Embedder, settings: Settings, generator: GeneratorSpec = None,
        *, fresh: bool = False,
    ) -> None:
        self.index_dir = index_dir
        self.settings = settings
        self.embedder = embedder
        self._live = LiveSnapshot(index_dir, snap, self._same_embedder, ignore_on_disk=fresh)
        self._write = threading.Lock()
        self._warming: threading.Thread | None = None  # the answerer's models loading (_start_warming)
        self._warming_lock = threading.Lock()
        self.notices: list[str] = []  # settings that were not used, e.g. RAG_CHUNK_TOKENS on a built index
        # a spec, a chat model or a Generator (see rag.generation.resolve); a bad one fails here, at open
        self._generators = Generators(generator if generator is not None else settings.generator, settings)

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def open(
        cls, index_dir: str | Path = "index", *, create: bool = False, fresh: bool = False, **settings: Any
    ) -> RAG:
        """Open the index in ``index_dir``; with ``create=True`` start an empty one if there is none.

        ``fresh=True`` starts empty without reading what is there (for rebuilding a damaged
        or outdated index); the old index stays on disk until the new one is saved.
        ``settings`` are fields of ``rag.config.Settings`` (over the ``RAG_*`` environment), all
        checked here. The embedder and chunking of an existing index are the ones it was built
        with: asking for others is an error (rebuild with ``fresh=True`` to change them); other
        values from the environment are noted in ``notices``.
        """
        index_dir = Path(index_dir)
        warm_up()  # jieba's dictionary loads while the model does: a question needs both
        # a chat model or Generator object is not a setting (Settings.generator is a spec string)
        model_object = settings.pop("generator") if not isinstance(settings.get("generator", ""), (str, type(None))) else None
        env = Settings.from_env()
        cfg = env.with_overrides(**settings)
        notices: list[str] = []
        if (index_dir / "manifest.json").is_file() and not fresh:
            manifest = read_manifest(index_dir)
            built = manifest["embedder"]["name"]
            if "embedder" in settings and settings["embedder"] not in (None, built):
                embedder = load_embedder(settings["embedder"], settings=cfg)
                check_embedder(manifest, embedder.name, embedder.dim, index_dir)
            if settings.get("store") and parse_store(settings["store"]) != recorded_store(manifest):
                raise ConfigError(
                    f"the index at {index_dir} keeps its chunks in {recorded_store(manifest).text}, not "
                    f"{parse_store(settings['store']).text}; the store is fixed when an index is built: rebuild it "
                    "there (`rag index --rebuild --store …`) or leave store out")
            recorded = _chunking_from(manifest)
            notices = _check_recorded(index_dir, settings, env, {**recorded, "embedder": built})
            cfg = cfg.with_overrides(embedder=built, **recorded)
            embedder = load_embedder(built, settings=cfg)
            check_embedder(manifest, embedder.name, embedder.dim, index_dir)
            snap = open_index(index_dir)
        elif create or fresh:
            if fresh and not settings.get("store") and (index_dir / "manifest.json").is_file():
                with contextlib.suppress(RagError):  # a damaged manifest: rebuilt where the settings say
                    cfg = cfg.with_overrides(store=recorded_store(read_manifest(index_dir)).text)
            embedder = load_embedder(cfg.embedder, settings=cfg)
            snap = cls._empty(index_dir, cfg, embedder, rebuild=fresh)
        else:
            raise IndexNotFoundError("index.missing", index_dir=index_dir)
        rag = cls(index_dir, snap, embedder, cfg, generator=model_object, fresh=fresh)
        rag.notices = notices
        return rag

    def _warm_answerer(self) -> None:
        """The extractive answerer's models (reader, tagger, span model), loaded beside the first question's
        retrieval: compiling the reader and reading its files let the caller's thread run meanwhile."""
        with contextlib.suppress(Exception):  # a broken model file fails where it is used, as before
            self._generators.extractive.warm()

    def _start_warming(self) -> None:
        """Start ``_warm_answerer`` once, at the first question (not at ``open``: a command that never asks
        spends nothing on it). Not a daemon: a process that ends while OpenVINO compiles in a daemon thread
        aborts ("terminate called without an active exception"), so exit waits for the load to finish."""
        with self._warming_lock:
            if self._warming is None:
                self._warming = threading.Thread(target=self._warm_answerer, name="answerer-warm-up")
                self._warming.start()

    @classmethod
    def _empty(cls, index_dir: Path, cfg: Settings, embedder: Embedder, rebuild: bool = False) -> IndexState:
        """An empty index in the store ``cfg.store`` names (FAISS files, segments, or a new Milvus collection)."""
        spec = parse_store(cfg.store)
        return backend_for(spec.kind).empty(index_dir, spec, embedder, cls._chunk_settings(cfg), rebuild=rebuild)

    @staticmethod
    def _chunk_settings(cfg: Settings) -> ChunkSettings:
        return ChunkSettings(chunk_tokens=cfg.chunk_tokens, overlap_tokens=cfg.overlap_tokens, headers=cfg.headers)

    @property
    def state(self) -> IndexState:
        """The latest published state of the index (a FAISS ``Snapshot`` or a store's ``StoreSnapshot``):
        a newer generation written by another process is picked up. Never changed once published."""
        return self._live.current()

    def _cluster(self) -> Any:
        """The Ray cluster that reads, chunks and embeds (``settings.ray``: an address or ``auto``), or None:
        in this process, the default (on one machine Ray only adds its start-up; see bench/ray_ingest.py)."""
        if not self.settings.ray:
            return None
        from rag.indexing.distributed import RayIngest  # noqa: PLC0415 - it brings the file readers (~0.2 s) that asking never needs; only --ray uses it

        return RayIngest.connect(self.settings.ray, settings=self.settings, progress=self.settings.progress)

    def _rebuild_settings(self, current: Any) -> Settings:
        """A rebuild stays in the store it is in, unless this RAG was opened to move it (``store=``)."""
        if self.settings.store or not current.manifest:
            return self.settings
        return self.settings.with_overrides(store=recorded_store(current.manifest).text)

    def _same_embedder(self, manifest: dict[str, Any]) -> None:
        check_embedder(manifest, self.embedder.name, self.embedder.dim, self.index_dir)

    def warm(self) -> None:
        """Load what answering needs (the embedder's first call, the extractive answerer's models, jieba's
        tagger) now: a server calls it before it listens, so that its first questions do not each wait."""
        self.embedder.embed_queries(["warm-up"])
        full_dictionary()  # jieba's own tables, not the quick stand-in of one-question processes
        self._generators.extractive.warm(serving=True)

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
            # re-read under the lock: another process may have saved since this one last looked
            current = self.state
            base = self._empty(self.index_dir, self._rebuild_settings(current), self.embedder, True) if rebuild \
                else current
            chunking = self._chunk_settings(self.settings) if rebuild or not base.chunking else ChunkSettings(**base.chunking)
            before = previous_manifest(self.index_dir) if rebuild else None
            change = Change(list(paths), self.embedder, chunking, sync=sync,
                            max_bytes=int(self.settings.max_file_mb * 1024 * 1024), progress=self.settings.progress,
                            batch_size=self.settings.batch_size, settings=self.settings, distributed=self._cluster(),
                            texts=SourceTexts(self.index_dir),  # the viewer's texts, written before the manifest names them
                            rebuild=rebuild)
            backend = backend_for(base.kind)
            snap, report = backend.update(base, self.index_dir, change)
            if rebuild:
                backend.after_rebuild(before, snap, self.index_dir)
            self._live.publish(snap)
            self._drop_texts(base.documents, snap.documents, report, rebuild)
        return report

    def delete(self, doc_ids: str | Sequence[str]) -> list[str]:
        """Remove documents by id; unknown ids raise ``DocumentNotFoundError`` and nothing is removed."""
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        with self._write, write_lock(self.index_dir):
            base = self.state  # the latest on disk, as in _update
            missing = [d for d in ids if d not in base.documents]
            if missing:
                raise DocumentNotFoundError("document.not_found", ids=", ".join(missing))
            snap = backend_for(base.kind).delete(base, self.index_dir, ids, self.settings)
            self._live.publish(snap)
            self._drop_texts(base.documents, snap.documents)
        return ids

    def _drop_texts(self, before: dict[str, Any], after: dict[str, Any], report: IndexReport | None = None,
                    rebuild: bool = False) -> None:
        """After a commit: the kept texts (``rag.storage.sources``) of documents it replaced or removed go;
        a rebuild also sweeps any a killed writer left. The commit stands whatever happens here."""
        try:
            if rebuild:
                sweep(self.index_dir, after)
            elif report is None or report.updated or report.removed:
                forget(self.index_dir, before, after)
        except OSError as exc:
            logging.getLogger(__name__).warning("could not remove the viewer texts of removed documents: %s", exc)

    # ---- reading -------------------------------------------------------------------------
    def documents(self) -> list[dict[str, Any]]:
        return [{"doc_id": k, **v} for k, v in sorted(self.state.documents.items())]

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """The indexed chunks of ``doc_id`` in source order (empty for an unknown id)."""
        return sorted(self.state.chunks_of(doc_id), key=lambda c: (c.start, c.end))

    @property
    def size(self) -> int:
        return self.state.size

    def search(
        self, question: str, top_k: int = 5, *, retrieval: str | None = None, filters: Filters = None,
        bases: Bases = None, explain: bool = False, lexical_weight: float | None = None, rerank: bool | None = None,
    ) -> list[Passage]:
        """The ``top_k`` best passages; ``explain`` attaches each one's score breakdown (``Passage.explain``).

        ``lexical_weight`` (0-1) is the hybrid fusion's share of BM25 and ``rerank`` turns the
        distinctive-term re-rank on or off; None keeps the defaults of ``RetrievalSettings``.
        ``bases`` searches named knowledge bases instead (see ``ask_stream``).
        """
        query = self._check_question(question)
        if rerank is not None and not isinstance(rerank, bool):
            raise ConfigError(f"rerank must be true or false. Currently, rerank is {rerank!r}")
        rerank_weight = None if rerank is None else (RetrievalSettings.rerank_weight if rerank else 0.0)
        overrides = {"explain": explain, "lexical_weight": lexical_weight, "rerank_weight": rerank_weight}
        if bases:
            return self._retrieve_bases(bases, query, top_k, retrieval, filters, **overrides)
        return self._retrieve(self.state, query, top_k, retrieval, filters, **overrides)

    def _retrieve(self, snap: IndexState, query: str, top_k: int, retrieval: str | None, filters: Filters,
                  query_vector: np.ndarray | None = None, **overrides: Any) -> list[Passage]:
        """Retrieve from ``snap``; ``overrides`` are ``RetrievalSettings`` fields (None: the default)."""
        if top_k < 1:
            raise ConfigError("top_k.not_positive", top_k=top_k)
        given = {k: v for k, v in overrides.items() if v is not None}
        known = RetrievalSettings.__dataclass_fields__
        unknown = sorted(given.keys() - known.keys())
        if unknown:
            raise ConfigError(f"unknown retrieval setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
        base = {"mode": retrieval or self.settings.retrieval, "candidates": self.settings.candidates}
        settings = RetrievalSettings(**(base | given))
        store = search_store(snap)
        passages = retrieve(store, self.embedder, query, top_k, settings, query_vector=query_vector,
                            where=store.where(validate_filters(filters)))
        backend = backend_for(snap.kind)  # a store may hold rows a writer has inserted ahead of its manifest
        shown = [p for p in passages if backend.visible(snap, p.chunk.doc_id)]
        if len(shown) < len(passages):
            passages = [replace(p, rank=r) for r, p in enumerate(shown, 1)]
        return passages

    def _retrieve_bases(self, bases: Bases, query: str, top_k: int, retrieval: str | None, filters: Filters,
                        qvec: np.ndarray | None = None, **overrides: Any) -> list[Passage]:
        """The best ``top_k`` passages of several knowledge bases, fused by score, each tagged with its base.

        Each base ranks its own candidates (its own BM25 statistics, its own snapshot); the fused
        scores are normalised per query in every base, so they compare. A base built with another
        embedder embeds the query itself.
        """
        found: list[Passage] = []
        for name, base in bases or []:
            vector = qvec if base.embedder.name == self.embedder.name else None
            hits = base._retrieve(base.state, query, top_k, retrieval, filters, query_vector=vector, **overrides)
            found += [replace(p, kb=name) for p in hits]
        found.sort(key=lambda p: -p.score)
        return [replace(p, rank=r) for r, p in enumerate(found[:top_k], 1)]

    def ask(
        self, question: str, *, top_k: int | None = None, retrieval: str | None = None,
        generator: GeneratorSpec = None, history: History = None, filters: Filters = None, bases: Bases = None,
    ) -> Answer:
        """Answer with citations; ``generator`` (a spec, a LangChain chat model or a ``rag.generation.Generator``)
        overrides the configured one for this call; ``bases`` as in ``ask_stream``."""
        answer = None
        for event in self.ask_stream(question, top_k=top_k, retrieval=retrieval, generator=generator, history=history,
                                     filters=filters, bases=bases):
            if event.type == "answer":
                answer = event.answer
        assert answer is not None
        return answer

    def ask_stream(
        self, question: str, *, top_k: int | None = None, retrieval: str | None = None,
        generator: GeneratorSpec = None, history: History = None, filters: Filters = None,
        bases: Bases = None,
    ) -> Iterator[AnswerEvent]:
        """Yield the retrieved sources, then answer text as it arrives, then the final ``Answer``.

        The ``answer`` event's text is authoritative: it can differ from the streamed tokens when
        the generator failed after some of them (the extractive answer replaces them) or its ``[n]``
        markers were renumbered; a client shows ``answer.answer`` whenever it differs.

        ``bases`` asks named knowledge bases instead of this one alone, ``[(name, rag), ...]``
        (``rag.bases.KnowledgeBases.get_many``): their passages are fused by score and each
        carries its base's name, which the citations repeat. This RAG's generator and settings answer.
        """
        t0 = time.perf_counter()
        question = self._check_question(question)
        k = self.settings.top_k if top_k is None else top_k
        if k < 1:  # checked before the generator is asked to rewrite anything
            raise ConfigError("top_k.not_positive", top_k=k)
        gen = self._generators.get(generator)
        self._start_warming()  # the extractive answer is the fallback of every generator: load it beside retrieval
        warnings: list[str] = []
        query = standalone(gen, question, chat_turns(history), warnings)
        snap = self.state  # one snapshot for the whole answer, whatever writers do meanwhile
        qvec = self.embedder.embed_queries([query])[0]  # once, for retrieval and the extractive answer
        if bases:
            passages = self._retrieve_bases(bases, query, k, retrieval, filters, qvec)
        else:
            passages = self._retrieve(snap, query, k, retrieval, filters, query_vector=qvec)
        t1 = time.perf_counter()
        yield AnswerEvent("sources", passages=passages, query=query)
        ctx = Context(self.embedder, search_store(snap).idf, qvec)
        for piece in answer_pieces(gen, self._generators.extractive, query, passages, ctx, warnings):
            if isinstance(piece, str):
                yield AnswerEvent("token", text=piece)
            else:
                outcome = piece
        outcome = with_span(outcome, self._generators.extractive, query, passages)
        t2 = time.perf_counter()
        timings = {"retrieve_ms": (t1 - t0) * 1000, "generate_ms": (t2 - t1) * 1000, "total_ms": (t2 - t0) * 1000}
        yield AnswerEvent("answer", answer=to_answer(question, query, passages, outcome, warnings, timings))

    def as_retriever(self, *, top_k: int = 5, filters: Filters = None, retrieval: str | None = None) -> Any:
        """This index as a LangChain retriever (``rag.retrieval.langchain.RagRetriever``) for an LCEL chain;
        its Documents carry each passage's text and where it is (doc_id, chunk_id, offsets, article, score).
        Named knowledge bases: ``KnowledgeBases.as_retriever(kb=…)``."""
        from rag.retrieval.langchain import retriever  # noqa: PLC0415 - langchain_core only for LangChain users

        _check_top_k(top_k)
        validate_filters(filters)  # a bad filter fails here, not at the chain's first question
        return retriever(self.search, top_k=top_k, filters=filters, retrieval=retrieval)

    def evaluate(self, dataset: Any, **options: Any) -> Any:
        """Ask every question of a question set and score the answers (see ``rag.evaluation.run``).

        Returns an ``EvalReport`` with ``summary``, ``results`` and ``write(out_dir)``.
        """
        from rag.evaluation.run import evaluate  # noqa: PLC0415 - rag.evaluation and Jinja2 (~0.2 s) kept out of `import rag`

        return evaluate(self, dataset, **options)

    def _check_question(self, question: str) -> str:
        if not isinstance(question, str):
            raise ConfigError(f"question must be a string. Currently, it is {type(question).__name__}")
        q = question.translate(_CONTROL).strip()
        if not q:
            raise ConfigError("question.empty")
        if not is_encodable(q):  # tokenizers, jieba and the JSON answer would all fail on it later
            raise ConfigError("text.surrogate", what="question")
        if len(q) > self.settings.max_question_chars:
            raise ConfigError("question.too_long", n=len(q), limit=self.settings.max_question_chars)
        return q


def _check_top_k(top_k: int) -> None:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ConfigError("top_k.not_positive", top_k=top_k)


def _check_recorded(index_dir: Path, asked: dict[str, Any], env: Settings, recorded: dict[str, Any]) -> list[str]:
    """Settings fixed when the index was built: an argument that differs is an error; a differing
    ``RAG_*`` variable (ambient, perhaps meant for another index) is a notice, and the index's value holds."""
    clash = differences({k: asked.get(k) for k in recorded if k != "embedder"}, recorded)
    if clash:
        raise ConfigError(
            f"the index at {index_dir} was built with other settings: {'; '.join(clash)}. They are fixed when an "
            "index is built: rebuild it with them (`rag index --rebuild`, RAG.open(..., fresh=True)) or leave them out"
        )
    defaults = Settings()
    from_env = {k: getattr(env, k) for k in recorded if getattr(env, k) != getattr(defaults, k) and asked.get(k) is None}
    return [f"RAG_{d.split('=')[0].upper()} is not used: {d}" for d in differences(from_env, recorded)]


def _chunking_from(manifest: dict[str, Any]) -> dict[str, Any]:
    ch = manifest.get("chunking") or {}
    return {k: ch[k] for k in ("chunk_tokens", "overlap_tokens", "headers") if k in ch}


__all__ = ["RAG"]
