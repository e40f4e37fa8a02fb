"""The snapshot in force for one index folder, following the generations that other processes publish.

A ``rag serve`` and a ``rag index`` (or two servers) may share an index folder. Each save writes a
new generation and swaps ``manifest.json`` (see ``store``), so the manifest is the one place to
learn that another process has written: ``current()`` looks at its ``stat`` on every call (a
microsecond) and loads the newer generation when it changed. Writers call ``current()`` again
under the index's write lock, so they build on what is on disk, never on a stale copy in memory
(a lost update: the server's upload would drop the CLI's documents).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from rag.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from rag.storage.backend import IndexState, open_index
from rag.storage.manifest import MANIFEST, read_manifest

StatKey = tuple[int, int, int] | None


class LiveSnapshot:
    def __init__(self, index_dir: Path, snap: IndexState, check: Callable[[dict], None], *,
                 ignore_on_disk: bool = False) -> None:
        """``check`` vets a newer manifest before it is loaded (the embedder must be the same);
        ``ignore_on_disk`` (a rebuild from scratch) skips the generation there now, not later ones."""
        self.index_dir = index_dir
        self._snap = snap
        self._check = check
        self._lock = threading.Lock()
        self._stat = _stat(index_dir)
        self._generation = snap.manifest.get("generation") or (_generation_on_disk(index_dir) if ignore_on_disk else None)

    def current(self) -> IndexState:
        """The latest published snapshot (this process's own, or a newer one from another process)."""
        key = _stat(self.index_dir)
        if key == self._stat:
            return self._snap
        with self._lock:
            if key != self._stat:
                self._follow(key)
        return self._snap

    def publish(self, snap: IndexState) -> None:
        """``snap`` was just saved by this process (or is an unsaved empty start)."""
        with self._lock:
            self._snap = snap
            self._generation = snap.manifest.get("generation") or self._generation
            self._stat = _stat(self.index_dir)

    def _follow(self, key: StatKey) -> None:
        try:
            manifest = read_manifest(self.index_dir)
        except IndexNotFoundError:
            self._stat = key  # nothing published (yet): keep what is in memory
            return
        if manifest["generation"] != self._generation:
            snap = _load_settled(self.index_dir)
            self._check(snap.manifest)
            self._snap, self._generation = snap, snap.manifest["generation"]
        self._stat = key


def _load_settled(index_dir: Path, attempts: int = 3) -> IndexState:
    """Load the generation in force; a writer that swaps the manifest and removes the old
    generation while this reads makes files vanish under it, so try again (a bounded few times)."""
    for attempt in range(attempts):
        try:
            return open_index(index_dir)
        except IndexCorruptError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _stat(index_dir: Path) -> StatKey:
    try:
        st = os.stat(index_dir / MANIFEST)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


def _generation_on_disk(index_dir: Path) -> str | None:
    try:
        return read_manifest(index_dir)["generation"]
    except (IndexNotFoundError, IndexCorruptError, IndexMismatchError):
        return None


__all__ = ["LiveSnapshot"]
