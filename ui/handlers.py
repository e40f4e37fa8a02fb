"""What the chat's events do: a thin adapter over ``rag.RAG`` and ``rag.uploads`` (no retrieval logic here).

Each ``*_handler`` returns the function one Gradio event runs; ``ui.app`` wires them to the page.
Every function keeps Gradio's name for its event (``respond``, ``upload``, ``doc_state``…). Each takes
the page's language (``lang``, ``ui.texts``) as its last input, and writes its texts in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from rag.bases import DEFAULT, KnowledgeBases
from rag.errors import RagError
from rag.pipeline import RAG
from rag.uploads import add_uploads
from ui import render
from ui.feedback_ui import record_of
from ui.gate import Gate
from ui.messages import localized
from ui.texts import DEFAULT_LANG, request_lang, t

HEADER_KEYS = ("docs.col_doc", "docs.col_size", "docs.col_chunks", "docs.col_indexed")


def headers(lang: Any = DEFAULT_LANG) -> list[str]:
    """The documents table's column headers in ``lang``."""
    return [t(k, lang) for k in HEADER_KEYS]


def summary(rag: RAG, kb: str = DEFAULT, lang: Any = DEFAULT_LANG) -> str:
    docs = rag.documents()
    if kb == DEFAULT:
        return t("docs.summary", lang, docs=len(docs), chunks=rag.size)
    return t("docs.summary_kb", lang, kb=kb, docs=len(docs), chunks=rag.size)


def as_bases(bases: KnowledgeBases | RAG) -> KnowledgeBases:
    """The registry: a bare RAG (the UI built without a server) is its only, default, base."""
    return bases if isinstance(bases, KnowledgeBases) else KnowledgeBases(bases, bases.settings.kb_root, RAG.open)


DocState = Callable[..., tuple[Any, Any, Any, str]]


def documents_view(gate: Gate) -> DocState:
    """The documents table, the two document pickers (delete, chunk browser) and the summary of the base ``kb``
    (one the caller may read)."""

    def doc_state(kb: str | None = DEFAULT, request: gr.Request = None, lang: Any = None) -> tuple[Any, Any, Any, str]:
        kb, lang = kb or DEFAULT, request_lang(request, lang)
        try:
            rag = gate.read(request, kb)
        except RagError as exc:  # deleted meanwhile by another client, or not this caller's to read
            empty = gr.Dropdown(choices=[], value=None)
            return gr.Dataframe(value=[], headers=headers(lang)), empty, empty, \
                render.status_html([("error", t("docs.unavailable", lang, error=localized(exc, lang)))])
        docs = rag.documents()
        ids = [d["doc_id"] for d in docs]
        return gr.Dataframe(value=render.document_rows(docs), headers=headers(lang)), \
            gr.Dropdown(choices=ids, value=None), gr.Dropdown(choices=ids, value=None), summary(rag, kb, lang)

    return doc_state


def base_choices(bases: KnowledgeBases, chosen: Any = None, multiple: bool = False,
                 renamed: tuple[str, str] | None = None, names: list[str] | None = None) -> Any:
    """A knowledge-base dropdown brought up to date (bases created, renamed or deleted since the page
    opened); a choice of ``renamed[0]`` becomes ``renamed[1]``. ``names``: the bases offered (those the
    caller may read, ``Gate.names``); default: every usable one."""
    if names is None:
        names = bases.usable_names()  # a damaged base is listed by GET /api/kbs with its error, not offered

    def follow(name: Any) -> Any:
        return renamed[1] if renamed and name == renamed[0] else name

    if multiple:
        keep = [follow(n) for n in (chosen if isinstance(chosen, list) else [])]
        first = [DEFAULT] if DEFAULT in names else names[:1]
        return gr.Dropdown(choices=names, value=[n for n in keep if n in names] or first, multiselect=True,
                           interactive=True)
    return gr.Dropdown(choices=names, value=picked_base(names, follow(chosen)), interactive=True)


def picked_base(names: list[str], chosen: Any) -> str | None:
    """What a single base picker shows of ``names``: ``chosen`` if offered, else the default, else the first."""
    if chosen in names:
        return chosen
    return DEFAULT if DEFAULT in names else (names[0] if names else None)


def ask_handler(gate: Gate) -> Callable[..., Iterator[tuple[Any, Any, Any, Any]]]:
    """The chat's answer to a question, streamed: searching, the passages found, the tokens, the answer.

    ``kbs`` are the knowledge bases picked: the default alone asks it as before; any other choice
    asks those bases together, and each citation names its base. ``records`` keeps, for each answer
    shown (by its message index), what a 👍/👎 on it is stored with (``ui.feedback_ui.record_of``)."""
    bases = gate.bases
    settings = bases.default.settings

    def respond(message: str, chat: list[dict[str, Any]], turns: list[dict[str, str]], top_k: float,
                generator: str, hybrid: bool, kbs: list[str] | None = None, records: dict[str, Any] | None = None,
                request: gr.Request = None, lang: Any = None):
        message, lang = (message or "").strip(), request_lang(request, lang)
        records = dict(records or {})
        if not message:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        chat = list(chat or []) + [
            {"role": "user", "content": render.user_message(message)},
            {"role": "assistant", "content": render.pending(t("chat.searching", lang))},
        ]
        yield "", chat, turns, records
        text = ""
        try:
            named = bases.get_many(gate.read_many(request, kbs) or None)  # each one the caller may read
            rag = named[0][1]
            events = rag.ask_stream(
                message, top_k=int(top_k), retrieval="hybrid" if hybrid else "dense",
                generator=settings.check_network_generator(generator), history=turns or None,
                bases=None if [n for n, _ in named] == [DEFAULT] else named,
            )
            for event in events:
                if event.type == "sources":
                    chat[-1] = {"role": "assistant", "content": render.pending(
                        t("chat.found", lang, n=len(event.passages or [])))}
                elif event.type == "token":
                    text += event.text or ""
                    chat[-1] = {"role": "assistant", "content": render.pending(t("chat.answering", lang), text)}
                elif event.type == "answer" and event.answer is not None:
                    answer = event.answer
                    chat[-1] = {"role": "assistant", "content": render.answer_html(answer, lang)}
                    turns = list(turns or []) + [
                        {"role": "user", "content": message}, {"role": "assistant", "content": answer.answer},
                    ]
                    records[str(len(chat) - 1)] = record_of(
                        answer, [n for n, _ in named], {"top_k": int(top_k), "retrieval": "hybrid" if hybrid else "dense"})
                yield gr.skip(), chat, turns, records
        except RagError as exc:
            chat[-1] = {"role": "assistant", "content": render.error_message(exc, lang)}
            yield gr.skip(), chat, turns, records

    return respond


def upload_handler(gate: Gate, staging: Any, doc_state: DocState) -> Callable[..., tuple[Any, ...]]:
    """The "Add to index" button: the staged files the box names, stored in the chosen base and indexed."""

    def upload(files: list[str] | None, key: str, kb: str | None = DEFAULT, request: gr.Request = None, lang: Any = None,
               progress: gr.Progress = gr.Progress(track_tqdm=True)):  # noqa: B008
        lang = request_lang(request, lang)

        def status(kind: str, text: str) -> str:
            return render.status_html([(kind, text)])

        try:
            target = gate.write(request, key, kb)  # the key typed in the tab, else the page's session
        except RagError as exc:
            return status("error", localized(exc, lang)), *doc_state(kb, request, lang), gr.skip()
        if not files:
            return status("warn", t("docs.choose_files", lang)), *doc_state(kb, request, lang), gr.skip()
        staged = [staging.resolve(str(f)) if staging is not None else None for f in files]
        if any(p is None for p in staged):  # a path the client made up: a server file, not an upload
            return status("error", t("docs.not_staged", lang)), *doc_state(kb, request, lang), None
        progress(0.05, desc=t("docs.saving", lang))
        handles = [(Path(p).name, open(p, "rb")) for p in staged]  # noqa: SIM115 - closed below
        try:
            progress(0.15, desc=t("docs.embedding", lang))
            report = add_uploads(target, handles)
        except RagError as exc:
            return status("error", t("docs.upload_failed", lang, error=localized(exc, lang))), \
                *doc_state(kb, request, lang), gr.skip()
        finally:
            for _, fh in handles:
                fh.close()
            for p in staged:  # stored under documents/ by now, or refused: the staged copy goes
                staging.release(p)
        progress(1.0, desc=t("docs.done", lang))
        return render.status_html(upload_lines(report, lang)), *doc_state(kb, request, lang), None

    return upload


def upload_lines(report: Any, lang: Any = DEFAULT_LANG) -> list[tuple[str, str]]:
    """What an upload's ``IndexReport`` says, one (kind, text) line a fact."""
    lines: list[tuple[str, str]] = []
    for name, stored in report.renamed.items():
        lines.append(("warn", t("docs.renamed", lang, stored=stored, name=name)))
    if report.added or report.updated:
        lines.append(("ok", t("docs.indexed", lang, names=", ".join(report.added + report.updated),
                              chunks=report.chunks_embedded, seconds=f"{report.seconds:.1f}")))
    if report.unchanged:
        lines.append(("ok", t("docs.unchanged", lang, names=", ".join(report.unchanged))))
    for path, reason in report.skipped.items():
        lines.append(("warn", t("docs.skipped", lang, name=Path(path).name, reason=localized(reason, lang))))
    return lines


__all__ = ["as_bases", "ask_handler", "base_choices", "documents_view", "headers", "picked_base", "summary",
           "upload_handler", "upload_lines"]
