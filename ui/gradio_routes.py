"""Only the Gradio routes the chat page uses are served; every other one is a 404.

Gradio mounts some sixty routes: run and call APIs beside the queue, its own upload and file
routes, login, monitoring, run history, a screen-recording endpoint that sends back whatever file
it is given (``/gradio_api/process_recording``), and more with each release. The page needs a few,
found by reading ``gradio/routes.py`` and by logging what the page requests in headless Chromium:
the page and its assets, ``/config``, and the queue. The upload route is this server's own
(``ui.staging``) and answers before the mount; ``Guard`` checks ``/gradio_api/file=`` and the events.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import gradio as gr
from fastapi import FastAPI
from starlette.routing import Mount

from rag.http.guard import error_response

READ = frozenset({"GET", "HEAD"})
READ_PATHS = frozenset({"/", "/config", "/config/", "/theme.css", "/favicon.ico", "/manifest.json",
                        "/robots.txt", "/gradio_api/queue/data"})
READ_PREFIXES = ("/assets/", "/static/", "/gradio_api/file=", "/gradio_api/heartbeat/")
WRITE_PATHS = frozenset({"/gradio_api/queue/join", "/gradio_api/cancel"})
QUEUE_DATA = "/gradio_api/queue/data"


def used_by_the_page(method: str, path: str) -> bool:
    """Whether the chat page ever sends ``method path`` to Gradio."""
    if method in READ:
        return path in READ_PATHS or path.startswith(READ_PREFIXES)
    return method == "POST" and path in WRITE_PATHS


class UsedRoutesOnly:
    """ASGI wrapper of the mounted Gradio app: what the page does not use is refused before Gradio
    sees it, and the results of a page that queued nothing are a 404, not a broken stream."""

    def __init__(self, app: Any, blocks: gr.Blocks) -> None:
        self.app = app
        self.blocks = blocks

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":  # the page uses none
            return await send({"type": "websocket.close", "code": 1008})
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if not used_by_the_page(method, path):
            # the path is not echoed: what a client sends is not shown back to it
            refusal = error_response(path, 404, f"no such route: this {method} route is not used by this server's chat")
            return await refusal(scope, receive, send)
        if path == QUEUE_DATA and not self._has_events(scope):
            return await error_response(path, 404, "no events are waiting for this session: "
                                                   "join the queue first (/gradio_api/queue/join)")(scope, receive, send)
        await self.app(scope, receive, send)

    def _has_events(self, scope: dict) -> bool:
        """Whether the session named in the query joined the queue. Gradio checks this only once its
        event stream has begun, and then breaks the stream off with a server error."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        session = (query.get("session_hash") or [""])[0]
        # Gradio keeps no public view of this; if the attribute goes away, Gradio's own check stays
        pending = getattr(getattr(self.blocks, "_queue", None), "pending_messages_per_session", None)
        return pending is None or session in pending


def serve_used_routes_only(app: FastAPI, blocks: gr.Blocks) -> None:
    """Wrap the Gradio app that ``gr.mount_gradio_app`` mounted on ``app`` in ``UsedRoutesOnly``."""
    mounts = [r for r in app.router.routes if isinstance(r, Mount) and r.path == ""]
    if len(mounts) != 1:
        raise RuntimeError(f"expected Gradio mounted once at '/', found {len(mounts)} mounts")
    mounts[0].app = UsedRoutesOnly(mounts[0].app, blocks)


__all__ = ["UsedRoutesOnly", "serve_used_routes_only", "used_by_the_page"]
