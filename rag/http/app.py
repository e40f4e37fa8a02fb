"""The HTTP API (FastAPI) over one ``RAG``, with the Gradio chat mounted at ``/`` by ``build_app``/``serve``.

Routes: ``GET /health``, ``POST /api/ask``, ``POST /api/ask/stream`` (server-sent events),
``POST /api/search``, ``GET/POST /api/documents``, ``DELETE /api/documents/{doc_id}``,
``POST /api/session`` (the chat's upload cookie). Errors are ``{"error": message}`` with the status
of ``STATUS_CODES``. Every request passes ``rag.http.guard.Guard`` first (host, origin, key, size).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import threading
import unicodedata
import uuid
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

from fastapi import Depends, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from rag.errors import (
    ConfigError,
    DocumentNotFoundError,
    EmbedderError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    LoaderError,
    RagError,
)
from rag.http.guard import (
    MAX_JSON_BODY,
    SESSION_COOKIE,
    WRITE_PATHS,
    Guard,
    GuardConfig,
    key_matches,
    session_token,
    supplied_key,
)
from rag.ingest.files import SUPPORTED_SUFFIXES
from rag.pipeline import RAG
from rag.retrieval.filters import check_text

STATUS_CODES: list[tuple[type[BaseException], int]] = [
    (ConfigError, 400), (LoaderError, 400), (DocumentNotFoundError, 404),
    (IndexNotFoundError, 503), (IndexLockedError, 503),
    (IndexCorruptError, 500), (IndexMismatchError, 500), (EmbedderError, 500), (RagError, 500),
]
# Text formats only: binary formats the loaders may read (PDF, DOCX) are not accepted from the network.
UPLOAD_SUFFIXES = tuple(sorted(SUPPORTED_SUFFIXES))  # exactly what the loaders read
MAX_UPLOAD_FILES = 20
MAX_NAME_BYTES = 200
MAX_DOC_ID_CHARS = 1024  # a document id is a relative path; longer ones cannot exist on disk

# Declared for the OpenAPI schema (the lock icon in /docs); the check itself is key_matches.
BEARER = HTTPBearer(auto_error=False, description="RAG_API_KEY, when the server sets one")
HEADER_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="RAG_API_KEY, when the server sets one")

_upload_locks: weakref.WeakKeyDictionary[RAG, threading.Lock] = weakref.WeakKeyDictionary()
_upload_locks_guard = threading.Lock()


def max_upload_bytes(value: float) -> int:
    """``value`` MB in bytes (``ConfigError`` unless positive)."""
    if value <= 0:
        raise ConfigError(f"max_upload_mb (RAG_MAX_UPLOAD_MB) must be positive. Currently, it is {value}")
    return int(value * 1024 * 1024)


# ---- uploads -----------------------------------------------------------------------------------
def safe_filename(name: Any) -> str:
    """The base name an upload is stored under; ``ConfigError`` if nothing usable is left.

    Directory parts (``/`` and ``\\``) are dropped, control and invisible format characters
    (e.g. right-to-left overrides) removed, leading dots stripped (no hidden files, no ``..``),
    and the suffix must be one the loaders read.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("the upload has no file name")
    if "\x00" in name:
        raise ConfigError("file name contains a NUL character")
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().lstrip(".").strip()
    if not base:
        raise ConfigError(f"file name {name!r} has no usable base name")
    suffix = Path(base).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ConfigError(
            f"unsupported file type {suffix or '(none)'} in {base!r}; allowed: {', '.join(UPLOAD_SUFFIXES)}"
        )
    while len(base.encode()) > MAX_NAME_BYTES:  # keep the suffix, shorten the stem
        stem = base[: -len(suffix)]
        base = stem[:-1] + suffix
    return base


def documents_dir(rag: RAG) -> Path:
    """Where uploads are kept: ``<index_dir>/documents/``."""
    return Path(rag.index_dir) / "documents"


def _public(doc: dict[str, Any], uploads: Path) -> dict[str, Any]:
    path = Path(doc.get("path", ""))
    return {**doc, "path": path.name, "uploaded": path.parent.resolve() == uploads}


def _upload_lock(rag: RAG) -> threading.Lock:
    with _upload_locks_guard:
        return _upload_locks.setdefault(rag, threading.Lock())


def add_uploads(rag: RAG, files: Sequence[tuple[str, BinaryIO]], max_bytes: int | None = None) -> Any:
    """Save uploads under ``<index_dir>/documents/`` (sanitised names), then ``rag.add`` them.

    Uploads and documents indexed from folders share one id space (the file name), so an upload
    whose name is already a document from another source is stored under a name of its own
    (``name-upload.txt``, then ``name-upload-2.txt`` …) and the report's ``renamed`` says so; an
    upload of a name that is already an upload replaces it (a newer version).
    All names are checked before anything is written. Each file is written to a hidden temporary
    name and moved into place, so a half-written upload is never indexed. A file the loaders
    reject (empty, binary, ...) is removed again (or the earlier file of that name restored) and
    reported in ``skipped``; if embedding fails, the saved uploads stay on disk. Returns the
    ``IndexReport``.
    """
    limit = max_upload_bytes(rag.settings.max_upload_mb) if max_bytes is None else max_bytes
    if not files:
        raise ConfigError("no files were uploaded")
    if len(files) > MAX_UPLOAD_FILES:
        raise ConfigError(f"at most {MAX_UPLOAD_FILES} files per upload; got {len(files)}")
    names = [safe_filename(name) for name, _ in files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"two uploads would be stored under the same name: {', '.join(dupes)}")
    folder = documents_dir(rag)
    with _upload_lock(rag):
        stored = _stored_names(rag, names)
        folder.mkdir(parents=True, exist_ok=True)
        saved: list[tuple[Path, Path | None]] = []  # (file, backup of the file it replaced)
        try:
            for name, (_, stream) in zip(names, files, strict=True):
                saved.append(_save(folder, stored[name], stream, limit))
        except BaseException:
            for path, backup in saved:
                _restore(path, backup)
            raise
        try:
            report = rag.add([p for p, _ in saved])  # if this fails the uploads stay: nothing is lost
        except BaseException:
            for _, backup in saved:
                if backup is not None:
                    backup.unlink(missing_ok=True)
            raise
        rejected = {str(Path(k).resolve()) for k in report.skipped}
        for path, backup in saved:
            if str(path.resolve()) in rejected:
                _restore(path, backup)
            elif backup is not None:
                backup.unlink(missing_ok=True)
    renamed = {name: to for name, to in stored.items() if to != name}
    return dataclasses.replace(report, renamed=renamed) if renamed else report


def _stored_names(rag: RAG, names: Sequence[str]) -> dict[str, str]:
    """The name each upload is stored (and so identified) under: its own, unless a document from
    another source (a folder given to ``rag index``) already has that id."""
    uploads = documents_dir(rag).resolve()
    taken = {d["doc_id"] for d in rag.documents() if Path(d.get("path", "")).parent.resolve() != uploads}
    used = set(names)
    out: dict[str, str] = {}
    for name in names:
        candidate, n = name, 1
        suffix = Path(name).suffix
        while candidate in taken or (candidate != name and candidate in used):
            candidate = f"{name[: -len(suffix)]}-upload{'' if n == 1 else f'-{n}'}{suffix}"
            n += 1
        used.add(candidate)
        out[name] = candidate
    return out


def _save(folder: Path, name: str, stream: BinaryIO, limit: int) -> tuple[Path, Path | None]:
    dest = folder / name
    tmp = folder / f".{name}.{uuid.uuid4().hex}.part"
    try:
        size = 0
        with tmp.open("wb") as out:
            while block := stream.read(1024 * 1024):
                size += len(block)
                if size > limit:
                    raise UploadTooLarge(f"{name} is over the upload limit of {limit / 1024 / 1024:g} MB (RAG_MAX_UPLOAD_MB)")
                out.write(block)
        backup = None
        if dest.exists():
            backup = folder / f".{name}.{uuid.uuid4().hex}.bak"
            os.replace(dest, backup)
        os.replace(tmp, dest)
        return dest, backup
    finally:
        tmp.unlink(missing_ok=True)


def _restore(path: Path, backup: Path | None) -> None:
    if backup is not None:
        os.replace(backup, path)
    else:
        path.unlink(missing_ok=True)


def delete_document(rag: RAG, doc_id: str) -> list[str]:
    """Remove a document from the index; its upload stored under ``documents/`` is deleted too.

    The stored file is first renamed to a hidden tombstone, then the index entry is removed,
    then the tombstone: a crash at any point never lets the next start re-index an upload
    whose delete was acknowledged (hidden files are not indexed).
    """
    check_doc_id(doc_id)
    folder = documents_dir(rag).resolve()
    stored = (folder / doc_id).resolve()
    tomb = None
    if stored.parent == folder and stored.is_file() and any(d["doc_id"] == doc_id for d in rag.documents()):
        tomb = stored.with_name(f".deleted-{stored.name}")
        os.replace(stored, tomb)
    try:
        removed = rag.delete([doc_id])
    except BaseException:
        if tomb is not None:
            os.replace(tomb, stored)
        raise
    if tomb is not None:
        tomb.unlink(missing_ok=True)
    return removed


def check_doc_id(doc_id: Any) -> str:
    """A document id a client may name: text of a bounded length, without NUL or control characters."""
    if not isinstance(doc_id, str) or not doc_id:
        raise ConfigError("a document id is required")
    check_text(doc_id, "document id", MAX_DOC_ID_CHARS)
    if any(unicodedata.category(ch) == "Cc" for ch in doc_id):
        raise ConfigError(f"document id {doc_id[:80]!r} contains control characters")
    return doc_id


class UploadTooLarge(RagError):
    """An upload is over ``RAG_MAX_UPLOAD_MB``."""


# ---- request bodies ----------------------------------------------------------------------------
Retrieval = Literal["hybrid", "dense", "lexical"]


class AskRequest(BaseModel):
    question: str = Field(description="the question (at most max_question_chars characters)")
    top_k: int | None = Field(None, ge=1, le=50, description="passages given to the generator (default: the top_k setting)")
    generator: str | None = Field(
        None, max_length=200,
        description='one of the generators this server allows (GET /health: "generators"); default: the configured one')
    history: list[Any] | None = Field(None, description='earlier turns: [{"role": "user"|"assistant", "content": "..."}]')
    retrieval: Retrieval | None = None
    filters: dict[str, str] | None = Field(
        None, description='metadata filters: {"doc": "a*.txt", "article": "…", "date_from": "2023-01-01", "date_to": "…"}')


class ErrorBody(BaseModel):
    error: str


class SearchRequest(BaseModel):
    question: str
    top_k: int | None = Field(None, ge=1, le=50)
    retrieval: Retrieval | None = None
    filters: dict[str, str] | None = None


# ---- the app -----------------------------------------------------------------------------------
def create_api(
    rag: RAG, *, api_key: str | None = None, max_upload_mb: float | None = None,
    allowed_hosts: frozenset[str] | None = None, resolve_staged: Any = None,
) -> FastAPI:
    """The HTTP API over ``rag``, behind ``Guard``.

    ``api_key`` and ``max_upload_mb`` default to the settings (``RAG_API_KEY``, ``RAG_MAX_UPLOAD_MB``);
    ``allowed_hosts`` (None: any) are the Host names answered; ``resolve_staged`` maps the chat's
    staged-upload references to files (see ``ui.staging``).
    """
    settings = rag.settings
    key = (api_key if api_key is not None else settings.api_key).strip() or None
    upload_limit = max_upload_bytes(max_upload_mb if max_upload_mb is not None else settings.max_upload_mb)
    error = {"model": ErrorBody}
    app = FastAPI(
        title="rag-zh", version="0.1.0",
        description="Cited answers over Chinese documents. Errors are {\"error\": message}.",
        responses={400: {**error, "description": "bad input"}, 413: {**error, "description": "body too large"},
                   503: {**error, "description": "index not ready or locked"}},
    )
    app.state.rag = rag
    app.state.api_key = key
    app.state.max_upload_bytes = upload_limit

    app.state.guard = GuardConfig(
        api_key=key, upload_limit=upload_limit, allowed_hosts=allowed_hosts,
        allowed_origins=frozenset(o.rstrip("/").lower() for o in settings.comma_list("allowed_origins")),
        resolve_staged=resolve_staged,
    )
    app.add_middleware(Guard, config=app.state.guard)

    def require_key(
        request: Request, _b: Annotated[Any, Depends(BEARER)] = None, _h: Annotated[Any, Depends(HEADER_KEY)] = None,
    ) -> None:
        if not key_matches(key, supplied_key(request.headers)):
            raise HTTPException(401, "missing or wrong API key")

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        status = 413 if isinstance(exc, UploadTooLarge) else next(s for kind, s in STATUS_CODES if isinstance(exc, kind))
        headers = {"Retry-After": "5"} if status == 503 else None
        return JSONResponse({"error": str(exc)}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse({"error": "; ".join(parts) or "bad request"}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, ensure_ascii=False)
        if exc.status_code == 413:
            if WRITE_PATHS.match(request.url.path):
                message = f"upload too large: the limit is {upload_limit / 1024 / 1024:g} MB (RAG_MAX_UPLOAD_MB)"
            else:
                message = f"request body too large: the limit is {MAX_JSON_BODY // 1024} KB"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, status_code=500)

    @app.get("/health", tags=["status"])
    def health() -> dict[str, Any]:
        docs = rag.documents()
        return {
            "status": "ok", "documents": len(docs), "chunks": rag.size,
            "embedder": rag.settings.embedder, "generator": rag.settings.generator,
            "retrieval": rag.settings.retrieval, "top_k": rag.settings.top_k,
            "write_protected": bool(key), "generators": [g for g in settings.network_generators() if g != "*"],
        }

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

    @app.post("/api/ask", tags=["answers"])
    def ask(req: AskRequest) -> dict[str, Any]:
        """Answer with citations: the JSON of ``rag ask --json``."""
        return rag.ask(
            req.question, top_k=req.top_k, retrieval=req.retrieval,
            generator=settings.check_network_generator(req.generator), history=req.history,
            filters=req.filters,
        ).to_dict()

    @app.post(
        "/api/ask/stream", tags=["answers"], response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}},
                         "description": "one `data: <json>` line per event: sources, token…, answer"}},
    )
    def ask_stream(req: AskRequest) -> StreamingResponse:
        """Server-sent events: ``sources``, then ``token`` pieces, then the final ``answer``."""
        events = rag.ask_stream(
            req.question, top_k=req.top_k, retrieval=req.retrieval,
            generator=settings.check_network_generator(req.generator), history=req.history,
            filters=req.filters,
        )
        first = next(events)  # bad input raises here, before the 200 is sent
        return StreamingResponse(
            _sse(first, events), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/api/search", tags=["answers"])
    def search(req: SearchRequest) -> list[dict[str, Any]]:
        """The matching passages, best first."""
        passages = rag.search(
            req.question, top_k=req.top_k or rag.settings.top_k, retrieval=req.retrieval, filters=req.filters,
        )
        return [p.to_dict(i) for i, p in enumerate(passages, 1)]

    @app.get("/api/documents", tags=["documents"])
    def list_documents() -> list[dict[str, Any]]:
        """Indexed documents. ``path`` is the file name only and ``uploaded`` says whether it came
        through this API: the server's folder layout is not the clients' business."""
        uploads = documents_dir(rag).resolve()
        return [_public(d, uploads) for d in rag.documents()]

    @app.post(
        "/api/documents", tags=["documents"], dependencies=[Depends(require_key)],
        responses={401: {"description": "missing or wrong API key"}, 413: {"description": "over RAG_MAX_UPLOAD_MB"}},
    )
    def upload_documents(
        files: Annotated[list[UploadFile], File(description="one or more .txt .md .markdown .html .htm .pdf .docx files")],
    ) -> dict[str, Any]:
        """Store the files under ``<index_dir>/documents/`` and index them: the ``IndexReport``."""
        report = add_uploads(rag, [(f.filename or "", f.file) for f in files], max_bytes=upload_limit)
        # (a name taken by a folder-indexed document is stored under its own: see `renamed`)
        if report.skipped and not (report.added or report.updated or report.unchanged):
            reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in report.skipped.items())
            raise ConfigError(f"nothing could be indexed: {reasons}")
        return report.to_dict()

    @app.delete(
        "/api/documents/{doc_id:path}", tags=["documents"], dependencies=[Depends(require_key)],
        responses={401: {"description": "missing or wrong API key"}, 404: {"description": "unknown document"}},
    )
    def remove_document(doc_id: str) -> dict[str, Any]:
        return {"deleted": delete_document(rag, doc_id)}

    return app


def _sse(first: Any, rest: Iterator[Any]) -> Iterator[str]:
    yield _event(first.to_dict())
    try:
        for event in rest:
            yield _event(event.to_dict())
    except Exception as exc:
        message = str(exc) if isinstance(exc, RagError) else f"internal error ({type(exc).__name__})"
        yield _event({"type": "error", "error": message})


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def build_app(rag: RAG, *, api_key: str | None = None, max_upload_mb: float | None = None,
              allowed_hosts: frozenset[str] | None = None) -> FastAPI:
    """The API with the Gradio chat mounted at ``/`` (API routes first, so they take precedence).

    The chat's uploads go to a staging folder of this server's own (``ui.staging``): Gradio's
    upload route is replaced, and ``Guard`` lets event payloads name only files staged there.
    """
    import atexit  # noqa: PLC0415 - only the composed server needs these
    import contextlib  # noqa: PLC0415

    import gradio as gr  # noqa: PLC0415 - the API alone (tests, scripts) must not pay for Gradio

    from ui.app import CSS, create_app  # noqa: PLC0415 - ui imports rag.http.app: import it late
    from ui.staging import Staging, add_upload_route  # noqa: PLC0415

    staging = Staging()
    atexit.register(staging.cleanup)
    app = create_api(rag, api_key=api_key, max_upload_mb=max_upload_mb, allowed_hosts=allowed_hosts,
                     resolve_staged=staging.resolve)
    app.state.staging = staging
    add_upload_route(app, staging, app.state.max_upload_bytes)
    with staging.as_gradio_temp_dir():
        blocks = create_app(rag, api_key=app.state.api_key, staging=staging)
        mounted = gr.mount_gradio_app(
            app, blocks, path="/", max_file_size=app.state.max_upload_bytes, css=CSS,
            footer_links=[], run_history=False,
        )
    inner = mounted.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: Any) -> Any:
        async with inner(application) as state:
            yield state
        staging.cleanup()  # staged files do not outlive the server

    mounted.router.lifespan_context = lifespan
    return mounted


def open_index(index_dir: str | Path, seeds: Sequence[str | Path] | None = None, **settings: Any) -> RAG:
    """Open the index, first building it from ``seeds`` (default ``seeds/``) if there is none."""
    index_dir = Path(index_dir)
    if not (index_dir / "manifest.json").is_file():
        sources = [str(s) for s in (seeds or ["seeds"])]
        print(f"building the index in {index_dir} from {', '.join(sources)} …", flush=True)
        RAG.open(index_dir, create=True, **settings).index(sources)
    return RAG.open(index_dir, **settings)


def index_pending_uploads(rag: RAG) -> Any:
    """Index uploads stored under ``documents/`` whose embedding failed or was interrupted earlier."""
    folder = documents_dir(rag)
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    return rag.add(folder)


def serve(index_dir: str | Path = "index", host: str = "127.0.0.1", port: int = 7860,
          seeds: Sequence[str | Path] | None = None) -> None:
    """Open (or build) the index, mount the chat on the API and run uvicorn until interrupted."""
    import uvicorn  # noqa: PLC0415 - only the server needs it

    from rag.http.guard import loopback_hosts  # noqa: PLC0415

    rag = open_index(index_dir, seeds)
    report = index_pending_uploads(rag)
    if report is not None and (report.added or report.updated):
        print(f"indexed {len(report.added) + len(report.updated)} stored upload(s) left from an earlier run")
    app = build_app(rag, allowed_hosts=loopback_hosts(host, rag.settings.comma_list("allowed_hosts")))
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1"
    print(f"{rag.size} passages from {len(rag.documents())} documents in {index_dir}")
    print(f"chat 问答: http://{shown}:{port}/   API docs: http://{shown}:{port}/docs", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1") and not app.state.api_key:
        print("warning: listening beyond this machine without RAG_API_KEY; anyone who can reach it "
              "can upload and delete documents", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning")


__all__ = [
    "add_uploads", "build_app", "check_doc_id", "create_api", "delete_document", "index_pending_uploads",
    "key_matches", "open_index", "safe_filename", "serve",
]
