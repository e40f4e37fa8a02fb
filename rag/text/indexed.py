"""What the embedder and BM25 see of a chunk: its text, maybe after its article and section titles."""

from __future__ import annotations

from rag.types import Chunk


def indexed_text(chunk: Chunk, headers: str, for_dense: bool) -> str:
    """The text embedded (``for_dense``) or given to BM25 for a chunk: its text, maybe after its titles."""
    if headers == "none" or (headers == "dense" and not for_dense):
        return chunk.text
    titles = [t for t in (chunk.meta.get("article"), chunk.meta.get("section")) if t]
    return "\n".join([*titles, chunk.text]) if titles else chunk.text


__all__ = ["indexed_text"]
