"""This server's staging folder for the chat's uploads, and the upload route that fills it.

The chat's file box sends each chosen file to ``POST /gradio_api/upload`` before the user presses
"Add to index". Gradio's own route takes any type, any number, keeps the files for ever and answers
with absolute server paths; this one replaces it (it is registered before Gradio is mounted, so it
takes precedence): names and types are checked as in the HTTP API, the count and total size are
bounded, each file lands in a random folder of a per-server staging directory, and the client gets
back only a reference ``<random>/<name>``. ``Guard`` maps those references, and nothing else, back
to files (see ``rag.http.guard``).

What one client may stage is a share of the whole (``client_share``), so one address cannot fill
the folder for everyone. Staged files are deleted once indexed or refused, when the browser session
that chose them ends or drops them from the file box (``on_files_change``, ``on_unload``), after
``max_age`` seconds if never used, and with the whole folder when the server stops.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import BinaryIO

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from rag.errors import ConfigError
from rag.http.guard import upload_too_large
from rag.uploads import MAX_UPLOAD_FILES, UploadTooLarge, copy_bounded, safe_filename
from ui.owned_dir import owned_temp_folder

_REF_CHARS = frozenset("0123456789abcdef")
MB = 1024 * 1024


@functools.cache
def gradio_cache() -> Path:
    """This process's Gradio cache: a private (0700) folder, set as ``GRADIO_TEMP_DIR`` for good.

    Gradio reads ``GRADIO_TEMP_DIR`` whenever it makes a component, and it makes one for a session
    each time an event updates a component (``gr.skip()`` on the file box after a wrong key): set only
    while the page was built, that copy had Gradio's default ``/tmp/gradio`` as its cache, copied the
    staged file there (0644, never removed), and the retry with the right key was refused as not an
    upload. With the staging folders inside this one, Gradio finds staged files already in its cache
    and copies nothing. An operator's ``GRADIO_TEMP_DIR`` is kept as the parent. A folder a killed
    server left behind is removed at the next start (``ui.owned_dir``)."""
    path = owned_temp_folder("rag-gradio-", os.environ.get("GRADIO_TEMP_DIR") or None)  # a killed server's is reclaimed
    os.environ["GRADIO_TEMP_DIR"] = str(path)
    return path


def client_key(host: str | None) -> str:
    """Whose upload this is, for the per-client share: the address, or its /64 for IPv6 (one
    machine often holds a whole /64, so single addresses would be a share each)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return host or ""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class Staging:
    """A private temporary folder: ``root/<32 hex>/<safe name>``, one file per random folder.

    ``parent`` (default: the system's temporary folder) holds ``root``; when given, its loose files
    older than ``max_age`` are swept too (Gradio's per-event scratch files, see ``gradio_cache``)."""

    def __init__(self, max_age: float = 3600.0, max_bytes: int = 512 * MB, client_share: float = 0.25,
                 parent: Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rag-chat-uploads-", dir=parent)).resolve()
        self.max_age = max_age
        self.max_bytes = max_bytes  # all staged files together: a full folder refuses, it does not grow
        self.client_share = client_share  # the part of max_bytes that one client may hold
        self._sweep_parent = parent is not None
        self._lock = threading.Lock()
        self._owners: dict[str, str] = {}  # ref folder → client key
        self._claims: dict[str, set[str]] = {}  # browser session → ref folders its file box holds

    # ---- filling ---------------------------------------------------------------------------
    def stage(self, name: str, stream: BinaryIO, limit: int, client: str = "") -> str:
        """Copy ``stream`` to a new staged file named ``name`` for ``client``; returns its reference."""
        self.sweep()
        reserve = min(limit, self.max_bytes)  # the most this file may take, checked before it is read
        folder = uuid.uuid4().hex
        with self._lock:
            self._check_room(client, reserve)
            self._owners[folder] = client
        dest = self.root / folder / name
        try:
            dest.parent.mkdir(mode=0o700)
            copy_bounded(stream, dest, name, limit)
        except BaseException:
            self.release(folder)
            raise
        return f"{folder}/{name}"

    def _check_room(self, client: str, reserve: int) -> None:
        if self._used() + reserve > self.max_bytes:
            raise UploadTooLarge("upload.staging_full")
        share = int(self.max_bytes * self.client_share)
        held = self._used(client)
        if held + min(reserve, share) > share:
            raise UploadTooLarge("upload.staging_share", held=_size(held), share=_size(share))

    # ---- reading ---------------------------------------------------------------------------
    def resolve(self, ref: str) -> str | None:
        """The staged file a client's reference (or the staged path itself) names; None for
        anything else: other server files, other folders, links, ``..`` tricks."""
        if not isinstance(ref, str) or "\x00" in ref or len(ref) > 1024:
            return None
        candidate = Path(ref)
        if not candidate.is_absolute():
            candidate = self.root / candidate
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        folder = resolved.parent
        if folder.parent != self.root or not _is_ref_folder(folder.name) or not resolved.is_file():
            return None
        return str(resolved)

    # ---- letting go --------------------------------------------------------------------------
    def release(self, path: str | Path) -> None:
        """Delete a staged file and its folder (after indexing, or when it is refused)."""
        folder = self._folder(str(path))
        if folder is not None:
            shutil.rmtree(self.root / folder, ignore_errors=True)
            with self._lock:
                self._owners.pop(folder, None)

    def claim(self, session: str, paths: list[str]) -> None:
        """The staged files a browser session's file box now holds; those it held before and no
        longer does (removed from the box, or added and cleared) are released."""
        if not session:
            return
        folders = {f for f in map(self._folder, paths) if f is not None}
        with self._lock:
            dropped = self._claims.pop(session, set()) - folders
            if folders:
                self._claims[session] = folders
        for folder in dropped:
            self.release(folder)

    def release_session(self, session: str) -> None:
        """A browser session ended: whatever its file box still held goes."""
        self.claim(session, [])

    def on_files_change(self, files: list[str] | None, request: gr.Request) -> None:
        """The file box's change event: it now holds ``files`` (see ``claim``)."""
        self.claim(request.session_hash or "", [str(f) for f in files or []])

    def on_unload(self, request: gr.Request) -> None:
        """The page was closed (Gradio's ``unload``, when its heartbeat connection ends)."""
        self.release_session(request.session_hash or "")

    def _folder(self, path: str) -> str | None:
        """The ref folder that ``path`` (a reference, a staged path or a ref folder) lies in."""
        if isinstance(path, str) and _is_ref_folder(path):
            return path
        resolved = self.resolve(path)
        return Path(resolved).parent.name if resolved is not None else None

    # ---- housekeeping ----------------------------------------------------------------------
    def sweep(self) -> None:
        """Remove staged entries older than ``max_age`` (files chosen but never added), and Gradio's
        loose scratch files beside the staging folder when it has a ``parent``."""
        cutoff = time.time() - self.max_age
        for entry in _entries(self.root):
            _remove_if_older(entry, cutoff)
        if self._sweep_parent:
            for entry in _entries(self.root.parent):
                if entry.is_file() and not entry.is_symlink():
                    _remove_if_older(entry, cutoff)
        with self._lock:
            self._owners = {f: c for f, c in self._owners.items() if (self.root / f).exists()}

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _used(self, client: str | None = None) -> int:
        """Bytes staged now, by everyone or by ``client``."""
        if client is None:
            folders = _entries(self.root)
        else:
            folders = [self.root / f for f, c in list(self._owners.items()) if c == client]
        total = 0
        for folder in folders:
            with contextlib.suppress(OSError):
                total += sum(f.stat().st_size for f in folder.iterdir()) if folder.is_dir() else folder.stat().st_size
        return total


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB // 10 else f"{n / 1024:.0f} KB"


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _remove_if_older(entry: Path, cutoff: float) -> None:
    with contextlib.suppress(OSError):
        if entry.lstat().st_mtime < cutoff:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()


def _is_ref_folder(name: str) -> bool:
    return len(name) == 32 and set(name) <= _REF_CHARS


def add_upload_route(app: FastAPI, staging: Staging, upload_limit: int) -> None:
    """``POST /gradio_api/upload`` in place of Gradio's (the key, origin and body size are checked
    before this runs, by ``Guard``)."""

    @app.post("/gradio_api/upload", include_in_schema=False)
    async def gradio_upload(request: Request) -> JSONResponse:
        try:
            form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=8)
        except HTTPException as exc:  # Guard's count of a body sent without Content-Length (chunked)
            if exc.status_code == 413:
                return JSONResponse({"error": upload_too_large(upload_limit)}, status_code=413)
            return JSONResponse({"error": f"bad upload: {exc.detail}"}, status_code=exc.status_code)
        except Exception as exc:  # starlette says 'Too many files' etc. as a parser error
            return JSONResponse({"error": f"bad upload: {getattr(exc, 'detail', exc)}"}, status_code=400)
        try:
            files = [v for k, v in form.multi_items() if k == "files" and isinstance(v, UploadFile)]
            if not files:
                raise ConfigError("upload.none")
            names = [safe_filename(f.filename or "") for f in files]
            client = client_key(request.client.host if request.client else None)
            refs = _stage_all(staging, names, files, upload_limit, client)
        except UploadTooLarge as exc:
            return JSONResponse({"error": str(exc)}, status_code=413)
        except ConfigError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        finally:
            await form.close()
        return JSONResponse(refs)


def _stage_all(staging: Staging, names: list[str], files: list[UploadFile], limit: int, client: str) -> list[str]:
    """Stage every file or none: a refusal part-way removes the ones already staged."""
    refs: list[str] = []
    total = 0
    try:
        for name, f in zip(names, files, strict=True):
            total += f.size or 0
            if total > limit:
                raise UploadTooLarge("upload.over_limit", limit=limit / 1024 / 1024)
            refs.append(staging.stage(name, f.file, limit, client))
    except BaseException:
        for ref in refs:
            staging.release(ref)
        raise
    return refs


__all__ = ["Staging", "add_upload_route", "client_key", "gradio_cache"]
