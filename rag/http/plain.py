"""Document text kept plain where a client renders Markdown, and the answer's own citation markers told
apart from ``[n]`` written in a document.

A document may hold ``[3]``, ``[x](javascript:…)`` or ``<img onerror=…>``; an extractive answer quotes
document text verbatim (whitespace runs collapsed), so its words are the document's. ``quoted_spans``
finds where an answer repeats its citations' quotes, ``own_markers`` the ``[n]`` the generator placed
(outside those spans, for a passage the answer really cites), and ``escape_markdown`` turns text into
Markdown that a chat app shows as the same plain text: no link, image, emphasis, HTML or autolink.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MARKER = re.compile(r"\[(\d{1,3})\]")  # the form the generators place: [n]
MAX_QUOTES = 50  # an answer cites a few passages; more quotes are not searched for
# ASCII punctuation that starts or ends Markdown (links, images, emphasis, code, tables, math,
# autolinks' "scheme:" and "user@"): each is shown as itself when backslash-escaped (CommonMark).
# An underscore between two letters or digits (000_e583.txt) never emphasises, so it is left alone.
_MARKDOWN = re.compile(r"[\\`*{}\[\]()#!|~:@$^]|(?<![^\W_])_|_(?![^\W_])")
_WWW = re.compile(r"(?i)(?<![\w.])(www)\.")  # GFM links "www.x.y" without a scheme
# what makes a line a list item, a heading's underline or a thematic break: "- ", "+ ", "1. ", "2) ", "==="
_LINE_START = re.compile(r"(?m)^([ \t]*)([-+=](?=[-+= \t]|$)|\d{1,9}(?=[.)](?:[ \t]|$)))")
_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_SPACE = re.compile(r"\s+")


def escape_markdown(text: str, *, one_line: bool = False) -> str:
    """``text`` as Markdown that renders as exactly ``text``: markup characters backslash-escaped and
    ``< > &`` as entities; ``one_line`` also folds line breaks (a quote in a list of sources)."""
    if one_line:
        text = _SPACE.sub(" ", text).strip()
    text = _MARKDOWN.sub(lambda m: "\\" + m.group(), text.translate(_HTML))
    text = _LINE_START.sub(_escape_line_start, text)
    return _WWW.sub(r"\1\\.", text)


def _escape_line_start(m: re.Match[str]) -> str:
    lead, mark = m.group(1), m.group(2)
    return f"{lead}{mark}\\" if mark[0].isdigit() else f"{lead}\\{mark}"  # "1\." or "\-"


def quoted_spans(text: str, quotes: Iterable[str]) -> list[tuple[int, int]]:
    """Where ``text`` repeats one of ``quotes`` (whitespace runs matching any whitespace), merged and sorted."""
    spans: list[tuple[int, int]] = []
    for quote in list(dict.fromkeys(q.strip() for q in quotes if q and q.strip()))[:MAX_QUOTES]:
        pattern = r"\s+".join(re.escape(part) for part in quote.split())
        spans.extend(m.span() for m in re.finditer(pattern, text))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def own_markers(text: str, cited: Iterable[int], quotes: Iterable[str]) -> list[re.Match[str]]:
    """The ``[n]`` markers of ``text`` that are the answer's own citations: ``n`` is cited and the marker
    is not inside a quote of document text (where a ``[3]`` is the document's, not a citation)."""
    numbers = set(cited)
    spans = quoted_spans(text, quotes)
    return [m for m in MARKER.finditer(text)
            if int(m[1]) in numbers and not any(s <= m.start() and m.end() <= e for s, e in spans)]


def plain_answer(text: str, quotes: Iterable[str]) -> str:
    """An answer as Markdown: what it quotes of the documents escaped; the generator's own words (an
    LLM's Markdown) and its citation markers as written."""
    out, pos = [], 0
    for start, end in quoted_spans(text, quotes):
        out += [text[pos:start], escape_markdown(text[start:end])]
        pos = end
    out.append(text[pos:])
    return "".join(out)


__all__ = ["MARKER", "escape_markdown", "own_markers", "plain_answer", "quoted_spans"]
