"""The composition root: the HTTP API with the Gradio chat mounted on it, served by uvicorn.

``build_app`` composes the app (``rag.http.app.create_api``, ``ui.staging``, ``ui.app``);
``open_index`` opens an index, building it from the seeds first when there is none; ``serve``
is ``rag serve``. This is where the library's HTTP app and the Gradio page are put together; the
UI's other modules use ``rag.http`` only for its helpers (redaction, plain text, the guard's errors).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import gradio as gr
import uvicorn
from fastapi import FastAPI

from rag.access import Access
from rag.bases import KnowledgeBases
from rag.http.app import create_api
from rag.http.guard import loopback_hosts
from rag.pipeline import RAG
from rag.uploads import index_pending_uploads
from rag.watch import watch_in_background
from ui.app import CSS, create_app
from ui.gradio_routes import serve_used_routes_only
from ui.staging import Staging, add_upload_route, gradio_cache

# Gradio's file box draws its own text ("Drop File Here", "- or -", "Click to Upload") in the browser's
# language. gr.I18n's custom translations replace those built-in keys when given as flat dotted keys:
# Gradio's frontend (load_translations) adds them with svelte-i18n's addMessages before its own
# dictionaries, and a later nested {upload_text: {drop_file: …}} would win a merge, but svelte-i18n's
# lookup (delve) tries the whole dotted key first, so "upload_text.drop_file" is found before the
# nested path. Locales: Gradio picks the browser's language if it ships one (zh-CN, zh-TW, …), else
# its base (en-GB → en), else en; so en covers English and every language Gradio lacks (plain "zh"
# too), and the Chinese ones are named. Other shipped languages (fr, ja, …) keep Gradio's own text.
UPLOAD_TEXT = {
    "upload_text.drop_file": "将文件拖放到此处 Drop File Here",
    "common.or": "或 or",
    "upload_text.click_to_upload": "点击上传 Click to Upload",
}
UPLOAD_I18N = gr.I18n(**{locale: UPLOAD_TEXT for locale in ("en", "zh-CN", "zh-TW")})


def build_app(rag: RAG, *, api_key: str | None = None, max_upload_mb: float | None = None,
              allowed_hosts: frozenset[str] | None = None) -> FastAPI:
    """The API with the Gradio chat mounted at ``/`` (API routes first, so they take precedence).

    The chat's uploads go to a staging folder of this server's own (``ui.staging``): Gradio's
    upload route is replaced, and ``Guard`` lets event payloads name only files staged there and
    only the page's events. Of Gradio's routes, only those the page uses are served (``ui.gradio_routes``).
    """
    staging = Staging(parent=gradio_cache())  # before any component is made: see gradio_cache
    atexit.register(staging.cleanup)
    bases = KnowledgeBases(rag, rag.settings.kb_root, _open_base)
    app = create_api(rag, api_key=api_key, max_upload_mb=max_upload_mb, allowed_hosts=allowed_hosts,
                     resolve_staged=staging.resolve, bases=bases)
    app.state.staging = staging
    add_upload_route(app, staging, app.state.max_upload_bytes)
    blocks = create_app(rag, staging=staging, bases=bases, access=_access(app, rag))
    mounted = gr.mount_gradio_app(
        app, blocks, path="/", max_file_size=app.state.max_upload_bytes, css=CSS,
        footer_links=[], run_history=False, i18n=UPLOAD_I18N,
    )
    app.state.guard.gradio_events = frozenset(blocks.fns)
    serve_used_routes_only(mounted, blocks)
    _clean_up_on_shutdown(mounted, staging)
    return mounted


def _access(app: FastAPI, rag: RAG) -> Access:
    """The HTTP API's ``rag.access.Access`` (the page's events must judge the sessions its /api/session
    opened), or, from an API that keeps none, one over its key and the settings' keys file."""
    access = getattr(app.state, "access", None)
    return access if isinstance(access, Access) else Access.from_settings(rag.settings, app.state.api_key)


def _open_base(path: Path, **options: Any) -> RAG:
    """A knowledge base the server opens on first use (or creates: ``options``), with the uploads an
    earlier run stored but did not index."""
    rag = RAG.open(path, **options)
    index_pending_uploads(rag)
    return rag


def _clean_up_on_shutdown(app: FastAPI, staging: Staging) -> None:
    """Wrap the app's lifespan (Gradio's) so that the staged files do not outlive the server."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: Any) -> Any:
        async with inner(application) as state:
            yield state
        staging.cleanup()

    app.router.lifespan_context = lifespan


def open_index(index_dir: str | Path, seeds: Sequence[str | Path] | None = None, **settings: Any) -> RAG:
    """Open the index, first building it from ``seeds`` (default ``seeds/``) if there is none."""
    index_dir = Path(index_dir)
    if not (index_dir / "manifest.json").is_file():
        sources = [str(s) for s in (seeds or ["seeds"])]
        print(f"building the index in {index_dir} from {', '.join(sources)} …", flush=True)
        RAG.open(index_dir, create=True, **settings).index(sources)
    return RAG.open(index_dir, **settings)


def serve(index_dir: str | Path = "index", host: str = "127.0.0.1", port: int = 7860,
          seeds: Sequence[str | Path] | None = None, watch: bool = False) -> None:
    """Open (or build) the index, mount the chat on the API and run uvicorn until interrupted; ``watch``
    keeps ``seeds`` (default: seeds/) indexed while serving (``rag.watch``)."""
    rag = open_index(index_dir, seeds)
    report = index_pending_uploads(rag)
    if report is not None and (report.added or report.updated):
        print(f"indexed {len(report.added) + len(report.updated)} stored upload(s) left from an earlier run")
    app = build_app(rag, allowed_hosts=loopback_hosts(host, rag.settings.comma_list("allowed_hosts")))
    rag.warm()  # the models the first questions need, loaded once before listening
    # What is loaded now (the libraries, jieba's tables, the index) lives as long as the server: frozen, it is
    # left out of the cycle collector's full passes, each of which walked it again (~25 ms holding the GIL).
    gc.freeze()
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1"
    print(f"{rag.size} passages from {len(rag.documents())} documents in {index_dir}")
    print(f"chat 问答: http://{shown}:{port}/   API docs: http://{shown}:{port}/docs", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1") and not app.state.access.keyed:
        print("warning: listening beyond this machine without RAG_API_KEY or RAG_KEYS_FILE; anyone who can reach it "
              "can upload and delete documents", file=sys.stderr)
    if watch:
        folders = list(seeds or ["seeds"])
        watch_in_background(rag, folders, initial=False, on_report=_announce)
        print(f"watching {', '.join(map(str, folders))}: changed files are re-indexed", flush=True)
    _limit_request_threads(app, REQUEST_THREADS)
    uvicorn.run(app, host=host, port=port, log_level="warning")


# Threads that run the API's (synchronous) handlers at once; AnyIO's default is 40. Answering is CPU work
# (the models take turns in rag.embedding.batching): more threads than this only queue on the GIL and
# stretch every answer, fewer leave a core idle while one answer waits for its model call.
REQUEST_THREADS = max(4, 4 * (os.cpu_count() or 1))


def _limit_request_threads(app: FastAPI, threads: int) -> None:
    """Set AnyIO's thread limit as the server starts (it belongs to the running event loop)."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: Any) -> Any:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        async with inner(application) as state:
            yield state

    app.router.lifespan_context = lifespan


def _announce(report: Any) -> None:
    if report.added or report.updated or report.removed:
        print(f"re-indexed: {len(report.added)} added, {len(report.updated)} updated, {len(report.removed)} removed",
              flush=True)


__all__ = ["UPLOAD_TEXT", "build_app", "open_index", "serve"]
