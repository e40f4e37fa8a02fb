"""Keep an index in step with folders: re-index when files are added, changed or removed, until stopped.

``rag index --watch DIR`` and ``rag serve --watch`` use ``watch``. Each burst of file events (an editor's
save, a copy of many files) is debounced into one ``RAG.index(paths)``: the same incremental path as
``rag index``, so only new and changed files are read and embedded, files gone from the folders are
dropped, and document ids stay the ones ``rag index DIR`` gives. The events come from the operating
system (watchfiles: inotify here), not from polling the folders.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, RagError
from rag.ingest.files import SUPPORTED_SUFFIXES
from rag.types import IndexReport

_log = logging.getLogger(__name__)
DEBOUNCE_MS = 1600  # watchfiles' default: a burst of events within this long is one change


def indexable(path: str | Path, roots: Sequence[Path]) -> bool:
    """Whether an event's path is a file ``rag index`` would read under one of ``roots``: a supported
    suffix, and no hidden file or folder below the root (as ``rag.ingest.files`` walks them)."""
    p = Path(path).resolve()
    if p.suffix.lower() not in SUPPORTED_SUFFIXES:
        return False
    for root in roots:
        if p == root:
            return True
        if p.is_relative_to(root):
            return not any(part.startswith(".") for part in p.relative_to(root).parts)
    return False


def watch(rag: Any, paths: Sequence[str | Path], *, stop: threading.Event | None = None,
          on_report: Callable[[IndexReport], None] | None = None, debounce_ms: int = DEBOUNCE_MS,
          initial: bool = True) -> int:
    """Index ``paths`` (unless ``initial`` is False), then re-index them after every burst of changes to
    indexable files under them, until ``stop`` is set or Ctrl-C. Returns how many re-indexings ran.

    A failed re-indexing (a file that cannot be read is only skipped; this is e.g. a full disk) is
    logged and watching goes on: the index stays the last one committed."""
    import watchfiles  # noqa: PLC0415 - only `--watch` needs it

    folders = [Path(p).expanduser() for p in paths]
    missing = [str(p) for p in folders if not p.exists()]
    if missing:
        raise ConfigError(f"cannot watch {', '.join(missing)}: no such file or folder")
    roots = [p.resolve() for p in folders]
    report = on_report or (lambda r: None)
    if initial:
        report(rag.index(folders))
    runs = 0
    for changes in watchfiles.watch(*folders, stop_event=stop, debounce=debounce_ms, raise_interrupt=False,
                                    watch_filter=lambda _change, path: indexable(path, roots)):
        _log.info("%d file change(s) under %s", len(changes), ", ".join(map(str, folders)))
        try:
            report(rag.index(folders))
        except RagError as exc:
            _log.error("re-indexing after a change failed (the index stays as it was): %s", exc)
        runs += 1
    return runs


def watch_in_background(rag: Any, paths: Sequence[str | Path], **options: Any) -> tuple[threading.Thread, threading.Event]:
    """``watch`` on a daemon thread (``rag serve --watch``): the server answers while files are indexed;
    set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(rag, paths), kwargs={"stop": stop, **options},
                              name="rag-watch", daemon=True)
    thread.start()
    return thread, stop


__all__ = ["DEBOUNCE_MS", "indexable", "watch", "watch_in_background"]
