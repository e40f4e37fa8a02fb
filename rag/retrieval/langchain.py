"""The index as a LangChain retriever: ``RAG.as_retriever()`` (or ``KnowledgeBases.as_retriever(kb=…)``)
in any LCEL chain, e.g. ``{"context": retriever | format_docs, "question": RunnablePassthrough()} | prompt | llm``.

Each ``Document`` is a retrieved passage: ``page_content`` its text, ``metadata`` where it is (doc_id,
chunk_id, start and end source offsets, article, section, page or sheet/row where the document has them),
its fused ``score`` and ``rank``, and the ``kb`` it came from. The search is the index's own hybrid
retrieval, so a chain sees the passages ``rag ask`` would quote from. LangChain's own ``BaseRetriever``
is reused (callbacks, ``invoke``/``batch``/``ainvoke``, tracing) rather than an adapter written here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.types import Passage

Search = Callable[..., list[Passage]]  # RAG.search or KnowledgeBases.search, with its kb bound


class RagRetriever(BaseRetriever):
    """Passages of a ``rag`` index as LangChain ``Document``s (see the module's docstring)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    search: Search
    top_k: int = 5
    filters: dict[str, str] | None = None
    retrieval: str | None = None  # hybrid (default) | dense | lexical

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        passages = self.search(query, top_k=self.top_k, filters=self.filters, retrieval=self.retrieval)
        return [to_document(p) for p in passages]


def to_document(passage: Passage) -> Document:
    """A passage as a LangChain ``Document``: its text, and where it is in its source as metadata."""
    c = passage.chunk
    meta: dict[str, Any] = {"doc_id": c.doc_id, "chunk_id": c.chunk_id, "start": c.start, "end": c.end,
                            **(c.location or {}), "score": float(passage.score), "rank": passage.rank,
                            "kb": passage.kb}
    return Document(page_content=c.text, metadata=meta, id=c.chunk_id)


def retriever(search: Search, top_k: int = 5, filters: dict[str, str] | None = None,
              retrieval: str | None = None, **bound: Any) -> RagRetriever:
    """A ``RagRetriever`` over ``search``; ``bound`` arguments (e.g. ``kb=``) go with every search."""
    if bound:
        def search_bound(question: str, **options: Any) -> list[Passage]:
            return search(question, **bound, **options)
        return RagRetriever(search=search_bound, top_k=top_k, filters=filters, retrieval=retrieval)
    return RagRetriever(search=search, top_k=top_k, filters=filters, retrieval=retrieval)


__all__ = ["RagRetriever", "retriever", "to_document"]
