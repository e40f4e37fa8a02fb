"""The documents tab's chunk browser: what a document was cut into, and any chunk's full text.

``chunk_rows`` turns ``/api/chunks`` rows (``rag.http.viewer.chunk_summary``) into table rows;
``document_chunk_rows`` gives them for one document of a ``RAG``. The table shows plain text only
(a ``gr.Dataframe`` does not render HTML), so nothing from a document can become markup there; the
full text of the chunk a row picks is ``render.chunk_text_html`` (escaped). The browser has its own
document picker, apart from the delete selector: looking at a document never readies it for deletion.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import Any

import gradio as gr

from rag.bases import DEFAULT
from rag.errors import RagError
from rag.http.plain import escape_markdown
from rag.http.viewer import chunk_summary, document_chunks, document_entry
from rag.pipeline import RAG
from rag.types import Chunk
from rag.uploads import check_doc_id
from ui import render
from ui.messages import localized
from ui.texts import DEFAULT_LANG, request_lang, t

HEADER_KEYS = ("chunks.col_n", "chunks.col_article", "chunks.col_section", "chunks.col_page", "chunks.col_first")


def chunk_headers(lang: Any = DEFAULT_LANG) -> list[str]:
    return [t(k, lang) for k in HEADER_KEYS]


CHUNK_HEADERS = chunk_headers()


def chunk_rows(chunks: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per chunk: its number in the document, article, section, page and first words ("" when unknown)."""
    return [[i, c.get("article") or "", c.get("section") or "", c.get("page") if c.get("page") is not None else "",
             c.get("first") or ""] for i, c in enumerate(chunks, 1)]


def checked_chunks(rag: RAG, doc_id: Any) -> list[Chunk]:
    """``doc_id``'s chunks in source order (``ConfigError`` for an id a client may not send,
    ``DocumentNotFoundError`` for one not in the index)."""
    document_entry(rag, check_doc_id(doc_id))
    return document_chunks(rag, doc_id)


def document_chunk_rows(rag: RAG, doc_id: str) -> list[list[Any]]:
    """The rows of ``doc_id``'s chunks in source order (errors as ``checked_chunks``)."""
    return chunk_rows([chunk_summary(c) for c in checked_chunks(rag, doc_id)])


Resolve = Callable[[Any, Any], RAG]  # (the event's request, a base's name) → its RAG, if the caller may read it (Gate.read)


def chunks_handler(resolve: Resolve) -> Callable[..., tuple[Any, str, str]]:
    """The browser's document picked: its chunk table, the table's title, and the full-text box emptied."""

    def doc_chunks(doc_id: Any, kb: Any = DEFAULT, request: gr.Request = None, lang: Any = None) -> tuple[Any, str, str]:
        lang = request_lang(request, lang)
        empty = gr.Dataframe(value=[], headers=chunk_headers(lang))
        if not doc_id:
            return empty, t("chunks.hint", lang), render.chunk_hint_html(t("chunks.text_hint", lang))
        try:
            rows = document_chunk_rows(resolve(request, kb or DEFAULT), doc_id)
        except RagError as exc:
            return empty, render.status_html([("error", t("chunks.cannot", lang, error=localized(exc, lang)))]), ""
        # the title is Markdown: a file named "[点此](https:evil).md" must show as its name, not a link
        title = t("chunks.title", lang, name=escape_markdown(doc_id, one_line=True), n=len(rows))
        return gr.Dataframe(value=rows, headers=chunk_headers(lang)), title, \
            render.chunk_hint_html(t("chunks.text_hint", lang))

    return doc_chunks


def chunk_text_handler(resolve: Resolve) -> Callable[..., str]:
    """A row of the chunk table picked: that chunk's full text (plain, escaped, in a scrolling box)."""

    def chunk_text(doc_id: Any, kb: Any = DEFAULT, request: gr.Request = None, lang: Any = None,
                   evt: gr.SelectData = None) -> str:  # not Optional[…]: Gradio passes it by this type
        lang = request_lang(request, lang)
        if not doc_id or evt is None:
            return render.chunk_hint_html(t("chunks.text_hint", lang))
        try:
            chunks = checked_chunks(resolve(request, kb or DEFAULT), doc_id)
        except RagError as exc:
            return render.status_html([("error", t("chunks.cannot", lang, error=localized(exc, lang)))])
        n = picked_row(evt)
        if n is None or not 1 <= n <= len(chunks):  # a row the table no longer has, or one a client made up
            return render.status_html([("warn", t("chunks.gone", lang))])
        c = chunks[n - 1]
        head = t("chunks.text_head", lang, n=n, total=len(chunks), start=c.start, end=c.end, chars=len(c.text))
        return render.chunk_text_html(head, c.text)

    return chunk_text


def picked_row(evt: Any) -> int | None:
    """The chunk number (1-based) of the row a select event names: the row's first cell, else its index."""
    row = getattr(evt, "row_value", None)
    if isinstance(row, list) and row and isinstance(row[0], Integral) and not isinstance(row[0], bool):
        return int(row[0])
    index = getattr(evt, "index", None)
    first = index[0] if isinstance(index, (list, tuple)) and index else None
    if isinstance(first, Integral) and not isinstance(first, bool):
        return int(first) + 1
    return None


__all__ = ["CHUNK_HEADERS", "checked_chunks", "chunk_headers", "chunk_rows", "chunk_text_handler", "chunks_handler",
           "document_chunk_rows", "picked_row"]
