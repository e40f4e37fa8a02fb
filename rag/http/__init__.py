"""The HTTP API over one RAG: routes and server-sent events (app), request bodies (bodies), and the guard
in front of every request (host, origin, key, sizes).

May import rag.pipeline, rag.uploads and below; never ui (ui.server composes the API with the chat).
"""
