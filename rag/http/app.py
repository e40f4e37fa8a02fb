"""The HTTP API (FastAPI) over one ``RAG``; ``ui.server`` mounts the Gradio chat beside it.

Routes: ``GET /health``, ``GET /api/instance`` (for ``rag ask``: see ``instance_token``), ``POST /api/ask``, ``POST /api/ask/stream`` (server-sent events),
``POST /api/search``, ``GET/POST /api/documents``, ``DELETE /api/documents/{doc_id}``,
``GET/POST /api/kbs`` and ``DELETE /api/kbs/{name}`` (knowledge bases: ``kb`` on the others),
``POST /api/feedback`` (``rag.http.feedback_api``), ``GET /view``, ``/api/file``, ``/api/chunks`` (``rag.http.viewer``),
``POST /api/session`` (the chat's upload cookie), and the OpenAI chat API (``GET /v1/models``,
``POST /v1/chat/completions``: ``rag.http.openai_api``), and ``/mcp`` (MCP's streamable HTTP, the key
required when set: ``rag.http.mcp_server``). Errors are ``{"error": message}`` with the status
their class gives (``http_status``: ``rag.errors``). Every request passes ``rag.http.guard.Guard`` first
(host, origin, key, size).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.exceptions import HTTPException

from rag.bases import KnowledgeBases, model_id
from rag.errors import ConfigError, RagError
from rag.http.bodies import AskRequest, CreateBaseRequest, ErrorBody, SearchRequest
from rag.http.feedback_api import add_feedback_routes
from rag.http.guard import (
    MAX_JSON_BODY,
    SESSION_COOKIE,
    WRITE_PATHS,
    Guard,
    GuardConfig,
    error_response,
    key_matches,
    session_token,
    supplied_key,
    upload_too_large,
)
from rag.http.mcp_server import McpEndpoint
from rag.http.openai_api import add_openai_routes
from rag.http.redact import public_message
from rag.http.viewer import add_viewer_routes
from rag.pipeline import RAG
from rag.uploads import add_uploads, delete_document, documents_dir, max_upload_bytes

# ``rag serve`` writes this process's token into the index folder's discovery file (``ui.commands``), so
# ``rag ask`` there can ask this server, after ``GET /api/instance`` with the token confirmed which index
# it serves and with which settings; without the token the route is a 404, as if absent.
INSTANCE_HEADER = "X-RAG-Instance"
_INSTANCE_TOKEN = secrets.token_urlsafe(24)


def instance_token() -> str:
    """This process's instance token (the same for every app it serves)."""
    return _INSTANCE_TOKEN


KB = Annotated[str | None, Query(max_length=64, description="knowledge base (GET /api/kbs; default: the server's own)")]

# Declared for the OpenAPI schema (the lock icon in /docs); the check itself is key_matches.
BEARER = HTTPBearer(auto_error=False, description="RAG_API_KEY, when the server sets one")
HEADER_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="RAG_API_KEY, when the server sets one")


def create_api(
    rag: RAG, *, api_key: str | None = None, max_upload_mb: float | None = None,
    allowed_hosts: frozenset[str] | None = None, resolve_staged: Any = None, bases: KnowledgeBases | None = None,
) -> FastAPI:
    """The HTTP API over ``rag``, behind ``Guard``.

    ``api_key`` and ``max_upload_mb`` default to the settings (``RAG_API_KEY``, ``RAG_MAX_UPLOAD_MB``);
    ``allowed_hosts`` (None: any) are the Host names answered; ``resolve_staged`` maps the chat's
    staged-upload references to files (see ``ui.staging``). ``bases`` are the knowledge bases served
    (default: ``rag`` as ``default`` and those under ``RAG_KB_ROOT``); requests name one with ``kb``.
    """
    settings = rag.settings
    bases = bases or KnowledgeBases(rag, settings.kb_root, RAG.open)
    key = (api_key if api_key is not None else settings.api_key).strip() or None
    upload_limit = max_upload_bytes(max_upload_mb if max_upload_mb is not None else settings.max_upload_mb)
    error = {"model": ErrorBody}
    mcp = McpEndpoint(bases, key)  # /mcp: the MCP tools (rag.http.mcp_server), its session manager run by the lifespan
    app = FastAPI(
        title="rag-zh", version="0.1.0", lifespan=lambda _app: mcp.lifespan(),
        description="Cited answers over Chinese documents. Errors are {\"error\": message}.",
        responses={400: {**error, "description": "bad input"}, 413: {**error, "description": "body too large"},
                   503: {**error, "description": "index not ready or locked"}},
    )
    app.state.rag = rag
    app.state.bases = bases
    app.state.api_key = key
    app.state.max_upload_bytes = upload_limit
    app.state.guard = GuardConfig(
        api_key=key, upload_limit=upload_limit, allowed_hosts=allowed_hosts,
        allowed_origins=frozenset(o.rstrip("/").lower() for o in settings.comma_list("allowed_origins")),
        resolve_staged=resolve_staged,
    )
    if app.state.guard.allowed_origins:
        # Web chat apps on the origins the operator lists (RAG_ALLOWED_ORIGINS) may read the answers,
        # e.g. an OpenAI client in a browser tab; no cookies cross (allow_credentials stays off).
        app.add_middleware(CORSMiddleware, allow_origins=sorted(app.state.guard.allowed_origins),
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Key"], max_age=600)
    app.add_middleware(Guard, config=app.state.guard)  # added last, so it runs first
    _add_error_handlers(app, upload_limit, bases)
    _add_status_routes(app, rag, key)
    _add_base_routes(app, bases, key)
    _add_answer_routes(app, bases)
    _add_document_routes(app, bases, key, upload_limit)
    add_openai_routes(app, bases, _key_check(key))
    add_viewer_routes(app, bases.get)
    add_feedback_routes(app, bases.get)
    app.add_route("/mcp", mcp, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    return app


def _add_error_handlers(app: FastAPI, upload_limit: int, bases: KnowledgeBases) -> None:
    """Every error as ``{"error": message}``: ours with their class's ``http_status``, FastAPI's validation as 400;
    server paths in a message are shown as names (``rag.http.redact``)."""

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        status = exc.http_status
        headers = {"Retry-After": "5"} if status == 503 else None
        return _error(request, public_message(str(exc), bases.folders()), status, headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return _error(request, "; ".join(parts) or "bad request", 400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, ensure_ascii=False)
        if exc.status_code == 413:
            if WRITE_PATHS.match(request.url.path):
                message = upload_too_large(upload_limit)
            else:
                message = f"request body too large: the limit is {MAX_JSON_BODY // 1024} KB"
        return _error(request, message, exc.status_code, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return _error(request, f"internal error ({type(exc).__name__})", 500)


def _error(request: Request, message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    # public_message again: a validation error quotes the client's keys, which may not be valid Unicode
    return error_response(request.url.path, status, public_message(message), headers)


def _add_status_routes(app: FastAPI, rag: RAG, key: str | None) -> None:
    """``GET /health`` and ``POST /api/session``."""
    settings = rag.settings

    @app.get("/health", tags=["status"])
    def health() -> dict[str, Any]:
        docs = rag.documents()
        return {
            "status": "ok", "documents": len(docs), "chunks": rag.size,
            "embedder": rag.settings.embedder, "generator": rag.settings.generator,
            "retrieval": rag.settings.retrieval, "top_k": rag.settings.top_k,
            "write_protected": bool(key), "generators": [g for g in settings.network_generators() if g != "*"],
        }

    @app.get("/api/instance", include_in_schema=False)
    def instance(request: Request) -> dict[str, Any]:
        """For ``rag ask`` on this machine (the caller read the token from the index folder): the
        process, the index folder and the settings (the API key left out) that shape its answers."""
        supplied = request.headers.get(INSTANCE_HEADER) or ""
        if not hmac.compare_digest(supplied.encode(), _INSTANCE_TOKEN.encode()):
            raise HTTPException(404, "Not Found")
        values = settings.model_dump(exclude={"api_key"})
        return {"pid": os.getpid(), "index_dir": str(Path(rag.index_dir).resolve()), "settings": values}

    @app.post("/api/session", tags=["status"], status_code=204,
              responses={401: {"description": "missing or wrong API key"}})
    def session(request: Request) -> Response:
        """Check the key and set the chat's session cookie (HttpOnly, SameSite=Strict): the browser's
        file box uploads with it, as it cannot send a header. Without a server key: nothing to do."""
        if not key:
            return Response(status_code=204)
        if not key_matches(key, supplied_key(request.headers)):
            raise HTTPException(401, "missing or wrong API key")
        response = Response(status_code=204)
        response.set_cookie(SESSION_COOKIE, session_token(key), httponly=True, samesite="strict", path="/")
        return response


def _add_base_routes(app: FastAPI, bases: KnowledgeBases, key: str | None) -> None:
    """``GET/POST /api/kbs`` and ``DELETE /api/kbs/{name}``: the knowledge bases; the writes need the key."""
    writer = [Depends(_key_check(key))]

    @app.get("/api/kbs", tags=["knowledge bases"])
    def list_bases() -> list[dict[str, Any]]:
        """The knowledge bases: name, OpenAI model id, documents, chunks, embedder; a damaged one with its ``error``."""
        folders = bases.folders()
        return [{**row, "error": public_message(row["error"], folders)} if "error" in row else row
                for row in bases.describe()]

    @app.post("/api/kbs", tags=["knowledge bases"], dependencies=writer, status_code=201,
              responses={401: {"description": "missing or wrong API key"}})
    def create_base(req: CreateBaseRequest) -> dict[str, Any]:
        """A new, empty knowledge base (with the server's embedder and chunking); upload to it with ``?kb=``."""
        made = bases.create(req.name)
        return {"name": req.name, "model": model_id(req.name), "documents": 0, "chunks": made.size}

    @app.delete("/api/kbs/{name}", tags=["knowledge bases"], dependencies=writer,
                responses={401: {"description": "missing or wrong API key"}, 404: {"description": "unknown base"}})
    def delete_base(name: str) -> dict[str, Any]:
        """Remove a knowledge base and its folder (documents, uploads, feedback); not the default."""
        bases.delete(name)
        return {"deleted": name}


def _add_answer_routes(app: FastAPI, bases: KnowledgeBases) -> None:
    """``POST /api/ask``, ``POST /api/ask/stream`` and ``POST /api/search``."""
    settings = bases.default.settings

    @app.post("/api/ask", tags=["answers"])
    def ask(req: AskRequest) -> dict[str, Any]:
        """Answer with citations: the JSON of ``rag ask --json``."""
        rag, named = bases.target(req.kb)
        return rag.ask(
            req.question, top_k=req.top_k, retrieval=req.retrieval,
            generator=settings.check_network_generator(req.generator), history=req.history,
            filters=req.filters, bases=named,
        ).to_dict()

    @app.post(
        "/api/ask/stream", tags=["answers"], response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}},
                         "description": "one `data: <json>` line per event: sources, token…, answer"}},
    )
    def ask_stream(req: AskRequest) -> StreamingResponse:
        """Server-sent events: ``sources``, then ``token`` pieces, then the final ``answer``."""
        rag, named = bases.target(req.kb)
        events = rag.ask_stream(
            req.question, top_k=req.top_k, retrieval=req.retrieval,
            generator=settings.check_network_generator(req.generator), history=req.history,
            filters=req.filters, bases=named,
        )
        first = next(events)  # bad input raises here, before the 200 is sent
        return StreamingResponse(
            _sse_events(first, events), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/api/search", tags=["answers"])
    def search(req: SearchRequest) -> list[dict[str, Any]]:
        """The matching passages, best first."""
        rag, named = bases.target(req.kb)
        passages = rag.search(
            req.question, top_k=req.top_k or rag.settings.top_k, retrieval=req.retrieval, filters=req.filters,
            bases=named, explain=req.explain, lexical_weight=req.lexical_weight, rerank=req.rerank,
        )
        return [p.to_dict(i) for i, p in enumerate(passages, 1)]


def _add_document_routes(app: FastAPI, bases: KnowledgeBases, key: str | None, upload_limit: int) -> None:
    """``GET/POST /api/documents`` and ``DELETE /api/documents/{doc_id}``, each for ``?kb=NAME`` (default:
    the server's own); the writes need the key."""
    writer = [Depends(_key_check(key))]

    @app.get("/api/documents", tags=["documents"])
    def list_documents(kb: KB = None) -> list[dict[str, Any]]:
        """Indexed documents. ``path`` is the file name only and ``uploaded`` says whether it came
        through this API: the server's folder layout is not the clients' business."""
        rag = bases.get(kb)
        uploads = documents_dir(rag).resolve()
        return [_public(d, uploads) for d in rag.documents()]

    @app.post(
        "/api/documents", tags=["documents"], dependencies=writer,
        responses={401: {"description": "missing or wrong API key"}, 413: {"description": "over RAG_MAX_UPLOAD_MB"}},
    )
    def upload_documents(
        files: Annotated[list[UploadFile], File(description="one or more .txt .md .markdown .html .htm .pdf .docx files")],
        kb: KB = None,
    ) -> dict[str, Any]:
        """Store the files under ``<index_dir>/documents/`` and index them: the ``IndexReport``."""
        report = add_uploads(bases.get(kb), [(f.filename or "", f.file) for f in files], max_bytes=upload_limit)
        # (a name taken by a folder-indexed document is stored under its own: see `renamed`)
        if report.skipped and not (report.added or report.updated or report.unchanged):
            reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in report.skipped.items())
            raise ConfigError(f"nothing could be indexed: {reasons}")
        folders = bases.folders()  # `skipped` is keyed by the stored file's path: the client gets its name
        return {**report.to_dict(),
                "skipped": {Path(p).name: public_message(r, folders) for p, r in report.skipped.items()}}

    @app.delete(
        "/api/documents/{doc_id:path}", tags=["documents"], dependencies=writer,
        responses={401: {"description": "missing or wrong API key"}, 404: {"description": "unknown document"}},
    )
    def remove_document(doc_id: str, kb: KB = None) -> dict[str, Any]:
        return {"deleted": delete_document(bases.get(kb), doc_id)}


def _key_check(key: str | None) -> Callable[..., None]:
    """The dependency of a write route: 401 unless the request carries ``key`` (when there is one)."""

    def require_key(
        request: Request, _b: Annotated[Any, Depends(BEARER)] = None, _h: Annotated[Any, Depends(HEADER_KEY)] = None,
    ) -> None:
        if not key_matches(key, supplied_key(request.headers)):
            raise HTTPException(401, "missing or wrong API key")

    return require_key


def _public(doc: dict[str, Any], uploads: Path) -> dict[str, Any]:
    path = Path(doc.get("path", ""))
    return {**doc, "path": path.name, "uploaded": path.parent.resolve() == uploads}


# ---- server-sent events ------------------------------------------------------------------------
def _sse_events(first: Any, rest: Iterator[Any]) -> Iterator[str]:
    """``data: <json>`` for each answer event; a failure mid-stream ends it with an ``error`` event."""
    yield _sse_event(first.to_dict())
    try:
        for event in rest:
            yield _sse_event(event.to_dict())
    except Exception as exc:
        message = public_message(str(exc)) if isinstance(exc, RagError) else f"internal error ({type(exc).__name__})"
        yield _sse_event({"type": "error", "error": message})


def _sse_event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


__all__ = ["INSTANCE_HEADER", "create_api", "instance_token"]
