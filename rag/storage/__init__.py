"""The index: the snapshot format on disk (FAISS vectors, chunk store, BM25, manifest, lock), building a new snapshot from files, following other processes' writes, verification.

May import rag.ingest, rag.embedding, rag.text, rag.config, rag.types, rag.errors.
"""
