"""The HTTP API (FastAPI) over one ``RAG``; ``ui.server`` mounts the Gradio chat beside it.

Routes: ``GET /health``, ``GET /api/instance`` (for ``rag ask``: see ``instance_token``), ``POST /api/ask``, ``POST /api/ask/stream`` (server-sent events),
``POST /api/search``, ``GET/POST /api/documents``, ``DELETE /api/documents/{doc_id}``,
``GET/POST /api/kbs``, ``DELETE /api/kbs/{name}`` and ``POST /api/kbs/{name}/rename`` (knowledge bases:
``kb`` on the others), ``POST /api/feedback`` (``rag.http.feedback_api``), ``GET /view``, ``/api/file``,
``/api/chunks``, ``/api/page`` (``rag.http.viewer``), ``POST/DELETE /api/session`` (the chat's session
cookie), the OpenAI chat API (``GET /v1/models``, ``POST /v1/chat/completions``: ``rag.http.openai_api``),
and ``/mcp`` (MCP's streamable HTTP: ``rag.http.mcp_server``). Who may do what is ``rag.access``'s: every
route takes the request's grant (``rag.http.auth``) and reads or writes only the bases it may; a base it
may not read is absent to it. Errors are ``{"error": message}`` with the status their class gives
(``http_status``: ``rag.errors``). Every request passes ``rag.http.guard.Guard`` first (host, origin, the
upload routes' key, size).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from rag.access import SESSION_COOKIE, SESSION_SECONDS, Access, KeyRequiredError, cookie, supplied_key
from rag.bases import DEFAULT, KnowledgeBases, check_name, model_id
from rag.errors import ConfigError, KnowledgeBaseNotFoundError, RagError
from rag.http.auth import BEARER, HEADER_KEY, Bases
from rag.http.bodies import AskRequest, CreateBaseRequest, ErrorBody, SearchRequest
from rag.http.feedback_api import add_feedback_routes
from rag.http.guard import MAX_JSON_BODY, WRITE_PATHS, Guard, GuardConfig, error_response, upload_too_large
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
UNAUTHORIZED = {401: {"description": "no key where one is needed, or a wrong, revoked or expired key"}}
FORBIDDEN = {403: {"description": "the key may read this knowledge base but not change it"}}


def create_api(
    rag: RAG, *, api_key: str | None = None, max_upload_mb: float | None = None,
    allowed_hosts: frozenset[str] | None = None, resolve_staged: Any = None, bases: KnowledgeBases | None = None,
) -> FastAPI:
    """The HTTP API over ``rag``, behind ``Guard``.

    ``api_key`` and ``max_upload_mb`` default to the settings (``RAG_API_KEY``, ``RAG_MAX_UPLOAD_MB``); the
    keys file is ``RAG_KEYS_FILE`` (``rag.access``: ``app.state.access`` decides who may do what);
    ``allowed_hosts`` (None: any) are the Host names answered; ``resolve_staged`` maps the chat's
    staged-upload references to files (see ``ui.staging``). ``bases`` are the knowledge bases served
    (default: ``rag`` as ``default`` and those under ``RAG_KB_ROOT``); requests name one with ``kb``.
    """
    settings = rag.settings
    bases = bases or KnowledgeBases(rag, settings.kb_root, RAG.open)
    access = Access.from_settings(settings, api_key)
    upload_limit = max_upload_bytes(max_upload_mb if max_upload_mb is not None else settings.max_upload_mb)
    error = {"model": ErrorBody}
    mcp = McpEndpoint(bases, access)  # /mcp: the MCP tools (rag.http.mcp_server), its session manager run by the lifespan
    app = FastAPI(
        title="rag-zh", version="0.1.0", lifespan=lambda _app: mcp.lifespan(),
        description="Cited answers over Chinese documents. Errors are {\"error\": message}.",
        responses={400: {**error, "description": "bad input"}, 413: {**error, "description": "body too large"},
                   503: {**error, "description": "index not ready or locked"}},
    )
    app.state.rag = rag
    app.state.bases = bases
    app.state.access = access
    app.state.api_key = access.api_key
    app.state.max_upload_bytes = upload_limit
    app.state.guard = GuardConfig(
        access=access, bases=bases, upload_limit=upload_limit, allowed_hosts=allowed_hosts,
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
    _add_status_routes(app, rag, access)
    _add_base_routes(app, bases, access)
    _add_answer_routes(app)
    _add_document_routes(app, upload_limit)
    add_openai_routes(app, settings)
    add_viewer_routes(app)
    add_feedback_routes(app)
    app.add_route("/mcp", mcp, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    return app


def _add_error_handlers(app: FastAPI, upload_limit: int, bases: KnowledgeBases) -> None:
    """Every error as ``{"error": message}``: ours with their class's ``http_status``, FastAPI's validation as 400;
    server paths in a message are shown as names (``rag.http.redact``)."""

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        status = exc.http_status
        headers = {"Retry-After": "5"} if status == 503 else {"WWW-Authenticate": "Bearer"} if status == 401 else None
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


def _add_status_routes(app: FastAPI, rag: RAG, access: Access) -> None:
    """``GET /health`` and ``POST/DELETE /api/session``."""
    settings = rag.settings

    @app.get("/health", tags=["status"])
    def health(request: Request) -> dict[str, Any]:
        """``status`` for anyone (a probe needs no key); the counts and settings for a caller who may read the
        default knowledge base (with a keys file: one with a key that may)."""
        try:
            grant = access.grant_of(request.headers)
        except ConfigError:  # a damaged keys file: the server is up, and says no more
            grant = None
        if grant is None or not grant.may_read(DEFAULT):
            return {"status": "ok", "key_required": access.keyed}
        docs = rag.documents()
        return {
            "status": "ok", "documents": len(docs), "chunks": rag.size,
            "embedder": rag.settings.embedder, "generator": rag.settings.generator,
            "retrieval": rag.settings.retrieval, "top_k": rag.settings.top_k,
            "write_protected": access.keyed, "generators": [g for g in settings.network_generators() if g != "*"],
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

    @app.post("/api/session", tags=["status"], status_code=204, responses=UNAUTHORIZED)
    def session(request: Request, _b: Annotated[Any, Depends(BEARER)] = None,
                _h: Annotated[Any, Depends(HEADER_KEY)] = None) -> Response:
        """Check the key (the operator's or one of the keys file) and set the chat's session cookie
        ``rag_session`` (HttpOnly, SameSite=Strict): the browser's file box and the chat's events use it,
        as a browser cannot send a header. It ends with the key (revoked) or after 12 hours. Without a
        server key: nothing to do."""
        if not access.keyed:
            return Response(status_code=204)
        supplied = supplied_key(request.headers)
        if not supplied:
            raise KeyRequiredError("access.key_required")
        grant = access.key_caller(supplied)
        response = Response(status_code=204)
        response.set_cookie(SESSION_COOKIE, access.open_session(grant), httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https", max_age=SESSION_SECONDS)
        return response

    @app.delete("/api/session", tags=["status"], status_code=204)
    def end_session(request: Request) -> Response:
        """End the chat's session (the cookie is cleared; its token is refused from now on)."""
        token = cookie(request.headers, SESSION_COOKIE)
        if token:
            access.close_session(token)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict", path="/")
        return response


def _add_base_routes(app: FastAPI, bases: KnowledgeBases, access: Access) -> None:
    """``GET/POST /api/kbs``, ``DELETE /api/kbs/{name}`` and ``POST /api/kbs/{name}/rename``: the knowledge
    bases a caller may read; making, renaming and deleting one needs a key that may manage bases."""

    @app.get("/api/kbs", tags=["knowledge bases"], responses=UNAUTHORIZED)
    def list_bases(kbs: Bases) -> list[dict[str, Any]]:
        """The knowledge bases the caller may read: name, OpenAI model id, documents, chunks, embedder; a
        damaged one with its ``error``."""
        if not kbs.grant.read and not kbs.grant.write:
            kbs.require_key()
        folders = kbs.folders()
        return [{**row, "error": public_message(row["error"], folders)} if "error" in row else row
                for row in kbs.describe()]

    @app.post("/api/kbs", tags=["knowledge bases"], status_code=201, responses={**UNAUTHORIZED, **FORBIDDEN})
    def create_base(req: CreateBaseRequest, kbs: Bases) -> dict[str, Any]:
        """A new, empty knowledge base (with the server's embedder and chunking); upload to it with ``?kb=``.
        A named key that makes one may read and write it."""
        kbs.require_manage()
        made = bases.create(req.name)
        access.made_base(kbs.grant, req.name)
        return {"name": req.name, "model": model_id(req.name), "documents": 0, "chunks": made.size}

    @app.delete("/api/kbs/{name}", tags=["knowledge bases"],
                responses={**UNAUTHORIZED, **FORBIDDEN, 404: {"description": "unknown base"}})
    def delete_base(name: str, kbs: Bases) -> dict[str, Any]:
        """Remove a knowledge base and its folder (documents, uploads, feedback); not the default. The key
        must manage bases and write this one; the keys file's scopes forget it."""
        kbs.require_manage()
        kbs.writable(name)
        access.check_keys()  # the scopes must be able to forget it
        try:
            bases.delete(name)
        except KnowledgeBaseNotFoundError:  # its message lists every base
            raise kbs.absent(name) from None
        access.forget_base(name)
        return {"deleted": name}

    @app.post("/api/kbs/{name}/rename", tags=["knowledge bases"],
              responses={**UNAUTHORIZED, **FORBIDDEN, 404: {"description": "unknown base"}})
    def rename_base(name: str, req: CreateBaseRequest, kbs: Bases) -> dict[str, Any]:
        """Rename a knowledge base (``{"name": NEW}``); not the default, not onto a base that exists. Its
        documents, uploads and feedback go with it, and the keys file's scopes follow it."""
        kbs.require_manage()
        kbs.writable(name)
        check_name(req.name)
        access.check_keys()  # the scopes must be able to follow it
        try:
            bases.rename(name, req.name)
        except KnowledgeBaseNotFoundError:  # its message lists every base
            raise kbs.absent(name) from None
        finally:
            if req.name in bases.names() and name not in bases.names():  # moved, even if opening it failed
                access.rename_base(name, req.name)
        return {"renamed": name, "name": req.name, "model": model_id(req.name)}


def _add_answer_routes(app: FastAPI) -> None:
    """``POST /api/ask``, ``POST /api/ask/stream`` and ``POST /api/search``: every base asked must be readable."""

    @app.post("/api/ask", tags=["answers"], responses=UNAUTHORIZED)
    def ask(req: AskRequest, kbs: Bases) -> dict[str, Any]:
        """Answer with citations: the JSON of ``rag ask --json``."""
        rag, named = kbs.target(req.kb)
        return rag.ask(
            req.question, top_k=req.top_k, retrieval=req.retrieval,
            generator=kbs.default.settings.check_network_generator(req.generator), history=req.history,
            filters=req.filters, bases=named,
        ).to_dict()

    @app.post(
        "/api/ask/stream", tags=["answers"], response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}},
                         "description": "one `data: <json>` line per event: sources, token…, answer"}, **UNAUTHORIZED},
    )
    def ask_stream(req: AskRequest, kbs: Bases) -> StreamingResponse:
        """Server-sent events: ``sources``, then ``token`` pieces, then the final ``answer``."""
        rag, named = kbs.target(req.kb)
        events = rag.ask_stream(
            req.question, top_k=req.top_k, retrieval=req.retrieval,
            generator=kbs.default.settings.check_network_generator(req.generator), history=req.history,
            filters=req.filters, bases=named,
        )
        first = next(events)  # bad input raises here, before the 200 is sent
        return StreamingResponse(
            _sse_events(first, events), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/api/search", tags=["answers"], responses=UNAUTHORIZED)
    def search(req: SearchRequest, kbs: Bases) -> list[dict[str, Any]]:
        """The matching passages, best first."""
        rag, named = kbs.target(req.kb)
        passages = rag.search(
            req.question, top_k=req.top_k or rag.settings.top_k, retrieval=req.retrieval, filters=req.filters,
            bases=named, explain=req.explain, lexical_weight=req.lexical_weight, rerank=req.rerank,
        )
        return [p.to_dict(i) for i, p in enumerate(passages, 1)]


def _add_document_routes(app: FastAPI, upload_limit: int) -> None:
    """``GET/POST /api/documents`` and ``DELETE /api/documents/{doc_id}``, each for ``?kb=NAME`` (default:
    the server's own); listing needs the base readable, the writes writable."""

    @app.get("/api/documents", tags=["documents"], responses=UNAUTHORIZED)
    def list_documents(kbs: Bases, kb: KB = None) -> list[dict[str, Any]]:
        """Indexed documents. ``path`` is the file name only and ``uploaded`` says whether it came
        through this API: the server's folder layout is not the clients' business."""
        rag = kbs.get(kb)
        uploads = documents_dir(rag).resolve()
        return [_public(d, uploads) for d in rag.documents()]

    @app.post(
        "/api/documents", tags=["documents"],
        responses={**UNAUTHORIZED, **FORBIDDEN, 413: {"description": "over RAG_MAX_UPLOAD_MB"}},
    )
    def upload_documents(
        files: Annotated[list[UploadFile], File(description="one or more .txt .md .markdown .html .htm .pdf .docx files")],
        kbs: Bases, kb: KB = None,
    ) -> dict[str, Any]:
        """Store the files under ``<index_dir>/documents/`` and index them: the ``IndexReport``."""
        kbs.writable(kb)
        report = add_uploads(kbs.get(kb), [(f.filename or "", f.file) for f in files], max_bytes=upload_limit)
        # (a name taken by a folder-indexed document is stored under its own: see `renamed`)
        if report.skipped and not (report.added or report.updated or report.unchanged):
            reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in report.skipped.items())
            raise ConfigError(f"nothing could be indexed: {reasons}")
        folders = kbs.folders()  # `skipped` is keyed by the stored file's path: the client gets its name
        return {**report.to_dict(),
                "skipped": {Path(p).name: public_message(r, folders) for p, r in report.skipped.items()}}

    @app.delete(
        "/api/documents/{doc_id:path}", tags=["documents"],
        responses={**UNAUTHORIZED, **FORBIDDEN, 404: {"description": "unknown document"}},
    )
    def remove_document(doc_id: str, kbs: Bases, kb: KB = None) -> dict[str, Any]:
        kbs.writable(kb)
        return {"deleted": delete_document(kbs.get(kb), doc_id)}


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
