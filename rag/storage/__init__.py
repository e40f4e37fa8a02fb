"""The index: one backend interface (``backend``: create, open, apply a change, delete, search) and its
three packages (``faiss``, ``segments``, ``milvus``); what they share: the manifest (``manifest``), a
store-backed state (``state``), what retrieval reads (``store``), the writer's lock, following other
processes' writes (``live``), the viewer's kept texts (``sources``), checksums and ``rag verify``.

Imports rag.indexing, rag.filters, rag.text and below (the layer contract in pyproject.toml).
"""
