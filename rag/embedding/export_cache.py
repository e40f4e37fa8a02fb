"""Housekeeping of the OpenVINO export cache (``RAG_CACHE_DIR/openvino``): exports keyed by what they are
made from, and a bound on how many are kept.

An export (the IR and OpenVINO's compiled blob: ~90 MB for e5-small, ~900 MB for the reader) used to be
keyed by its source's path, size and mtime. Every copy of the same model under another path (a second
checkout, a CI clone, a benchmark's archived baseline, a test's temporary folder) then exported it
again, and nothing was ever removed: one workstation's cache had grown to 34 GB of identical readers.
Now the key is the SHA-256 of the source files' bytes, so copies share one export; and once a new export
is written, the exports of the same kind beyond the ``KEEP`` most recently used are removed.

Hashing the reader's and the model's ~470 MB files would cost a cold ``rag ask`` ~0.5 s, so each file's
digest is remembered (``digests.json`` in the cache, keyed by path, size and mtime): a process stats the
files, and hashes only a file it has not seen in that state.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from rag.files import write_atomic

DIGESTS = "digests.json"
MAX_DIGESTS = 512  # remembered files; the oldest go first
KEEP = 4  # exports of one kind (one name prefix) kept, by last use
RECENT_S = 3600.0  # an export used within the last hour is never removed: another process may be loading it
_LOCK = threading.Lock()
# stamp (path, size, mtime) -> digest, as this process has read or computed them: a stamp names one state
# of one file, so what any cache root's memo says of it holds everywhere
_SEEN: dict[str, str] = {}


def content_key(root: Path, files: Iterable[Path], salt: object = "") -> str:
    """A 16-hex-digit key of ``salt`` and the bytes of ``files`` (those that exist; their names count, not
    their folders), remembered under ``root``."""
    h = hashlib.sha256(str(salt).encode())
    for f in files:
        if f.is_file():
            h.update(f"|{f.name}:{file_digest(root, f)}".encode())
    return h.hexdigest()[:16]


def file_digest(root: Path, path: Path) -> str:
    """The SHA-256 of ``path``'s bytes, from the memo under ``root`` while the file's size and mtime are
    those it was hashed at."""
    st = path.stat()
    stamp = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    with _LOCK:
        if stamp not in _SEEN:
            _SEEN.update(_read(root))  # the memo file once a process, not once a file and call
        if stamp in _SEEN:
            return _SEEN[stamp]
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    with _LOCK:
        memo = _read(root)  # another process may have added entries meanwhile
        memo.pop(stamp, None)
        memo[stamp] = digest  # last: the newest
        _write(root, dict(list(memo.items())[-MAX_DIGESTS:]))
        _SEEN[stamp] = digest
    return digest


def mark_used(folder: Path) -> None:
    """Note that ``folder`` was used now (its mtime), for ``prune``; a read-only cache is left as it is."""
    with contextlib.suppress(OSError):
        os.utime(folder)


def prune(folder: Path, prefix: str, keep: int = KEEP, now: float | None = None) -> list[Path]:
    """Remove the exports ``<prefix>-<key>`` beside ``folder`` beyond the ``keep`` most recently used,
    never ``folder`` itself nor one used within ``RECENT_S``; the removed ones."""
    now = time.time() if now is None else now
    siblings = []
    for p in folder.parent.glob(f"{prefix}-*"):
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink() and p.name[len(prefix) + 1 :].isalnum():
                siblings.append((p.stat().st_mtime, p))
    siblings.sort(reverse=True)
    removed = []
    for mtime, p in siblings[keep:]:
        if p != folder and now - mtime > RECENT_S:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _read(root: Path) -> dict[str, str]:
    try:
        memo = json.loads((root / DIGESTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in memo.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(memo, dict) else {}


def _write(root: Path, memo: dict[str, str]) -> None:
    """A cache that cannot be written only forgets (the next process hashes again)."""
    with contextlib.suppress(OSError):
        root.mkdir(parents=True, exist_ok=True)
        write_atomic(root / DIGESTS, json.dumps(memo))


__all__ = ["DIGESTS", "KEEP", "MAX_DIGESTS", "RECENT_S", "content_key", "file_digest", "mark_used", "prune"]
