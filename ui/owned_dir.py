"""A private temporary folder owned by this process for its lifetime, and reclaimed after a crash.

``atexit`` removes the folder when the server stops, but not after a kill -9 or a power cut: each
start would leave another folder of staged uploads (up to the staging cap) in the system's
temporary folder for ever. So the owner holds an exclusive ``flock`` on a file inside its folder
for as long as it runs; the kernel releases it when the process dies, however it dies. At each
start, every folder of the same prefix whose lock can be taken has no living owner and is removed;
one whose lock is held belongs to another server still running and is left alone.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

LOCK_NAME = ".owner.lock"
_held: list[int] = []  # the lock files' descriptors: open for the life of the process


def owned_temp_folder(prefix: str, parent: str | Path | None = None) -> Path:
    """A new 0700 folder ``<parent>/<prefix>XXXX``, locked for this process and removed at exit;
    the folders of dead owners of the same prefix under ``parent`` are removed first."""
    parent = Path(parent or tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    reclaim_abandoned(parent, prefix)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent)).resolve()
    fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new and ours alone: cannot be held by another
    _held.append(fd)
    atexit.register(shutil.rmtree, path, True)
    return path


def reclaim_abandoned(parent: Path, prefix: str) -> list[Path]:
    """Remove the folders ``parent/<prefix>*`` of this user whose owner is gone; returns them."""
    removed = []
    for folder in sorted(parent.glob(f"{prefix}*")):
        if _abandoned(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _abandoned(folder: Path) -> bool:
    """True when ``folder`` is a real folder of this user whose lock file no process holds. A folder
    without a lock file is some other program's (or is still being made): never taken."""
    try:
        if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
            return False
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held: its server is running
        return False
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)  # closing drops the lock we may have taken; the folder goes next
    return True


__all__ = ["LOCK_NAME", "owned_temp_folder", "reclaim_abandoned"]
