"""Uploads stored under ``<index_dir>/documents/``: names made safe, written atomically, indexed, deleted.

Shared by every way a file reaches the server (the HTTP API, the chat); nothing here knows about HTTP.
``add_uploads`` saves and indexes a batch, ``delete_document`` removes a document and its stored
upload, ``index_pending_uploads`` settles at start what an earlier run left: writes a crash interrupted
are finished or undone, uploads it did not index are indexed, and ones the loaders refuse are removed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import unicodedata
import uuid
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from rag.errors import ConfigError, RagError
from rag.filters import check_text
from rag.ingest.files import SUPPORTED_SUFFIXES
from rag.pipeline import RAG

# Every format the loaders read, PDF and DOCX included: an upload is read by the same loaders, behind the
# same bounds (rag.ingest.archive, rag.ingest.limits), as a file indexed from a folder.
UPLOAD_SUFFIXES = tuple(sorted(SUPPORTED_SUFFIXES))  # exactly what the loaders read
MAX_UPLOAD_FILES = 20
MAX_NAME_BYTES = 200
MAX_DOC_ID_CHARS = 1024  # a document id is a relative path; longer ones cannot exist on disk

_log = logging.getLogger(__name__)
_upload_locks: weakref.WeakKeyDictionary[RAG, threading.Lock] = weakref.WeakKeyDictionary()
_upload_locks_guard = threading.Lock()


class UploadTooLarge(RagError):
    """An upload is over ``RAG_MAX_UPLOAD_MB``."""

    http_status = 413


def max_upload_bytes(value: float) -> int:
    """``value`` MB in bytes (``ConfigError`` unless positive)."""
    if value <= 0:
        raise ConfigError("upload.bad_limit", value=value)
    return int(value * 1024 * 1024)


def safe_filename(name: Any) -> str:
    """The base name an upload is stored under; ``ConfigError`` if nothing usable is left.

    Directory parts (``/`` and ``\\``) are dropped, control and invisible format characters
    (e.g. right-to-left overrides) removed, leading dots stripped (no hidden files, no ``..``),
    and the suffix must be one the loaders read.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("upload.no_name")
    if "\x00" in name:
        raise ConfigError("upload.name_nul")
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().lstrip(".").strip()
    if not base:
        raise ConfigError("upload.bad_name", name=name)
    suffix = Path(base).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ConfigError("upload.unsupported_type", suffix=suffix or "(none)", name=base,
                          allowed=", ".join(UPLOAD_SUFFIXES))
    while len(base.encode()) > MAX_NAME_BYTES:  # keep the suffix, shorten the stem
        stem = base[: -len(suffix)]
        base = stem[:-1] + suffix
    return base


def check_doc_id(doc_id: Any) -> str:
    """A document id a client may name: text of a bounded length, without NUL or control characters."""
    if not isinstance(doc_id, str) or not doc_id:
        raise ConfigError("document.id_required")
    check_text(doc_id, "document id", MAX_DOC_ID_CHARS)
    if any(unicodedata.category(ch) == "Cc" for ch in doc_id):
        raise ConfigError("document.id_control", doc_id=doc_id[:80])
    return doc_id


def documents_dir(rag: RAG) -> Path:
    """Where uploads are kept: ``<index_dir>/documents/``."""
    return Path(rag.index_dir) / "documents"


# ---- adding ------------------------------------------------------------------------------------
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
    names = _checked_names(files)
    folder = documents_dir(rag)
    with _upload_lock(rag):
        stored = _stored_names(rag, names)
        folder.mkdir(parents=True, exist_ok=True)
        saved = _save_all(folder, [stored[name] for name in names], [stream for _, stream in files], limit)
        report = _index_saved(rag, saved)
    renamed = {name: to for name, to in stored.items() if to != name}
    return dataclasses.replace(report, renamed=renamed) if renamed else report


def _checked_names(files: Sequence[tuple[str, BinaryIO]]) -> list[str]:
    """The safe name of every upload, or ``ConfigError`` before anything is written."""
    if not files:
        raise ConfigError("upload.none")
    if len(files) > MAX_UPLOAD_FILES:
        raise ConfigError("upload.too_many_files", limit=MAX_UPLOAD_FILES, n=len(files))
    names = [safe_filename(name) for name, _ in files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError("upload.name_clash", names=", ".join(dupes))
    return names


def _upload_lock(rag: RAG) -> threading.Lock:
    with _upload_locks_guard:
        return _upload_locks.setdefault(rag, threading.Lock())


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


def _save_all(folder: Path, names: Sequence[str], streams: Sequence[BinaryIO],
              limit: int) -> list[tuple[Path, Path | None]]:
    """Every upload saved, each as (file, backup of the file it replaced); or, on any failure, none."""
    saved: list[tuple[Path, Path | None]] = []
    try:
        for name, stream in zip(names, streams, strict=True):
            saved.append(_save(folder, name, stream, limit))
    except BaseException:
        for path, backup in saved:
            _restore(path, backup)
        raise
    return saved


def _index_saved(rag: RAG, saved: Sequence[tuple[Path, Path | None]]) -> Any:
    """``rag.add`` the saved uploads: the ones the loaders reject are undone, the backups of the rest dropped."""
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
    return report


def _save(folder: Path, name: str, stream: BinaryIO, limit: int) -> tuple[Path, Path | None]:
    dest = folder / name
    tmp = folder / f".{name}.{uuid.uuid4().hex}.part"
    try:
        copy_bounded(stream, tmp, name, limit)
        backup = None
        if dest.exists():
            backup = folder / f".{name}.{uuid.uuid4().hex}.bak"
            os.replace(dest, backup)
        os.replace(tmp, dest)
        return dest, backup
    finally:
        tmp.unlink(missing_ok=True)


def copy_bounded(stream: BinaryIO, dest: Path, name: str, limit: int) -> None:
    """Copy ``stream`` to ``dest`` in 1 MiB blocks, stopping with ``UploadTooLarge`` past ``limit`` bytes
    (so an upload's size is enforced while it is read, not after)."""
    size = 0
    with dest.open("wb") as out:
        while block := stream.read(1024 * 1024):
            size += len(block)
            if size > limit:
                raise UploadTooLarge("upload.too_large", name=name, limit=limit / 1024 / 1024)
            out.write(block)


def _restore(path: Path, backup: Path | None) -> None:
    if backup is not None:
        os.replace(backup, path)
    else:
        path.unlink(missing_ok=True)


# ---- deleting and catching up ------------------------------------------------------------------
def delete_document(rag: RAG, doc_id: str) -> list[str]:
    """Remove a document from the index; its upload stored under ``documents/`` is deleted too.

    The stored file is first renamed to a hidden tombstone, then the index entry is removed,
    then the tombstone: a crash at any point never lets the next start re-index an upload
    whose delete was acknowledged (hidden files are not indexed).
    """
    check_doc_id(doc_id)
    folder = documents_dir(rag).resolve()
    stored = _stored_upload(folder, doc_id)
    tomb = None
    if stored is not None and any(d["doc_id"] == doc_id for d in rag.documents()):
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


def _stored_upload(folder: Path, doc_id: str) -> Path | None:
    """The upload stored under ``folder`` for ``doc_id``, or None. An id no file system can hold (a
    name over 255 bytes: ENAMETOOLONG) names no stored upload; that is not the server's error."""
    try:
        stored = (folder / doc_id).resolve()
        return stored if stored.parent == folder and stored.is_file() else None
    except OSError:
        return None


def index_pending_uploads(rag: RAG) -> Any:
    """Settle ``documents/`` at start: finish or undo writes a crash interrupted, then index the uploads
    whose embedding failed or was interrupted earlier. Returns the ``IndexReport`` (None if nothing to index).

    Never raises for a bad file: one the loaders refuse (damaged, a zip bomb, over a bound) is removed
    from the stored uploads, or its earlier version restored, and logged, so one hostile upload cannot
    stop every later start. An upload already indexed is kept even if the loaders refuse it now.
    """
    folder = documents_dir(rag)
    if not folder.is_dir():
        return None
    with _upload_lock(rag):
        backups = _recover(rag, folder)
        if not any(not p.name.startswith(".") for p in folder.iterdir()):
            _drop(backups.values())
            return None
        report = rag.add(folder)
        _settle_refused(rag, folder, report, backups)
    return report


# What a crash can leave: ".NAME.<hex>.part" (an upload being copied, see ``_save``), ".NAME.<hex>.bak"
# (the version an upload replaced, until the new one is indexed) and ".deleted-NAME" (``delete_document``).
_INTERRUPTED = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{32}\.(?P<kind>part|bak)")
_TOMBSTONE = ".deleted-"


def _recover(rag: RAG, folder: Path) -> dict[Path, Path]:
    """Undo what a crash left half-done in ``folder``; returns the backup of each upload whose replacement
    is in place but was never indexed (kept until ``_settle_refused`` knows whether the new one reads).

    A partial copy is removed; a replaced upload whose new version never arrived gets its earlier
    version back; a delete that never reached the index gets its file back, one that did loses its tombstone.
    """
    backups: dict[str, list[Path]] = {}
    for path in folder.iterdir():
        if not path.is_file():
            continue
        if path.name.startswith(_TOMBSTONE):
            _settle_tombstone(rag, folder, path)
        elif (m := _INTERRUPTED.fullmatch(path.name)) is not None:
            if m["kind"] == "part":
                _log.warning("removed %s: an upload interrupted while it was saved", path)
                path.unlink(missing_ok=True)
            else:
                backups.setdefault(m["name"], []).append(path)
    kept: dict[Path, Path] = {}
    for name, found in backups.items():
        found.sort(key=lambda p: p.stat().st_mtime_ns)  # after several crashes the newest is the latest version
        dest = folder / name
        if dest.exists():
            kept[dest.resolve()] = found.pop()
        else:
            _log.warning("restored %s: its replacement was interrupted before the new version was saved", dest)
            os.replace(found.pop(), dest)
        _drop(found)
    return kept


def _settle_tombstone(rag: RAG, folder: Path, tomb: Path) -> None:
    name = tomb.name.removeprefix(_TOMBSTONE)
    dest = folder / name
    if not dest.exists() and any(d["doc_id"] == name for d in rag.documents()):
        _log.warning("restored %s: its delete was interrupted before it reached the index", dest)
        os.replace(tomb, dest)
    else:
        tomb.unlink(missing_ok=True)


def _settle_refused(rag: RAG, folder: Path, report: Any, backups: dict[Path, Path]) -> None:
    """The stored uploads the loaders refused: the earlier version restored where there is one, else removed
    unless an earlier run indexed that very file; the remaining backups dropped (their new versions are indexed)."""
    root = folder.resolve()
    indexed = {Path(d["path"]).resolve() for d in rag.documents() if d.get("path")}
    for key, reason in (report.skipped or {}).items():
        path = (root / key).resolve()  # keys are paths; an absolute one stays itself
        if path.parent != root or not path.is_file():
            continue
        backup = backups.pop(path, None)
        if backup is not None:
            os.replace(backup, path)
            _log.warning("refused a stored upload, its earlier version restored: %s", reason)
        elif path not in indexed:
            path.unlink(missing_ok=True)
            _log.warning("refused a stored upload and removed it from %s: %s", folder, reason)
        else:
            _log.warning("refused a stored upload, kept since an earlier run indexed it: %s", reason)
    _drop(backups.values())


def _drop(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


__all__ = [
    "MAX_UPLOAD_FILES", "UPLOAD_SUFFIXES", "UploadTooLarge", "add_uploads", "check_doc_id", "delete_document",
    "documents_dir", "index_pending_uploads", "max_upload_bytes", "safe_filename",
]
