"""This server's staging folder for the chat's uploads, and the upload route that fills it.

The chat's file box sends each chosen file to ``POST /gradio_api/upload`` before the user presses
"Add to index". Gradio's own route takes any type, any number, keeps the files for ever and answers
with absolute server paths; this one replaces it (it is registered before Gradio is mounted, so it
takes precedence): names and types are checked as in the HTTP API, the count and total size are
bounded, each file lands in a random folder of a per-server staging directory, and the client gets
back only a reference ``<random>/<name>``. ``Guard`` maps those references, and nothing else, back
to files (see ``rag.http.guard``). Staged files are deleted once indexed, after ``max_age`` seconds
if never used, and with the whole folder when the server stops.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from rag.errors import ConfigError
from rag.uploads import MAX_UPLOAD_FILES, UploadTooLarge, copy_bounded, safe_filename

_REF_CHARS = frozenset("0123456789abcdef")


class Staging:
    """A private temporary folder: ``root/<32 hex>/<safe name>``, one file per random folder."""

    def __init__(self, max_age: float = 3600.0, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rag-chat-uploads-")).resolve()
        self.max_age = max_age
        self.max_bytes = max_bytes  # all staged files together: a full folder refuses, it does not grow

    # ---- filling ---------------------------------------------------------------------------
    def stage(self, name: str, stream: BinaryIO, limit: int) -> str:
        """Copy ``stream`` to a new staged file named ``name``; returns its reference."""
        self.sweep()
        if self._used() + min(limit, self.max_bytes) > self.max_bytes:
            raise UploadTooLarge("the server's upload staging folder is full; add or clear staged files first")
        ref = f"{uuid.uuid4().hex}/{name}"
        dest = self.root / ref
        dest.parent.mkdir(mode=0o700)
        try:
            copy_bounded(stream, dest, name, limit)
        except BaseException:
            shutil.rmtree(dest.parent, ignore_errors=True)
            raise
        return ref

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

    def release(self, path: str | Path) -> None:
        """Delete a staged file and its folder (after indexing, or when it is refused)."""
        resolved = self.resolve(str(path))
        if resolved is not None:
            shutil.rmtree(Path(resolved).parent, ignore_errors=True)

    # ---- housekeeping ----------------------------------------------------------------------
    def sweep(self) -> None:
        """Remove staged entries older than ``max_age`` (files chosen but never added)."""
        cutoff = time.time() - self.max_age
        for entry in self._entries():
            with contextlib.suppress(OSError):
                if entry.lstat().st_mtime < cutoff:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink()

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _entries(self) -> list[Path]:
        try:
            return list(self.root.iterdir())
        except OSError:
            return []

    def _used(self) -> int:
        total = 0
        for folder in self._entries():
            with contextlib.suppress(OSError):
                total += sum(f.stat().st_size for f in folder.iterdir()) if folder.is_dir() else folder.stat().st_size
        return total

    @contextlib.contextmanager
    def as_gradio_temp_dir(self) -> Iterator[None]:
        """Gradio reads ``GRADIO_TEMP_DIR`` when its components and app are created: pointing it at
        this folder for that moment makes it this server's only upload and cache folder."""
        before = os.environ.get("GRADIO_TEMP_DIR")
        os.environ["GRADIO_TEMP_DIR"] = str(self.root)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("GRADIO_TEMP_DIR", None)
            else:
                os.environ["GRADIO_TEMP_DIR"] = before


def _is_ref_folder(name: str) -> bool:
    return len(name) == 32 and set(name) <= _REF_CHARS


def add_upload_route(app: FastAPI, staging: Staging, upload_limit: int) -> None:
    """``POST /gradio_api/upload`` in place of Gradio's (the key, origin and body size are checked
    before this runs, by ``Guard``)."""

    @app.post("/gradio_api/upload", include_in_schema=False)
    async def gradio_upload(request: Request) -> JSONResponse:
        try:
            form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=8)
        except Exception as exc:  # starlette says 'Too many files' etc. as an HTTPException or parser error
            return JSONResponse({"error": f"bad upload: {getattr(exc, 'detail', exc)}"}, status_code=400)
        try:
            files = [v for k, v in form.multi_items() if k == "files" and isinstance(v, UploadFile)]
            if not files:
                raise ConfigError("no files were uploaded")
            names = [safe_filename(f.filename or "") for f in files]
            refs = _stage_all(staging, names, files, upload_limit)
        except UploadTooLarge as exc:
            return JSONResponse({"error": str(exc)}, status_code=413)
        except ConfigError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        finally:
            await form.close()
        return JSONResponse(refs)


def _stage_all(staging: Staging, names: list[str], files: list[UploadFile], limit: int) -> list[str]:
    """Stage every file or none: a refusal part-way removes the ones already staged."""
    refs: list[str] = []
    total = 0
    try:
        for name, f in zip(names, files, strict=True):
            total += f.size or 0
            if total > limit:
                raise UploadTooLarge(f"upload too large: the limit is {limit / 1024 / 1024:g} MB (RAG_MAX_UPLOAD_MB)")
            refs.append(staging.stage(name, f.file, limit))
    except BaseException:
        for ref in refs:
            staging.release(ref)
        raise
    return refs


__all__ = ["Staging", "add_upload_route"]
