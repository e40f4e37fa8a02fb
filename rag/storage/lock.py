"""One writer per index folder, across processes: an flock on ``<index>/.lock`` holding the writer's pid."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from rag.errors import IndexLockedError


@contextlib.contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """One writer per index directory, across processes (an flock on ``.lock``)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise IndexLockedError("index.locked", index_dir=index_dir, pid=holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
