"""Repair newspaper layout damage while keeping a map from clean offsets back to the source.

Written by hand because no library knows this kind of damage: print layouts cut
words across paragraph breaks (``南洞艺`` / ``谷景区``), repeat a paragraph when a
column is re-flowed, and leave continuation markers such as ``《上接1版》``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

# 《上接1版》 （下转第3版） 【上接第二版】 ... alone on a line or inside one.
PAGE_MARKER = re.compile(
    r"[《（(【〈\[]\s*(?:上|下)\s*(?:接|转)\s*第?\s*[0-9０-９一二三四五六七八九十]+\s*(?:版|页|面)\s*[》）)】〉\]]"
)
# A paragraph ending in one of these is complete; anything else may be cut by the layout.
_CLOSED_END = set("。！？!?；;…”’」』）)】》〕\"'：:")
_LATIN_END = re.compile(r"[A-Za-z0-9]$")
_LATIN_START = re.compile(r"^[A-Za-z0-9]")
_BYLINE = re.compile(r"^(?:●|■|◆|（记者|\(记者|记者|本报记者|本报讯|新华社)")
# A paragraph shorter than this that ends without punctuation is taken for a heading.
HEADING_MAX_CHARS = 16
_INLINE_WS = re.compile(r"[ \t\u3000\xa0]+")


@dataclass
class CleanText:
    """Clean text plus, for each clean character, its offset in the source text."""

    text: str
    offsets: np.ndarray  # int32, len(text) + 1; offsets[len(text)] is the end of the last char + 1
    markers: list[int] = field(default_factory=list)  # source offsets of dropped page markers
    dropped: list[tuple[int, int]] = field(default_factory=list)  # source spans of repeated paragraphs
    joins: list[int] = field(default_factory=list)  # clean offsets where a layout break was repaired
    breaks: list[int] = field(default_factory=list)  # clean offsets where a page marker opened a new piece

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """Source offsets covering clean ``text[start:end]``."""
        if end <= start:
            s = int(self.offsets[start])
            return s, s
        return int(self.offsets[start]), int(self.offsets[end - 1]) + 1


@dataclass
class _Para:
    pieces: list[tuple[str, int]]  # (text, source offset of its first char) runs
    after_marker: bool = False  # a page marker stood before it: an article starts, never join

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.pieces)


def _paragraph(line: str, offset: int, markers: list[int]) -> _Para | None:
    """One source line → a paragraph with inner whitespace runs tidied and page markers removed."""
    pieces: list[tuple[str, int]] = []
    pos = 0
    for m in PAGE_MARKER.finditer(line):
        markers.append(offset + m.start())
        pieces.extend(_tidy(line[pos : m.start()], offset + pos))
        pos = m.end()
    pieces.extend(_tidy(line[pos:], offset + pos))
    # Strip leading/trailing spaces left by the tidy step.
    while pieces and pieces[0][0] == " ":
        pieces.pop(0)
    while pieces and pieces[-1][0] == " ":
        pieces.pop()
    return _Para(pieces) if pieces else None


def _tidy(segment: str, offset: int) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    pos = 0
    for m in _INLINE_WS.finditer(segment):
        if m.start() > pos:
            out.append((segment[pos : m.start()], offset + pos))
        out.append((" ", offset + m.start()))
        pos = m.end()
    if pos < len(segment):
        out.append((segment[pos:], offset + pos))
    return out


def _is_cut(prev: str, nxt: str) -> bool:
    """Was the break between two paragraphs made by the page layout, not the author?"""
    if not prev or not nxt or prev[-1] in _CLOSED_END or _BYLINE.match(nxt):
        return False
    if prev.startswith("#") or nxt.startswith(("#", "|", "- ", "* ")):
        return False  # Markdown headings, tables and list items are whole lines
    unbalanced = prev.count("“") > prev.count("”") or prev.count("（") > prev.count("）")
    return unbalanced or len(prev) > HEADING_MAX_CHARS


def _drop_repeats(paras: list[_Para], dropped: list[tuple[int, int]]) -> list[_Para]:
    """Drop a paragraph repeated right after itself (or that the next one begins with)."""
    kept: list[_Para] = []
    for p in paras:
        if kept:
            prev, cur = _key(kept[-1].text), _key(p.text)
            if cur == prev or (len(cur) >= 8 and prev.startswith(cur)):
                dropped.append(_span(p))
                continue
            if len(prev) >= 8 and cur.startswith(prev):
                dropped.append(_span(kept.pop()))
        kept.append(p)
    return kept


def _key(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _span(p: _Para) -> tuple[int, int]:
    return p.pieces[0][1], p.pieces[-1][1] + len(p.pieces[-1][0])


class _OffsetBuilder:
    """Clean→source offsets built as runs (a 5 MB line is one run, not five million ints)."""

    def __init__(self) -> None:
        self._runs: list[tuple[int, int]] = []  # (source start, length)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, source_pos: int) -> None:
        self.run(source_pos, 1)

    def run(self, source_start: int, length: int) -> None:
        self._runs.append((source_start, length))
        self._n += length

    def array(self) -> np.ndarray:
        parts = [np.arange(s, s + n, dtype=np.int64) for s, n in self._runs]
        last = self._runs[-1][0] + self._runs[-1][1] if self._runs else 0
        return np.concatenate([*parts, np.array([last], dtype=np.int64)])


def clean(source: str) -> CleanText:
    """Clean ``source``; paragraphs in the result are separated by one ``\\n``."""
    markers: list[int] = []
    dropped: list[tuple[int, int]] = []
    paras: list[_Para] = []
    offset = 0
    pending_marker = False
    for line in source.splitlines(keepends=True):
        n_markers = len(markers)
        p = _paragraph(line.rstrip("\r\n"), offset, markers)
        if p is None:
            pending_marker = pending_marker or len(markers) > n_markers
        else:
            p.after_marker = pending_marker or (len(markers) > n_markers and p.pieces[0][1] > markers[-1])
            pending_marker = False
            paras.append(p)
        offset += len(line)
    paras = _drop_repeats(paras, dropped)

    chars: list[str] = []
    offs = _OffsetBuilder()
    joins: list[int] = []
    breaks: list[int] = []
    prev_text = ""
    for i, p in enumerate(paras):
        text = p.text
        if i:
            brk = p.pieces[0][1] - 1  # the line break just before this paragraph
            if not p.after_marker and _is_cut(prev_text, text):
                joins.append(len(offs))
                if _LATIN_END.search(prev_text) and _LATIN_START.match(text):
                    chars.append(" ")
                    offs.append(brk)
            else:
                chars.append("\n")
                offs.append(brk)
            if p.after_marker:
                breaks.append(len(offs))
        for piece, start in p.pieces:
            chars.append(piece)
            offs.run(start, 1 if piece == " " else len(piece))
        prev_text = text
    clean_text = "".join(chars)
    arr = offs.array()
    assert len(arr) == len(clean_text) + 1
    return CleanText(clean_text, arr, markers, dropped, joins, breaks)
