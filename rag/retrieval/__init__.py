"""A question to passages: dense and BM25 search fused, re-ranked by distinctive terms, metadata filters.

May import rag.storage, rag.embedding, rag.text, rag.types, rag.errors.
"""
