"""What the chat's events do: a thin adapter over ``rag.RAG`` and ``rag.uploads`` (no retrieval logic here).

Each ``*_handler`` returns the function one Gradio event runs; ``ui.app`` wires them to the page.
Every function keeps Gradio's name for its event (``respond``, ``upload``, ``delete``, ``doc_state``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from rag.bases import DEFAULT, KnowledgeBases
from rag.errors import RagError
from rag.http.guard import key_matches
from rag.http.plain import escape_markdown
from rag.pipeline import RAG
from rag.uploads import add_uploads, delete_document
from ui import render
from ui.chunks_view import CHUNK_HEADERS, document_chunk_rows
from ui.feedback_ui import record_of
from ui.messages import bilingual
from ui.staging import Staging

HEADERS = ["文档 Document", "大小 Size", "段落 Chunks", "索引时间 Indexed at"]


def summary(rag: RAG, kb: str = DEFAULT) -> str:
    docs = rag.documents()
    where = "" if kb == DEFAULT else f"知识库 {kb} · knowledge base {kb}: "
    return f"{where}索引中共有 {len(docs)} 个文档、{rag.size} 个段落 · {len(docs)} documents, {rag.size} passages indexed"


def as_bases(bases: KnowledgeBases | RAG) -> KnowledgeBases:
    """The registry: a bare RAG (the UI built without a server) is its only, default, base."""
    return bases if isinstance(bases, KnowledgeBases) else KnowledgeBases(bases, bases.settings.kb_root, RAG.open)


def documents_view(bases: KnowledgeBases) -> Callable[[str | None], tuple[Any, Any, str]]:
    """The documents table, the delete choices and the summary of the base ``kb``, as they are now."""

    def doc_state(kb: str | None = DEFAULT) -> tuple[Any, Any, str]:
        kb = kb or DEFAULT
        try:
            rag = bases.get(kb)
        except RagError as exc:  # deleted meanwhile, by another client
            return gr.Dataframe(value=[], headers=HEADERS), gr.Dropdown(choices=[], value=None), \
                render.status_html([("error", f"知识库不可用 Knowledge base unavailable: {bilingual(exc)}")])
        docs = rag.documents()
        rows = render.document_rows(docs)
        ids = [d["doc_id"] for d in docs]
        return gr.Dataframe(value=rows, headers=HEADERS), gr.Dropdown(choices=ids, value=None), summary(rag, kb)

    return doc_state


def base_choices(bases: KnowledgeBases, chosen: Any = None, multiple: bool = False) -> Any:
    """A knowledge-base dropdown brought up to date (bases created or deleted since the page opened)."""
    names = bases.usable_names()  # a damaged base is listed by GET /api/kbs with its error, not offered
    if multiple:
        keep = [n for n in (chosen or []) if n in names] or [DEFAULT]
        return gr.Dropdown(choices=names, value=keep, interactive=True)
    return gr.Dropdown(choices=names, value=chosen if chosen in names else DEFAULT, interactive=True)


def chunks_handler(bases: KnowledgeBases) -> Callable[[str | None, str | None], tuple[Any, str]]:
    """The chosen document's chunks (article, section, page, first words): what was indexed of it."""

    def doc_chunks(doc_id: str | None, kb: str | None = DEFAULT) -> tuple[Any, str]:
        if not doc_id:
            return gr.Dataframe(value=[], headers=CHUNK_HEADERS), ""
        try:
            rows = document_chunk_rows(bases.get(kb or DEFAULT), doc_id)
        except RagError as exc:
            return gr.Dataframe(value=[], headers=CHUNK_HEADERS), render.status_html(
                [("error", f"无法列出段落 Cannot list the chunks: {bilingual(exc)}")])
        # the title is Markdown: a file named "[点此](https:evil).md" must show as its name, not a link
        return gr.Dataframe(value=rows, headers=CHUNK_HEADERS), \
            f"**{escape_markdown(doc_id, one_line=True)}**：{len(rows)} 个段落 · {len(rows)} chunks"

    return doc_chunks


def ask_handler(bases: KnowledgeBases) -> Callable[..., Iterator[tuple[Any, Any, Any, Any]]]:
    """The chat's answer to a question, streamed: searching, the passages found, the tokens, the answer.

    ``kbs`` are the knowledge bases picked: the default alone asks it as before; any other choice
    asks those bases together, and each citation names its base. ``records`` keeps, for each answer
    shown (by its message index), what a 👍/👎 on it is stored with (``ui.feedback_ui.record_of``)."""
    settings = bases.default.settings

    def respond(message: str, chat: list[dict[str, Any]], turns: list[dict[str, str]], top_k: float,
                generator: str, hybrid: bool, kbs: list[str] | None = None, records: dict[str, Any] | None = None):
        message = (message or "").strip()
        records = dict(records or {})
        if not message:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        chat = list(chat or []) + [
            {"role": "user", "content": render.user_message(message)},
            {"role": "assistant", "content": render.pending("检索中… Searching the documents…")},
        ]
        yield "", chat, turns, records
        text = ""
        try:
            named = bases.get_many(kbs or None)
            rag = named[0][1]
            events = rag.ask_stream(
                message, top_k=int(top_k), retrieval="hybrid" if hybrid else "dense",
                generator=settings.check_network_generator(generator), history=turns or None,
                bases=None if [n for n, _ in named] == [DEFAULT] else named,
            )
            for event in events:
                if event.type == "sources":
                    n = len(event.passages or [])
                    chat[-1] = {"role": "assistant", "content": render.pending(
                        f"找到 {n} 个相关段落，正在作答… Found {n} passages, answering…")}
                elif event.type == "token":
                    text += event.text or ""
                    chat[-1] = {"role": "assistant", "content": render.pending("作答中… Answering…", text)}
                elif event.type == "answer" and event.answer is not None:
                    answer = event.answer
                    chat[-1] = {"role": "assistant", "content": render.answer_html(answer)}
                    turns = list(turns or []) + [
                        {"role": "user", "content": message}, {"role": "assistant", "content": answer.answer},
                    ]
                    records[str(len(chat) - 1)] = record_of(
                        answer, [n for n, _ in named], {"top_k": int(top_k), "retrieval": "hybrid" if hybrid else "dense"})
                yield gr.skip(), chat, turns, records
        except RagError as exc:
            chat[-1] = {"role": "assistant", "content": render.error_message(exc)}
            yield gr.skip(), chat, turns, records

    return respond


def upload_handler(bases: KnowledgeBases, api_key: str | None, staging: Staging | None,
                   doc_state: Callable[[str | None], tuple[Any, Any, str]]) -> Callable[..., tuple[Any, ...]]:
    """The "Add to index" button: the staged files the box names, stored in the chosen base and indexed."""

    def upload(files: list[str] | None, key: str, kb: str | None = DEFAULT,
               progress: gr.Progress = gr.Progress(track_tqdm=True)):  # noqa: B008
        if not key_matches(api_key, key):
            return render.status_html([("error", "API 密钥错误 Wrong or missing API key")]), *doc_state(kb), gr.skip()
        if not files:
            return render.status_html([("warn", "请先选择文件 Choose files first")]), *doc_state(kb), gr.skip()
        staged = [staging.resolve(str(f)) if staging is not None else None for f in files]
        if any(p is None for p in staged):  # a path the client made up: a server file, not an upload
            return render.status_html([("error", "上传失败 Upload failed: not a file uploaded to this server")]), \
                *doc_state(kb), None
        progress(0.05, desc="保存文件 Saving files…")
        handles = [(Path(p).name, open(p, "rb")) for p in staged]  # noqa: SIM115 - closed below
        try:
            progress(0.15, desc="切分与嵌入 Chunking and embedding…")
            report = add_uploads(bases.get(kb or DEFAULT), handles)
        except RagError as exc:
            return render.status_html([("error", f"上传失败 Upload failed: {bilingual(exc)}")]), *doc_state(kb), gr.skip()
        finally:
            for _, fh in handles:
                fh.close()
            for p in staged:  # stored under documents/ by now, or refused: the staged copy goes
                staging.release(p)
        progress(1.0, desc="完成 Done")
        return render.status_html(upload_lines(report)), *doc_state(kb), None

    return upload


def upload_lines(report: Any) -> list[tuple[str, str]]:
    """What an upload's ``IndexReport`` says, one (kind, text) line a fact."""
    lines: list[tuple[str, str]] = []
    for name, stored in report.renamed.items():
        lines.append(("warn", f"已改名 Stored as {stored}: 已有来自其他来源的同名文档 "
                              f"a document from another source is already named {name}"))
    if report.added or report.updated:
        names = ", ".join(report.added + report.updated)
        done = f"{report.chunks_embedded} 个段落 chunks embedded, {report.seconds:.1f} s"
        lines.append(("ok", f"已加入索引 Indexed: {names} ({done})"))
    if report.unchanged:
        lines.append(("ok", f"未变化 Unchanged: {', '.join(report.unchanged)}"))
    for path, reason in report.skipped.items():
        lines.append(("warn", f"已跳过 Skipped {Path(path).name}: {bilingual(reason)}"))
    return lines


def delete_handler(bases: KnowledgeBases, api_key: str | None,
                   doc_state: Callable[[str | None], tuple[Any, Any, str]]) -> Callable[..., tuple[Any, ...]]:
    """The "Delete document" button: the chosen document of the chosen base and its stored upload."""

    def delete(doc_id: str | None, key: str, kb: str | None = DEFAULT):
        if not key_matches(api_key, key):
            return render.status_html([("error", "API 密钥错误 Wrong or missing API key")]), *doc_state(kb)
        if not doc_id:
            return render.status_html([("warn", "请先选择文档 Choose a document first")]), *doc_state(kb)
        try:
            delete_document(bases.get(kb or DEFAULT), doc_id)
        except RagError as exc:
            return render.status_html([("error", f"删除失败 Delete failed: {bilingual(exc)}")]), *doc_state(kb)
        return render.status_html([("ok", f"已删除 Deleted: {doc_id}")]), *doc_state(kb)

    return delete


__all__ = ["HEADERS", "as_bases", "ask_handler", "base_choices", "chunks_handler", "delete_handler", "documents_view", "summary", "upload_handler", "upload_lines"]
