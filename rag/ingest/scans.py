"""Scanned documents: image files (PNG, JPEG, TIFF, WebP) and PDF pages without a usable text layer,
read by OCR (``rag.ingest.ocr``) into text whose lines keep their page and box.

A scan's text is its pages' lines, one per line, pages separated by form feeds as a PDF's text layer
is; ``boxes`` gives each line's source offsets, page and box (``Document.boxes``), so a chunk and a
citation can point to a region of a page. Images are bounded before they are decoded (``limits``:
pixels per page, pages per file), so a small file that declares a huge picture (a decompression bomb)
is refused from its header. A progress bar per page goes to stderr while pages are read.
"""

from __future__ import annotations

import io
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

from rag.errors import LoaderError
from rag.ingest.limits import MAX_PIXELS, TextBudget, check_pages, check_pixels
from rag.ingest.ocr import MAX_SIDE, OCR_HINT, OcrLine, recognise

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"})
IMAGE_KINDS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WebP"}
MAX_DPI = 300  # a small PDF page is rendered at most this finely; a large one so its longer side is MAX_SIDE
ENLARGE = 1.5  # a smaller image is enlarged by up to this much towards MAX_SIDE (small print reads better)
# A text layer is broken (glyphs without Unicode, a font's private codes) when this share of its
# characters is replacement marks, private-use or control characters, or (cid:N) placeholders.
BROKEN_SHARE = 0.3
_CID = re.compile(r"\(cid:\d+\)")

# (source start, source end, page, x0, y0, x1, y1): an OCR'd line in the document's text (Document.boxes)
Box = tuple[int, int, int, float, float, float, float]


def broken_text_layer(text: str) -> bool:
    """Whether a PDF page's extracted text is no text: empty, or mostly placeholders for unmapped glyphs."""
    text = "".join(text.split())
    if not text:
        return True
    bad = sum(len(m) for m in _CID.findall(text))
    rest = _CID.sub("", text)
    bad += sum(1 for ch in rest if ch == "\ufffd" or unicodedata.category(ch) in ("Co", "Cc", "Cs"))
    return bad > BROKEN_SHARE * len(text)


def layout(pages: list[str | list[OcrLine]], name: str, kind: str) -> tuple[str, tuple[Box, ...]]:
    """The text of pages given as text (a text layer) or as OCR'd lines, joined by form feeds, and
    the boxes of the OCR'd lines at their offsets in it."""
    budget = TextBudget(name, kind)
    parts: list[str] = []
    boxes: list[Box] = []
    pos = 0
    for number, page in enumerate(pages, 1):
        if number > 1:
            parts.append("\f")
            pos += 1
        if isinstance(page, str):
            parts.append(page)
            pos += len(page)
            continue
        for i, line in enumerate(page):
            if i:
                parts.append("\n")
                pos += 1
            parts.append(line.text)
            boxes.append((pos, pos + len(line.text), number, *line.box))
            pos += len(line.text)
            budget.spend(len(line.text) + 1)  # a text layer's pages were counted as they were extracted
    return "".join(parts), tuple(boxes)


def ocr_pages(images: Iterable[tuple[int, Any]], total: int, name: str, kind: str) -> dict[int, list[OcrLine]]:
    """The lines of each ``(page number, PIL image)``, with a progress bar of ``total`` pages on stderr."""
    from tqdm import tqdm  # noqa: PLC0415 - tqdm only when there is something to show (as rag.indexing.embed)

    out: dict[int, list[OcrLine]] = {}
    with tqdm(total=total, desc=f"OCR {name}"[:60], unit="page", file=sys.stderr, disable=None, leave=False) as bar:
        for number, image in images:
            out[number] = recognise(image, name, kind)
            bar.update(1)
    return out


def image_to_text(raw: bytes, name: str, suffix: str) -> tuple[str, tuple[Box, ...]]:
    """The OCR'd text of an image file (each frame of a multi-page TIFF a page) and its lines' boxes."""
    kind = IMAGE_KINDS.get(suffix, "image")
    Image = _pil(name, kind)
    try:
        with Image.open(io.BytesIO(raw)) as im:
            frames = getattr(im, "n_frames", 1)
            check_pages(frames, name, kind)
            for i in range(frames):  # every frame's size from its header, before any is decoded
                im.seek(i)
                check_pixels(im.size[0], im.size[1], name, kind)
            pages = ocr_pages(_frames(im, frames), frames, name, kind)
    except Image.DecompressionBombError as exc:  # PIL's own bound (higher than ours), met while opening
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        raise LoaderError("image.too_many_pixels", name=name, kind=kind, limit=MAX_PIXELS,
                          pixels=int(declared.group(1)) if declared else MAX_PIXELS + 1) from exc
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise LoaderError("file.damaged", name=name, kind=kind, detail=f"{type(exc).__name__}: {exc}"[:300]) from exc
    return layout([pages[n] for n in range(1, frames + 1)], name, kind)


def _frames(im: Any, frames: int) -> Iterator[tuple[int, Any]]:
    for i in range(frames):
        im.seek(i)
        if im.format == "JPEG":  # decoded at the smallest power-of-two scale still at least MAX_SIDE
            im.draft("RGB", (MAX_SIDE, MAX_SIDE))
        yield i + 1, page_image(im)


def page_image(im: Any) -> Any:
    """``im`` as the engine wants it: RGB, transparency on white, its longer side ``MAX_SIDE`` (or enlarged
    ``ENLARGE`` times when that is less)."""
    Image = sys.modules["PIL.Image"]
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        im = flat
    elif im.mode != "RGB":
        im = im.convert("RGB")
    else:
        im = im.copy()  # decoded now: a frame of a multi-page file is gone once the file moves on
    factor = min(MAX_SIDE / max(im.size), ENLARGE)
    if abs(factor - 1) > 0.02:
        im = im.resize((max(1, round(im.width * factor)), max(1, round(im.height * factor))), Image.Resampling.LANCZOS)
    return im


def pdf_pages_ocr(raw: bytes, numbers: list[int], name: str) -> dict[int, list[OcrLine]]:
    """The OCR'd lines of the PDF pages ``numbers`` (1-based), each rendered with PDFium."""
    _pil(name, "PDF")
    try:
        import pypdfium2 as pdfium  # noqa: PLC0415 - the ocr extra: only PDFs with scanned pages need it
    except ImportError as exc:
        raise LoaderError("ocr.needs_package", name=name, kind="PDF", package="pypdfium2", hint=OCR_HINT) from exc
    try:
        pdf = pdfium.PdfDocument(raw)
    except pdfium.PdfiumError as exc:
        raise LoaderError("file.damaged", name=name, kind="PDF", detail=str(exc)[:300]) from exc

    def rendered() -> Iterator[tuple[int, Any]]:
        for number in numbers:
            page = pdf[number - 1]
            try:
                width, height = page.get_size()
                scale = min(MAX_DPI / 72, MAX_SIDE / max(width, height, 1.0))
                bitmap = page.render(scale=scale)
                yield number, page_image(bitmap.to_pil())
            finally:
                page.close()

    try:
        return ocr_pages(rendered(), len(numbers), name, "PDF")
    except pdfium.PdfiumError as exc:
        raise LoaderError("file.damaged", name=name, kind="PDF", detail=str(exc)[:300]) from exc
    finally:
        pdf.close()


def _pil(name: str, kind: str) -> Any:
    try:
        from PIL import Image  # noqa: PLC0415 - the ocr extra: images and scans only
    except ImportError as exc:
        raise LoaderError("ocr.needs_package", name=name, kind=kind, package="Pillow", hint=OCR_HINT) from exc
    return Image


__all__ = ["IMAGE_KINDS", "IMAGE_SUFFIXES", "Box", "broken_text_layer", "image_to_text", "layout", "ocr_pages",
           "page_image", "pdf_pages_ocr"]
