"""Sentence boundaries in Chinese and mixed text, as character offsets (chunking packs them; the
answerers quote them). Written here rather than taken from a splitter: offsets must be exact, and
``。”`` stays together."""

from __future__ import annotations

from collections.abc import Iterator

_TERMINAL = set("。！？!?；;…")
_CLOSERS = set("”’」』）)】》〕\"'")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """Yield (start, end) of sentences in ``text[start:end]``; line breaks always end one.

    A sentence ends after 。！？；… (or ``.`` before a space) plus any closing quotes or
    brackets; never inside 《book titles》 nor inside a number such as ``1.5``.
    """
    end = len(text) if end is None else end
    i = s = start
    book = 0
    while i < end:
        ch = text[i]
        if ch == "\n":
            if i > s:
                yield s, i
            s = i + 1
        elif ch == "《":
            book += 1
        elif ch == "》" and book:
            book -= 1
        elif not book and (ch in _TERMINAL or (ch == "." and (i + 1 == end or text[i + 1].isspace()))):
            j = i + 1
            while j < end and (text[j] in _TERMINAL or text[j] in _CLOSERS):
                j += 1
            yield s, j
            s = i = j
            while s < end and text[s] == " ":
                s += 1
            i = s
            continue
        i += 1
    if s < end and text[s:end].strip():
        yield s, end


__all__ = ["sentence_spans"]
