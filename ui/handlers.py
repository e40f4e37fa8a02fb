"""What the chat's events do: a thin adapter over ``rag.RAG`` and ``rag.uploads`` (no retrieval logic here).

Each ``*_handler`` returns the function one Gradio event runs; ``ui.app`` wires them to the page.
Every function keeps Gradio's name for its event (``respond``, ``upload``, ``delete``, ``doc_state``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from rag.errors import RagError
from rag.http.guard import key_matches
from rag.pipeline import RAG
from rag.uploads import add_uploads, delete_document
from ui import render
from ui.staging import Staging

HEADERS = ["文档 Document", "大小 Size", "段落 Chunks", "索引时间 Indexed at"]


def summary(rag: RAG) -> str:
    docs = rag.documents()
    return f"索引中共有 {len(docs)} 个文档、{rag.size} 个段落 · {len(docs)} documents, {rag.size} passages indexed"


def documents_view(rag: RAG) -> Callable[[], tuple[Any, Any, str]]:
    """The documents table, the delete choices and the summary, as they are now."""

    def doc_state() -> tuple[Any, Any, str]:
        docs = rag.documents()
        rows = render.document_rows(docs)
        ids = [d["doc_id"] for d in docs]
        return gr.Dataframe(value=rows, headers=HEADERS), gr.Dropdown(choices=ids, value=None), summary(rag)

    return doc_state


def ask_handler(rag: RAG) -> Callable[..., Iterator[tuple[Any, Any, Any]]]:
    """The chat's answer to a question, streamed: searching, the passages found, the tokens, the answer."""
    settings = rag.settings

    def respond(message: str, chat: list[dict[str, Any]], turns: list[dict[str, str]], top_k: float,
                generator: str, hybrid: bool):
        message = (message or "").strip()
        if not message:
            yield gr.skip(), gr.skip(), gr.skip()
            return
        chat = list(chat or []) + [
            {"role": "user", "content": render.user_message(message)},
            {"role": "assistant", "content": render.pending("检索中… Searching the documents…")},
        ]
        yield "", chat, turns
        text = ""
        try:
            events = rag.ask_stream(
                message, top_k=int(top_k), retrieval="hybrid" if hybrid else "dense",
                generator=settings.check_network_generator(generator), history=turns or None,
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
                yield gr.skip(), chat, turns
        except RagError as exc:
            chat[-1] = {"role": "assistant", "content": render.error_message(str(exc))}
            yield gr.skip(), chat, turns

    return respond


def upload_handler(rag: RAG, api_key: str | None, staging: Staging | None,
              doc_state: Callable[[], tuple[Any, Any, str]]) -> Callable[..., tuple[Any, ...]]:
    """The "Add to index" button: the staged files the box names, stored and indexed (``rag.uploads``)."""

    def upload(files: list[str] | None, key: str, progress: gr.Progress = gr.Progress(track_tqdm=True)):  # noqa: B008
        if not key_matches(api_key, key):
            return render.status_html([("error", "API 密钥错误 Wrong or missing API key")]), *doc_state(), gr.skip()
        if not files:
            return render.status_html([("warn", "请先选择文件 Choose files first")]), *doc_state(), gr.skip()
        staged = [staging.resolve(str(f)) if staging is not None else None for f in files]
        if any(p is None for p in staged):  # a path the client made up: a server file, not an upload
            return render.status_html([("error", "上传失败 Upload failed: not a file uploaded to this server")]), \
                *doc_state(), None
        progress(0.05, desc="保存文件 Saving files…")
        handles = [(Path(p).name, open(p, "rb")) for p in staged]  # noqa: SIM115 - closed below
        try:
            progress(0.15, desc="切分与嵌入 Chunking and embedding…")
            report = add_uploads(rag, handles)
        except RagError as exc:
            return render.status_html([("error", f"上传失败 Upload failed: {exc}")]), *doc_state(), gr.skip()
        finally:
            for _, fh in handles:
                fh.close()
            for p in staged:  # stored under documents/ by now, or refused: the staged copy goes
                staging.release(p)
        progress(1.0, desc="完成 Done")
        return render.status_html(upload_lines(report)), *doc_state(), None

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
        lines.append(("warn", f"已跳过 Skipped {Path(path).name}: {reason}"))
    return lines


def delete_handler(rag: RAG, api_key: str | None,
             doc_state: Callable[[], tuple[Any, Any, str]]) -> Callable[..., tuple[Any, ...]]:
    """The "Delete document" button: the chosen document and its stored upload (``rag.uploads``)."""

    def delete(doc_id: str | None, key: str):
        if not key_matches(api_key, key):
            return render.status_html([("error", "API 密钥错误 Wrong or missing API key")]), *doc_state()
        if not doc_id:
            return render.status_html([("warn", "请先选择文档 Choose a document first")]), *doc_state()
        try:
            delete_document(rag, doc_id)
        except RagError as exc:
            return render.status_html([("error", f"删除失败 Delete failed: {exc}")]), *doc_state()
        return render.status_html([("ok", f"已删除 Deleted: {doc_id}")]), *doc_state()

    return delete


__all__ = ["HEADERS", "ask_handler", "delete_handler", "documents_view", "summary", "upload_handler", "upload_lines"]
