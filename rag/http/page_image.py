"""A page as a picture, with the cited words' boxes drawn on it (the source viewer's page view).

The viewer shows the text indexing kept; a reader checking a citation also wants the page as printed.
``page_png`` renders one page of the document's file: a PDF's with pdfium (pypdfium2: one page, never
the whole file), an image's frame with Pillow. The cited words are found two ways, both drawn
translucent over the page: on a PDF page with a text layer, through pdfium's own text (both texts
compared without whitespace: pypdf, which indexed it, and pdfium space and break lines differently),
the matching characters' boxes merged by line; on a scanned page or an image, the boxes OCR kept for
the cited lines (``ocr_boxes``: page fractions, from the chunks' meta).

Bounds, since the route needs no key: the file must still be the one indexed (its sha256, cached by
size and mtime), the page must exist, the picture is at most ``MAX_SIDE`` pixels on its long side, and
rendered pictures are cached. pdfium is not thread-safe: one lock around it.
"""

from __future__ import annotations

import functools
import hashlib
import io
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, DocumentNotFoundError
from rag.ingest.limits import MAX_PIXELS

DPI = 110  # legible on a screen without a large picture
MAX_SIDE = 1800  # pixels, on the page's long side (an A0 poster would be 5000+ at DPI)
MAX_MARKED_CHARS = 2_000  # of the cited text looked for on the page
_PDFIUM = threading.Lock()


def page_png(path: Path, sha256: str, page: int, cited: str,
             ocr_boxes: Sequence[tuple[float, float, float, float]] = ()) -> bytes:
    """Page ``page`` (1-based) of the PDF or image at ``path`` as PNG, with ``cited`` outlined where the
    page's text layer has it, and ``ocr_boxes`` (x0, y0, x1, y1 as fractions of the page) outlined."""
    st = path.stat()
    if _sha256(str(path), st.st_size, st.st_mtime_ns) != sha256:
        raise DocumentNotFoundError("view.file_changed", name=path.name)
    return _render(str(path), sha256, page, cited[:MAX_MARKED_CHARS], tuple(tuple(b) for b in ocr_boxes))


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=16)  # a reader goes back and forth between a few pages
def _render(path: str, sha256: str, page: int, cited: str, ocr_boxes: tuple[tuple[float, ...], ...]) -> bytes:
    from PIL import Image, ImageDraw  # noqa: PLC0415 - Pillow (the ocr extra), only for page pictures

    if Path(path).suffix.lower() == ".pdf":
        image, rects = _pdf_page(path, page, cited)
    else:
        image, rects = _image_page(path, page), []
    width, height = image.size
    rects += [(x0 * width, y0 * height, x1 * width, y1 * height) for x0, y0, x1, y1 in ocr_boxes]
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for left, top, right, bottom in rects:  # pixels, origin top-left
        draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=(253, 230, 138, 110), outline=(245, 158, 11, 255),
                       width=2)
    out = io.BytesIO()
    Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB").save(out, format="PNG", optimize=True)
    return out.getvalue()


def _pdf_page(path: str, page: int, cited: str) -> tuple[Any, list[tuple[float, float, float, float]]]:
    """The PDF page as a picture, and the cited text's line boxes on it (pixels) where its text layer has it."""
    import pypdfium2 as pdfium  # noqa: PLC0415 - the PDF renderer (the ocr extra), only for page pictures

    with _PDFIUM:
        pdf = pdfium.PdfDocument(path)
        try:
            if not 1 <= page <= len(pdf):
                raise ConfigError("view.no_page", page=page, pages=len(pdf))
            pg = pdf[page - 1]
            width, height = pg.get_size()
            scale = min(DPI / 72, MAX_SIDE / max(width, height, 1.0))
            image = pg.render(scale=scale).to_pil().convert("RGB")
            boxes = _cited_boxes(pg.get_textpage(), cited) if cited.strip() else []
        finally:
            pdf.close()
    # PDF points, origin bottom-left → pixels, origin top-left
    return image, [(left * scale, (height - top) * scale, right * scale, (height - bottom) * scale)
                   for left, bottom, right, top in boxes]


def _image_page(path: str, page: int) -> Any:
    """Frame ``page`` of an image file, at most ``MAX_SIDE`` pixels on its long side; its pixels were
    bounded when it was indexed, and are checked again from the header before it is decoded."""
    from PIL import Image  # noqa: PLC0415 - Pillow (the ocr extra), only for page pictures

    with Image.open(path) as im:
        frames = getattr(im, "n_frames", 1)
        if not 1 <= page <= frames:
            raise ConfigError("view.no_page", page=page, pages=frames)
        im.seek(page - 1)
        if im.size[0] * im.size[1] > MAX_PIXELS:
            raise ConfigError("view.no_page", page=page, pages=frames)
        frame = im.convert("RGB")
    frame.thumbnail((MAX_SIDE, MAX_SIDE))
    return frame


def _fold(ch: str) -> str:
    return unicodedata.normalize("NFKC", ch).lower()


def _cited_boxes(textpage, cited: str) -> list[tuple[float, float, float, float]]:
    """The boxes of ``cited``'s characters on the page, one per line: pdfium's characters, whitespace
    left out on both sides, matched whole, else by the longest run of the citation's start found."""
    chars = [(i, _fold(textpage.get_text_range(i, 1))) for i in range(textpage.count_chars())]
    kept = [(i, c) for i, c in chars if c and not c.isspace()]
    page_text = "".join(c for _, c in kept)
    needle = "".join(_fold(ch) for ch in cited if not ch.isspace())
    at, length = _find(page_text, needle)
    if at < 0:
        return []
    # one character may fold to several (NFKC): walk both texts together
    indices, pos = [], 0
    for i, c in kept:
        if at <= pos < at + length:
            indices.append(i)
        pos += len(c)
    return _lines([textpage.get_charbox(i) for i in indices])


def _find(text: str, needle: str) -> tuple[int, int]:
    """Where ``needle`` (or its longest start, at least 4 characters) is in ``text``: (at, length) or (-1, 0)."""
    length = len(needle)
    while length >= min(4, len(needle)) and length > 0:
        at = text.find(needle[:length])
        if at >= 0:
            return at, length
        length = length // 2 if length > 64 else length - 4
    return -1, 0


def _lines(boxes: Sequence[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """Character boxes merged into one box per line (characters whose vertical ranges overlap)."""
    lines: list[list[float]] = []
    for left, bottom, right, top in boxes:
        if right <= left or top <= bottom:
            continue
        last = lines[-1] if lines else None
        if last is not None and bottom < last[3] and top > last[1] and left >= last[0] - 2:
            last[0], last[1], last[2], last[3] = min(last[0], left), min(last[1], bottom), max(last[2], right), max(last[3], top)
        else:
            lines.append([left, bottom, right, top])
    return [tuple(b) for b in lines]


__all__ = ["DPI", "MAX_SIDE", "page_png"]
