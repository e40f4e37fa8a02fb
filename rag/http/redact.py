"""What a client may read of a server-side message: names, never the server's folders, and valid Unicode.

The library's errors name files by path for the operator (``index at /srv/rag/kbs/news is being
written``, ``/srv/rag/index/manifest.json is not valid JSON``); an HTTP client or a chat user gets
the last part only (``news``, ``manifest.json``). A path is an absolute one whose first folder exists
on this machine (``/api/kbs`` in a message is a route, not a path) or one under a folder the caller
names (the index and knowledge-base folders, which the settings may give as relative paths).
Text echoed from a request may hold a lone UTF-16 surrogate, which JSON carries but UTF-8 cannot
encode: it is shown as its escape (``\\ud800``), so writing the message cannot fail.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from pathlib import Path

# a path segment: no whitespace, quotes, brackets or separators a message puts around a path
_SEGMENT = r"[^\s/'\"()<>\[\],;:]+"
_ABSOLUTE = re.compile(rf"(?<![\w./~-])/{_SEGMENT}(?:/{_SEGMENT})*/?")


def public_message(message: str, folders: Iterable[str | os.PathLike[str]] = ()) -> str:
    """``message`` with each server path replaced by its last part and lone surrogates escaped."""
    for folder in sorted({str(f).rstrip("/") for f in folders if "/" in str(f).strip("/")}, key=len, reverse=True):
        under = re.compile(rf"(?<![\w./~-]){re.escape(folder)}(?:/{_SEGMENT})*/?")
        message = under.sub(_last_part, message)
    message = _ABSOLUTE.sub(lambda m: _last_part(m) if _is_server_path(m.group()) else m.group(), message)
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def _last_part(match: re.Match[str]) -> str:
    return Path(match.group().rstrip("/")).name or "/"


def _is_server_path(path: str) -> bool:
    return _top_level_exists(path.lstrip("/").split("/", 1)[0])


@functools.lru_cache(maxsize=256)
def _top_level_exists(name: str) -> bool:
    return os.path.lexists(f"/{name}")


__all__ = ["public_message"]
