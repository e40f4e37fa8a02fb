"""Bounds on the work one document may cost: paragraphs, pages, characters extracted and pixels decoded.

A text file's work is bounded by its size (``max_file_mb``); a packed format (DOCX, PDF) can hold far
more than its size says: 500,000 empty paragraphs fit in 50 KB of DOCX. Its readers count as they
extract and stop at a bound. A file over one is refused, never truncated: an index that silently holds
part of a document answers as if it held all of it, while a refusal names the file and the bound, and
the file can be split.
"""

from __future__ import annotations

from rag.errors import LoaderError

MAX_PARAGRAPHS = 200_000  # a 1,000-page report has about 20,000
MAX_PAGES = 10_000
MAX_CHARS = 20_000_000  # 40 MB of Chinese in UTF-8; a long novel has under a million
# Pixels of one image or scanned page, checked from its header before it is decoded: an A4 page scanned
# at 600 DPI has 35 million; 50 million decoded as RGB is 150 MB. A small PNG can declare far more (a bomb).
MAX_PIXELS = 50_000_000


class TextBudget:
    """Characters extracted from one document so far; ``LoaderError`` once over ``limit``."""

    def __init__(self, name: str, kind: str, limit: int = MAX_CHARS) -> None:
        self.name, self.kind, self.limit, self.used = name, kind, limit, 0

    def spend(self, chars: int) -> None:
        self.used += chars
        if self.used > self.limit:
            raise LoaderError("doc.too_many_chars", name=self.name, kind=self.kind, limit=self.limit)


def check_paragraphs(count: int, name: str, kind: str, limit: int = MAX_PARAGRAPHS) -> None:
    if count > limit:
        raise LoaderError("doc.too_many_paragraphs", name=name, kind=kind, limit=limit)


def check_pages(count: int, name: str, kind: str, limit: int = MAX_PAGES) -> None:
    if count > limit:
        raise LoaderError("doc.too_many_pages", name=name, kind=kind, n=count, limit=limit)


def check_pixels(width: int, height: int, name: str, kind: str, limit: int = MAX_PIXELS) -> None:
    if width * height > limit:
        raise LoaderError("image.too_many_pixels", name=name, kind=kind, pixels=width * height, limit=limit)
