"""The documents tab's chunk table: what a document was cut into, so a user can check what was indexed.

``chunk_rows`` turns ``/api/chunks`` rows (``rag.http.viewer.chunk_summary``) into table rows;
``document_chunk_rows`` gives them for one document of a ``RAG``. The table shows plain text only
(a ``gr.Dataframe`` does not render HTML), so nothing from a document can become markup here.
"""

from __future__ import annotations

from typing import Any

from rag.http.viewer import chunk_summary, document_chunks, document_entry
from rag.pipeline import RAG
from rag.uploads import check_doc_id

CHUNK_HEADERS = ["段落 Chunk", "文章 Article", "小节 Section", "页 Page", "开头 First words"]


def chunk_rows(chunks: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per chunk: its number in the document, article, section, page and first words ("" when unknown)."""
    return [[i, c.get("article") or "", c.get("section") or "", c.get("page") if c.get("page") is not None else "",
             c.get("first") or ""] for i, c in enumerate(chunks, 1)]


def document_chunk_rows(rag: RAG, doc_id: str) -> list[list[Any]]:
    """The rows of ``doc_id``'s chunks in source order (``ConfigError`` for an id a client may not send,
    ``DocumentNotFoundError`` for one not in the index)."""
    document_entry(rag, check_doc_id(doc_id))
    return chunk_rows([chunk_summary(c) for c in document_chunks(rag, doc_id)])


__all__ = ["CHUNK_HEADERS", "chunk_rows", "document_chunk_rows"]
