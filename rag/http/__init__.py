"""The HTTP API over one RAG: routes and request bodies (app), and the guard in front of every request (host, origin, key, sizes).

May import rag.pipeline and below; never ui.
"""
