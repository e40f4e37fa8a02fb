"""Metadata filters for search and ask: by document, by article, by date range.

    {"doc": "000_*.txt", "article": "数字潮涌", "date_from": "2023-01-01", "date_to": "2023-12-31"}

``doc`` matches document ids (shell-style wildcards allowed), ``article`` is a
substring of the article title, and a date range keeps only chunks whose date
is known and inside it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ConfigError
from .types import Chunk

KEYS = ("doc", "article", "date_from", "date_to")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse(items: Sequence[str]) -> dict[str, str]:
    """``["doc=a.txt", "date_from=2023-01-01"]`` (the CLI's --filter) → a filter dict."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise ConfigError(f"a filter is KEY=VALUE with KEY one of {', '.join(KEYS)}. Currently, it is {item!r}")
        out[key.strip()] = value.strip()
    return validate(out)


def validate(filters: Mapping[str, Any] | None) -> dict[str, str]:
    if not filters:
        return {}
    unknown = sorted(set(filters) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown filter(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    out = {k: str(v) for k, v in filters.items() if v not in (None, "")}
    for key in ("date_from", "date_to"):
        if key in out and not _ISO.match(out[key]):
            raise ConfigError(f"{key} must be a date like 2023-08-03. Currently, it is {out[key]!r}")
    return out


def allowed_positions(chunks: Sequence[Chunk], filters: Mapping[str, str]) -> np.ndarray | None:
    """Positions of the chunks that pass ``filters`` (None when there is no filter)."""
    if not filters:
        return None
    keep = [i for i, c in enumerate(chunks) if _passes(c, filters)]
    return np.asarray(keep, dtype=np.int64)


def _passes(chunk: Chunk, f: Mapping[str, str]) -> bool:
    if "doc" in f and not (chunk.doc_id == f["doc"] or fnmatch.fnmatchcase(chunk.doc_id, f["doc"])):
        return False
    if "article" in f and f["article"] not in (chunk.meta.get("article") or ""):
        return False
    if "date_from" in f or "date_to" in f:
        date = chunk.meta.get("date")
        if not date:
            return False
        if "date_from" in f and date < f["date_from"]:
            return False
        if "date_to" in f and date > f["date_to"]:
            return False
    return True
