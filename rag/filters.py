"""Metadata filters for search and ask: by document, by article, by date range.

    {"doc": "000_*.txt", "article": "数字潮涌", "date_from": "2023-01-01", "date_to": "2023-12-31"}

``doc`` matches document ids (shell-style wildcards allowed), ``article`` is a
substring of the article title, and a date range keeps only chunks whose date
is known and inside it.

Filters arrive from the network, so their size is bounded before any matching:
a value is at most ``MAX_VALUE_CHARS`` characters and a ``doc`` pattern holds at
most ``MAX_WILDCARDS`` wildcards. The pattern is compiled once per request and
tried once per document (not per chunk); ``fnmatch`` compiles ``*`` runs into
atomic look-ahead groups, so a bounded pattern matches in time linear in the id.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from rag.errors import ConfigError
from rag.text.unicode import is_encodable
from rag.types import Chunk


@dataclass(frozen=True)
class Filter:
    """What a filter's keys mean, the one place every store takes them from (None: not given).

    A chunk passes when it passes every key given: ``doc``, a pattern its document id matches
    (``matching_docs``, tried once per document); ``article``, a part of its article title;
    ``date_from`` and ``date_to``, bounds (inclusive; ISO dates compare as text) of its date, which
    must be known. The FAISS snapshot asks this per chunk (``allowed_positions``), the segmented
    store once per distinct title and date of a segment, and the Milvus store translates it into
    an expression over the same fields (``rag.storage.milvus.client.filter_expression``)."""

    doc: str | None = None
    article: str | None = None
    date_from: str | None = None
    date_to: str | None = None

    @classmethod
    def of(cls, filters: Mapping[str, str]) -> Filter:
        """The filter of validated filters (``validate``)."""
        return cls(**{key: filters.get(key) for key in KEYS})

    @property
    def dated(self) -> bool:
        """Whether a date range is given (and so a chunk of unknown date fails)."""
        return self.date_from is not None or self.date_to is not None

    def docs(self, doc_ids: set[str]) -> set[str] | None:
        """The ids of ``doc_ids`` that ``doc`` selects; None when there is no doc filter."""
        return matching_docs(doc_ids, self.doc)

    def article_passes(self, article: str | None) -> bool:
        """Whether a chunk with this article title (None: none) passes ``article``."""
        return self.article is None or self.article in (article or "")

    def date_passes(self, date: str | None) -> bool:
        """Whether a chunk of this date (None or "": unknown) passes the date range."""
        if not self.dated:
            return True
        if not date:
            return False
        return not (self.date_from is not None and date < self.date_from) and not (
            self.date_to is not None and date > self.date_to)

    def labels_pass(self, article: str | None, date: str | None) -> bool:
        """Whether a chunk with this article title and date passes (its document aside: see ``docs``)."""
        return self.article_passes(article) and self.date_passes(date)


KEYS = tuple(f.name for f in fields(Filter))  # ("doc", "article", "date_from", "date_to")
MAX_VALUE_CHARS = 256  # document ids and article titles are far shorter
MAX_WILDCARDS = 16  # '*', '?' and '[' together; glob cost grows with their number
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse(items: Sequence[str]) -> dict[str, str]:
    """``["doc=a.txt", "date_from=2023-01-01"]`` (the CLI's --filter) → a filter dict."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise ConfigError("filter.malformed", keys=", ".join(KEYS), item=item)
        out[key.strip()] = value.strip()
    return validate(out)


def validate(filters: Mapping[str, Any] | None) -> dict[str, str]:
    if not filters:
        return {}
    unknown = [k for k in filters if k not in KEYS]
    if unknown:
        # shown with repr, cut: a key is client text (a lone surrogate, a megabyte, markup)
        shown = ", ".join(repr(str(k)[:40]) for k in unknown[:5]) + (", …" if len(unknown) > 5 else "")
        raise ConfigError("filter.unknown", names=shown, keys=", ".join(KEYS))
    out = {k: str(v) for k, v in filters.items() if v not in (None, "")}
    for key, value in out.items():
        check_text(value, f"filter {key}", MAX_VALUE_CHARS)
    if "doc" in out:
        wild = sum(out["doc"].count(c) for c in "*?[")
        if wild > MAX_WILDCARDS:
            raise ConfigError("filter.too_many_wildcards", limit=MAX_WILDCARDS, n=wild)
    for key in ("date_from", "date_to"):
        if key in out and not _ISO.match(out[key]):
            raise ConfigError("filter.bad_date", key=key, value=out[key])
    return out


def allowed_positions(chunks: Sequence[Chunk], filters: Mapping[str, str]) -> np.ndarray | None:
    """Positions of the chunks that pass ``filters`` (None when there is no filter)."""
    if not filters:
        return None
    spec = Filter.of(filters)
    docs = spec.docs({c.doc_id for c in chunks})
    keep = [i for i, c in enumerate(chunks)
            if (docs is None or c.doc_id in docs) and spec.labels_pass(c.meta.get("article"), c.meta.get("date"))]
    return np.asarray(keep, dtype=np.int64)


def matching_docs(doc_ids: set[str], pattern: str | None) -> set[str] | None:
    """The ids ``pattern`` selects, matched once per document; None when there is no doc filter."""
    if pattern is None:
        return None
    matcher = re.compile(fnmatch.translate(pattern), re.DOTALL).match
    return {d for d in doc_ids if d == pattern or matcher(d)}


def check_text(value: str, what: str, max_chars: int) -> str:
    """``value`` if it is text a client may send: bounded, no NUL, no lone UTF-16 surrogate."""
    if len(value) > max_chars:
        raise ConfigError("text.too_long", what=what, n=len(value), limit=max_chars)
    if "\x00" in value:
        raise ConfigError("text.nul", what=what)
    if not is_encodable(value):
        raise ConfigError("text.surrogate", what=what)
    return value
