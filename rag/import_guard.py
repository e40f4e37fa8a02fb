"""Leave a module out of one import, in the importing thread only.

Two libraries import, at their own import, something they can do without and say so in their code (they
catch the ImportError): jieba imports setuptools' deprecated ``pkg_resources`` (~60 ms and a warning) to
open its own data files, and ``openvino`` imports its model converter (~40 ms, and with it the usage
telemetry). ``without`` makes those imports fail for the calling thread while its block runs, so the
library takes its own fallback; any other thread imports them as usual (a Milvus store opening beside
jieba's warm-up thread imports ``pkg_resources``). ``sys.modules[name] = None`` would do the same for
every thread at once.

The finder is put first on ``sys.meta_path`` once and never taken out: removing a finder from that list
while another thread walks it could make that thread skip the next one.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_LOCK = threading.Lock()


class _Guard(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.blocked: dict[int, frozenset[str]] = {}  # thread id -> the modules it imports without

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name in self.blocked.get(threading.get_ident(), ()):
            raise ModuleNotFoundError(f"{name} is left out of this import (rag.import_guard)", name=name)
        return None


_GUARD = _Guard()


@contextmanager
def without(names: Iterable[str]) -> Iterator[None]:
    """Imports of ``names`` (exact module names, not yet imported) fail in this thread inside the block."""
    me = threading.get_ident()
    with _LOCK:
        if _GUARD not in sys.meta_path:
            sys.meta_path.insert(0, _GUARD)
    before = _GUARD.blocked.get(me)
    _GUARD.blocked[me] = frozenset(names) | (before or frozenset())
    try:
        yield
    finally:
        if before is None:
            _GUARD.blocked.pop(me, None)
        else:
            _GUARD.blocked[me] = before


def blocked_here() -> frozenset[str]:
    """The modules this thread imports without, now."""
    return _GUARD.blocked.get(threading.get_ident(), frozenset())


__all__ = ["blocked_here", "without"]
