"""ASGI middleware in front of the HTTP API and the mounted chat: every request is checked here first.

Gradio mounted with ``gr.mount_gradio_app`` and never ``launch()``ed skips some of its own checks
(``processing_utils._check_allowed`` returns early), so nothing here relies on Gradio's:

- **Host** (``allowed_hosts``): a server on loopback answers only requests addressed to loopback
  names, so a web page whose DNS name is re-pointed at 127.0.0.1 (DNS rebinding) cannot reach it.
- **Cross-site writes**: a POST, PUT, PATCH or DELETE that a browser marks as coming from another
  origin (``Sec-Fetch-Site``, else ``Origin`` against ``Host``) is refused with 403, unless that
  origin is in ``allowed_origins``. Requests without these headers are not a browser's (curl, SDKs).
- **The key of a write**, before its body is read: document writes (``/api/documents?kb=NAME``) need a
  grant (``rag.access``) that may write that knowledge base (the route checks it again), Gradio's upload
  route one that may write some base (the chat's event that indexes then checks which):
  ``Authorization: Bearer``, ``X-API-Key``, or the chat's session cookie from ``POST /api/session``. A
  wrong, revoked or expired key is 401.
- **No caching** of ``/api/`` and ``/v1/`` answers (``Cache-Control: no-store`` unless a route sets its own):
  what they hold depends on the caller's key.
- **Body size**: JSON bodies and uploads are bounded, on ``Content-Length`` and while they are read.
- **Gradio file references**: every ``"path"`` in a JSON body sent to ``/gradio_api/`` must name a
  file staged by this server's upload route; it is rewritten to that file, anything else is a 400.
  ``/gradio_api/file=`` serves staged files only.
- **Gradio events**: a queued event must name one of the page's events (``gradio_events``); Gradio
  itself answers an unknown ``fn_index`` with a bare 500.
- **CORS**: only origins in ``allowed_origins`` get ``Access-Control-*`` answers. Gradio's own CORS
  answers any localhost origin with credentials allowed, so another local page could read the chat.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from rag.access import Access, KeyRequiredError, KeysUnavailableError
from rag.catalogue import english
from rag.errors import RagError

MAX_JSON_BODY = 1024 * 1024  # questions, history and options: far more than max_question_chars needs
MAX_GRADIO_BODY = 8 * 1024 * 1024  # the chat sends its whole visible conversation with each event
MULTIPART_SLACK = 64 * 1024  # room for the multipart framing around the files
WRITE_PATHS = re.compile(r"^/api/documents(/.*)?$")
GRADIO_UPLOAD = "/gradio_api/upload"
GRADIO_FILE = "/gradio_api/file="
GRADIO_JOIN = "/gradio_api/queue/join"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def host_name(value: str) -> str:
    """``Host`` header or URL authority → the bare lower-case host (no port, no IPv6 brackets)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    return value.rpartition(":")[0] if value.count(":") == 1 else value


@dataclass
class GuardConfig:
    access: Access | None = None  # None: uploads are not checked here (an app without keys)
    bases: Any = None  # the served rag.bases.KnowledgeBases, whose names an upload's key is checked against
    upload_limit: int = 20 * 1024 * 1024
    allowed_hosts: frozenset[str] | None = None  # None: any Host (a server reachable under many names)
    allowed_origins: frozenset[str] = frozenset()
    # maps a client's staged-file reference to the staged file's path, or None if it names no staged file
    resolve_staged: Callable[[str], str | None] | None = None
    gradio_events: frozenset[int] | None = None  # the mounted page's event numbers (fn_index); None: not checked

    def upload_refusal(self, path: str, query: str, headers: dict[str, str]) -> JSONResponse | None:
        """Why a write is refused before its body is read (None: it may go on): a wrong key (401), none where
        one is needed (401), the keys file unreadable (503); for ``/api/documents?kb=NAME`` a base the key
        may not read (404) or only read (403), for Gradio's upload a key that may write no base (403)."""
        if self.access is None:
            return None
        try:
            grant = self.access.caller(headers)
            if path == GRADIO_UPLOAD:
                self.access.require_some_write(grant, self.bases.names())
            else:
                kb = parse_qs(query, keep_blank_values=True).get("kb")
                self.access.view(self.bases, grant).writable(kb[-1] if kb else None)  # FastAPI takes the last
        except KeyRequiredError as exc:
            return _unauthorized(path, str(exc))
        except KeysUnavailableError as exc:
            return error_response(path, 503, str(exc), {"Retry-After": "60"})
        except RagError as exc:  # AccessDeniedError 403, KnowledgeBaseNotFoundError 404, a bad name 400
            return error_response(path, exc.http_status, str(exc))
        return None


def _not_stored(send: Any) -> Any:
    """``send`` adding ``Cache-Control: no-store`` to an answer that sets no caching of its own: answers and
    document lists depend on the caller's key, so no browser or proxy cache may keep one for the next caller."""

    async def send_not_stored(message: dict) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(k.lower() == b"cache-control" for k, _ in headers):
                message = {**message, "headers": [*headers, (b"cache-control", b"no-store")]}
        await send(message)

    return send_not_stored


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, "request body too large")


class Guard:
    """The checks above, as raw ASGI middleware: they act before any body is parsed."""

    def __init__(self, app: Any, config: GuardConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            return await refusal(scope, receive, send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        send = self._without_foreign_cors(headers, send)
        if scope.get("path", "").startswith(("/api/", "/v1/")):
            send = _not_stored(send)
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if path.startswith(GRADIO_FILE) and self.config.resolve_staged is not None:
            staged = self._staged_file_scope(scope)
            if staged is None:
                return await error_response(path, 404, "no such file: /gradio_api/file= serves only files uploaded "
                                                       "to this server")(scope, receive, send)
            scope = staged
        if method in UNSAFE_METHODS and path.startswith("/gradio_api/") and path != GRADIO_UPLOAD:
            return await self._gradio_json(scope, receive, send)
        limit = self._limit(path, method)
        if limit is None:
            return await self.app(scope, receive, send)
        declared = _declared_length(headers)
        if declared > limit:
            return await _too_large(path, self._upload_path(path, method), self.config.upload_limit)(scope, receive, send)
        await self.app(scope, _counted(receive, limit), send)

    # ---- the checks ------------------------------------------------------------------------
    def _refusal(self, scope: dict, headers: dict[str, str]) -> JSONResponse | None:
        cfg = self.config
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if cfg.allowed_hosts is not None and host_name(headers.get("host", "")) not in cfg.allowed_hosts:
            return error_response(path, 421, f"this server does not answer for host {headers.get('host', '')!r} "
                                             "(RAG_ALLOWED_HOSTS lists more names)")
        if (method in UNSAFE_METHODS or scope["type"] == "websocket") and self._cross_site(headers):
            return error_response(path, 403, f"cross-site request refused: origin {headers.get('origin') or '(unknown)'} "
                                             "may not write to this server (RAG_ALLOWED_ORIGINS lists origins that may)")
        if method in UNSAFE_METHODS and self._upload_path(path, method):
            return cfg.upload_refusal(path, scope.get("query_string", b"").decode("latin-1"), headers)
        return None

    def _cross_site(self, headers: dict[str, str]) -> bool:
        origin = headers.get("origin")
        if origin and origin.rstrip("/").lower() in self.config.allowed_origins:
            return False
        site = headers.get("sec-fetch-site")
        if site in ("cross-site", "same-site"):  # same-site is still another origin (another port)
            return True
        if origin is None:
            return False
        if origin == "null":  # sandboxed frames, file:// pages
            return True
        return urlsplit(origin).netloc.lower() != headers.get("host", "").lower()

    @staticmethod
    def _upload_path(path: str, method: str) -> bool:
        return method in UNSAFE_METHODS and (WRITE_PATHS.match(path) is not None or path == GRADIO_UPLOAD)

    def _limit(self, path: str, method: str) -> int | None:
        if self._upload_path(path, method):
            return self.config.upload_limit + MULTIPART_SLACK
        if path.startswith("/api/") or path.startswith("/v1/"):
            return MAX_JSON_BODY
        return None

    def _without_foreign_cors(self, headers: dict[str, str], send: Any) -> Any:
        """``send`` with every ``Access-Control-*`` header dropped from the answer to an origin that
        is not allowed (a same-origin page needs none)."""
        origin = headers.get("origin")
        if origin is None or origin.rstrip("/").lower() in self.config.allowed_origins:
            return send

        async def send_without_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [(k, v) for k, v in message.get("headers", [])
                                                  if not k.lower().startswith(b"access-control-")]}
            await send(message)

        return send_without_cors

    # ---- Gradio's file references and events ---------------------------------------------------
    def _staged_file_scope(self, scope: dict) -> dict | None:
        """``/gradio_api/file=<staged ref>`` (the link the upload box shows) → the staged file; None
        for anything else (the page shows no other server file)."""
        ref = unquote(scope["path"][len(GRADIO_FILE):])
        resolved = self.config.resolve_staged(ref) if self.config.resolve_staged else None
        if resolved is None:
            return None
        new_path = GRADIO_FILE + resolved
        return {**scope, "path": new_path, "raw_path": new_path.encode()}

    def _unknown_event(self, path: str, data: Any) -> str | None:
        """Why a queued event names no event of the page, or None when it names one."""
        events = self.config.gradio_events
        if events is None or path != GRADIO_JOIN or not isinstance(data, dict):
            return None
        fn = data.get("fn_index")
        if isinstance(fn, int) and not isinstance(fn, bool) and fn in events:
            return None
        return f"unknown event: fn_index {json.dumps(fn)[:40]} is not one of this page's events"

    async def _gradio_json(self, scope: dict, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            if len(body) > MAX_GRADIO_BODY:
                return await _too_large(scope["path"], False, 0, MAX_GRADIO_BODY)(scope, receive, send)
            if not message.get("more_body"):
                break
        try:
            data = json.loads(body) if body.strip() else None
        except (ValueError, RecursionError):
            data = None  # not JSON (or nested past the parser's depth): Gradio refuses it itself, and it can name no file
        if data is not None and not _encodable(data):
            # JSON may carry a lone surrogate (``"\ud800"``); Gradio's own errors about such a value
            # cannot be written out and break the event's stream, so the event is refused here
            return await error_response(scope["path"], 400, "the event contains a lone UTF-16 surrogate "
                                                            "(invalid Unicode text)")(scope, receive, send)
        unknown = self._unknown_event(scope["path"], data)
        if unknown is not None:
            return await error_response(scope["path"], 400, unknown)(scope, receive, send)
        if data is not None:
            try:
                data, changed = _rewrite_paths(data, self.config.resolve_staged)
            except _ForeignPath as exc:
                return await error_response(scope["path"], 400, f"file {exc} is not an upload to this server")(scope, receive, send)
            if changed:
                body = json.dumps(data, ensure_ascii=False).encode()
                scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
                         + [(b"content-length", str(len(body)).encode())]}
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class _ForeignPath(ValueError):
    pass


def _encodable(data: Any) -> bool:
    """Whether ``data`` (parsed JSON) holds only text UTF-8 can encode, keys included."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _rewrite_paths(data: Any, resolve: Callable[[str], str | None] | None) -> tuple[Any, bool]:
    """Every ``{"path": str}`` inside ``data`` mapped through ``resolve``; a path it does not know raises."""
    changed = False

    def walk(node: Any, depth: int = 0) -> Any:
        nonlocal changed
        if depth > 64:
            raise _ForeignPath("(nested too deeply)")
        if isinstance(node, list):
            return [walk(v, depth + 1) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v, depth + 1) for k, v in node.items()}
        if isinstance(out.get("path"), str):
            resolved = resolve(out["path"]) if resolve else None
            if resolved is None:
                raise _ForeignPath(repr(out["path"][:200]))
            changed = changed or resolved != out["path"]
            out["path"] = resolved
        return out

    return walk(data), changed


def _declared_length(headers: dict[str, str]) -> int:
    try:
        return int(headers.get("content-length", "0") or 0)
    except ValueError:
        return 0


def _counted(receive: Any, limit: int) -> Callable[[], Any]:
    seen = 0

    async def counted() -> dict:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge()
        return message

    return counted


# OpenAI's error types by status, for the /v1/ routes (their clients read error.type and error.message)
OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                      404: "not_found_error", 413: "invalid_request_error", 421: "invalid_request_error",
                      503: "server_error"}


def error_response(path: str, status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """``{"error": message}``; on ``/v1/`` paths OpenAI's ``{"error": {"message", "type", "param", "code"}}``,
    whether a route or this guard refused the request, so an OpenAI client can read every error."""
    if path.startswith("/v1/"):
        kind = OPENAI_ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        body: dict[str, Any] = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        return JSONResponse(body, status_code=status, headers=headers)
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def upload_too_large(upload_limit: int) -> str:
    """The one message of an upload over ``RAG_MAX_UPLOAD_MB``, whichever check refused it."""
    return english("upload.over_limit", limit=upload_limit / 1024 / 1024)


def _too_large(path: str, upload: bool, upload_limit: int, json_limit: int = MAX_JSON_BODY) -> JSONResponse:
    if upload:
        return error_response(path, 413, upload_too_large(upload_limit))
    return error_response(path, 413, f"request body too large: the limit is {json_limit // 1024} KB")


def _unauthorized(path: str, message: str) -> JSONResponse:
    return error_response(path, 401, message, {"WWW-Authenticate": "Bearer"})


def loopback_hosts(host: str, extra: list[str]) -> frozenset[str] | None:
    """The Host names to answer for when listening on ``host``: loopback names plus ``extra`` for a
    loopback server; None (any) for one listening beyond the machine, which may have many names."""
    if host_name(host) not in LOOPBACK_HOSTS and not host.startswith("127."):
        return None
    return frozenset({*LOOPBACK_HOSTS, host_name(host), *(host_name(h) for h in extra)})


__all__ = ["Guard", "GuardConfig", "error_response", "loopback_hosts", "upload_too_large"]
