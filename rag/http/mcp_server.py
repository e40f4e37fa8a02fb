"""The Model Context Protocol server: the knowledge bases as tools for agents (Claude Desktop, IDEs, any MCP client).

Tools: ``search`` (passages), ``ask`` (a cited answer), ``list_knowledge_bases`` and ``get_passage`` (one
chunk and where it is). ``rag mcp`` serves them over stdio (``serve_stdio``); ``rag serve`` also at
``/mcp`` (streamable HTTP: ``McpEndpoint``, mounted by ``rag.http.app``), behind the server's keys
(``rag.access``: a key whenever the server has one; each tool call sees only the knowledge bases its
request's key may read, which ``list_knowledge_bases`` lists) and its host/origin guard. The arguments are checked as the HTTP API checks them (question length,
``top_k`` 1-50, filters, base names, document ids); a refusal is an MCP tool error carrying the
catalogue's English message, server paths shown as names, never a traceback.
The ``mcp`` SDK is imported when a server is built, not with ``rag.http``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from rag.access import Access, KeyRequiredError, KeysUnavailableError
from rag.bases import DEFAULT, KnowledgeBases
from rag.errors import ConfigError, DocumentNotFoundError, RagError
from rag.filters import validate as validate_filters
from rag.http.guard import error_response
from rag.http.redact import public_message
from rag.http.viewer import view_url
from rag.uploads import check_doc_id

MAX_TOP_K = 50
SERVER_NAME = "rag-zh"
INSTRUCTIONS = ("Search and answer questions over the indexed (mostly Chinese) documents. `ask` gives a cited answer; "
                "`search` the best passages; `get_passage` one passage in full; `list_knowledge_bases` the bases "
                "(pass one as kb=).")


class Tools:
    """What the MCP tools do, without the SDK: plain dicts out, ``RagError`` for a bad argument."""

    def __init__(self, bases: Any, public_url: str = "") -> None:
        self.bases = bases  # a KnowledgeBases, or a rag.access.BasesView: what one key may see
        self.public_url = public_url.rstrip("/")

    def seen_by(self, access: Access | None, headers: Any) -> Tools:
        """These tools over the bases the request's key may read (``headers``: the HTTP request's; None over
        stdio, where the caller runs the server and sees every base)."""
        if access is None or headers is None:
            return self
        view = access.view(self.bases, access.caller(headers))
        view.require_key()
        return Tools(view, self.public_url)

    def _rag(self, kb: Any) -> Any:
        if kb is not None and not isinstance(kb, str):
            raise ConfigError(f"kb must be a knowledge base name. Currently, it is {type(kb).__name__}")
        return self.bases.get(kb)

    def search(self, question: str, kb: str | None = None, top_k: int = 5,
               filters: dict[str, str] | None = None) -> dict[str, Any]:
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
            raise ConfigError("top_k.out_of_range", limit=MAX_TOP_K, value=top_k)
        validate_filters(filters)
        # the question: the pipeline's own checks (a string, not empty, at most max_question_chars), before any work
        passages = self._rag(kb).search(question, top_k=top_k, filters=filters)
        name = kb or DEFAULT
        return {"passages": [{**p.to_dict(i), "article": p.chunk.meta.get("article"), "kb": name}
                             for i, p in enumerate(passages, 1)]}

    def ask(self, question: str, kb: str | None = None) -> dict[str, Any]:
        answer = self._rag(kb).ask(question)
        citations = []
        for c in answer.citations:
            link = view_url(c.doc_id, kb if kb and kb != DEFAULT else None, start=c.start, end=c.end) + "#cited"
            citations.append({**c.to_dict(), "kb": kb or DEFAULT, "view_url": self.public_url + link})
        return {"answer": answer.answer, "abstained": answer.abstained, "citations": citations,
                "confidence": None if answer.confidence is None else round(answer.confidence, 4),
                "answer_span": dict(answer.answer_span) if answer.answer_span else None}

    def list_knowledge_bases(self) -> dict[str, Any]:
        rows = []
        for row in self.bases.describe():
            if "error" in row:
                rows.append({"name": row["name"], "error": public_message(row["error"], self.bases.folders())})
            else:
                rows.append({"name": row["name"], "documents": row["documents"], "chunks": row["chunks"],
                             "default": row["default"]})
        return {"knowledge_bases": rows}

    def get_passage(self, doc_id: str, chunk_id: str, kb: str | None = None) -> dict[str, Any]:
        check_doc_id(doc_id)
        check_doc_id(chunk_id)  # the same bounds: text, not too long, no control characters
        rag = self._rag(kb)
        chunks = rag.chunks_of(doc_id)
        if not chunks:
            raise DocumentNotFoundError("document.unknown", doc_id=doc_id[:200])
        for chunk in chunks:
            if chunk.chunk_id == chunk_id:
                return {"doc_id": doc_id, "chunk_id": chunk_id, "kb": kb or DEFAULT, "text": chunk.text,
                        "start": chunk.start, "end": chunk.end, "location": chunk.location,
                        "view_url": self.public_url + view_url(doc_id, kb if kb and kb != DEFAULT else None,
                                                               start=chunk.start, end=chunk.end) + "#cited"}
        raise DocumentNotFoundError("document.no_chunk", doc_id=doc_id[:200], chunk=chunk_id[:200])


def build_server(tools: Tools, access: Access | None = None) -> Any:
    """An ``mcp`` ``MCPServer`` with the four tools; a ``RagError`` becomes a tool error with its public message,
    anything else the SDK's bare "Error executing tool" (the details stay in the server's log). With ``access``
    each call answers for the key of the HTTP request that carried it (``Tools.seen_by``)."""
    from mcp.server.mcpserver import Context, MCPServer  # noqa: PLC0415 - the MCP SDK (~1 s) loads only when an MCP server is built
    from mcp.server.mcpserver.exceptions import ToolError  # noqa: PLC0415 - with MCPServer, above

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, log_level="WARNING")
    root.handlers[:], root.level = handlers, level  # MCPServer calls logging.basicConfig: the process's logging stays its own
    folders = tools.bases.folders

    def guarded(ctx: Any, name: str, **kwargs: Any) -> dict[str, Any]:
        try:
            seen = tools.seen_by(access, _headers(ctx))
            return getattr(seen, name)(**kwargs)
        except RagError as exc:
            raise ToolError(public_message(str(exc), folders())) from None

    def tool(fn: Callable[..., dict[str, Any]]) -> Any:
        fn.__annotations__["ctx"] = Context  # the SDK passes the call's context to the parameter of this type
        return server.tool()(fn)

    @tool
    def search(ctx: Any, question: str, kb: str | None = None, top_k: int = 5,
               filters: dict[str, str] | None = None) -> dict[str, Any]:
        """The passages that best match the question, best first: text, document, article, source offsets
        (start, end), score, knowledge base. filters: doc (glob), article, date_from, date_to."""
        return guarded(ctx, "search", question=question, kb=kb, top_k=top_k, filters=filters)

    @tool
    def ask(ctx: Any, question: str, kb: str | None = None) -> dict[str, Any]:
        """A cited answer: answer, citations (quote, document, offsets, view_url), abstained, confidence,
        answer_span (the exact answer words)."""
        return guarded(ctx, "ask", question=question, kb=kb)

    @tool
    def list_knowledge_bases(ctx: Any) -> dict[str, Any]:
        """The knowledge bases: name, documents, chunks (pass a name as kb= to the other tools)."""
        return guarded(ctx, "list_knowledge_bases")

    @tool
    def get_passage(ctx: Any, doc_id: str, chunk_id: str, kb: str | None = None) -> dict[str, Any]:
        """One passage (chunk) in full, with its location and source offsets: doc_id and chunk_id as
        search returns them."""
        return guarded(ctx, "get_passage", doc_id=doc_id, chunk_id=chunk_id, kb=kb)

    return server


def _headers(ctx: Any) -> Any:
    """The HTTP request's headers of a tool call; None over stdio (no request)."""
    try:
        return ctx.headers
    except (AttributeError, ValueError):  # a context outside a request (the server's own list_tools, a test)
        return None


def serve_stdio(bases: KnowledgeBases) -> None:
    """``rag mcp``: the tools over stdio until the client closes it (stdout carries the protocol only)."""
    build_server(Tools(bases, bases.default.settings.public_url)).run()


class McpEndpoint:
    """``/mcp``: MCP's streamable HTTP as an ASGI app, behind a key (``Authorization: Bearer`` or ``X-API-Key``)
    whenever the server has one (``RAG_API_KEY`` or a keys file): every request is checked, so a key revoked
    mid-session is refused at its next message. ``rag.http.guard.Guard`` in front of the whole app checks the
    Host and the Origin; the SDK's own DNS-rebinding check is off, as it knows only loopback names.

    ``lifespan`` runs the SDK's session manager (a fresh one each time the app starts: one runs once);
    outside it the endpoint says 503."""

    def __init__(self, bases: KnowledgeBases, access: Access) -> None:
        self.bases = bases
        self.access = access
        self._handler: Any = None

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        from mcp.server.transport_security import TransportSecuritySettings  # noqa: PLC0415 - the SDK at start-up, not at import

        server = build_server(Tools(self.bases, self.bases.default.settings.public_url), self.access)
        server.streamable_http_app(transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        manager = server.session_manager
        async with manager.run():
            self._handler = manager.asgi_app
            try:
                yield
            finally:
                self._handler = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            self.access.view(self.bases, self.access.caller(headers)).require_key()
        except KeyRequiredError as exc:
            return await error_response(path, 401, str(exc), {"WWW-Authenticate": "Bearer"})(scope, receive, send)
        except KeysUnavailableError as exc:
            return await error_response(path, 503, str(exc), {"Retry-After": "60"})(scope, receive, send)
        if self._handler is None:
            return await error_response(path, 503, "the MCP endpoint is not running", {"Retry-After": "5"})(
                scope, receive, send)
        await self._handler(scope, receive, send)


__all__ = ["MAX_TOP_K", "McpEndpoint", "Tools", "build_server", "serve_stdio"]
