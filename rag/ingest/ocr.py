"""OCR: an image → its lines of text in reading order, each with its box on the page and a confidence.

The engine is RapidOCR (``rapidocr-onnxruntime``, the ``ocr`` extra): PP-OCRv4 detection and
recognition for Chinese (simplified and traditional) and English, whose ONNX models ship inside the
wheel, so nothing is fetched at run time. It was chosen over Tesseract by measurement (``bench/ocr.py``,
docs/documents.md). It is loaded once, on first use, and runs one page at a time with as many
onnxruntime threads as this process may use cores: inference releases the GIL, so a long scan indexed
in a background thread leaves the server's other requests their turn.

Lines come back in reading order: text columns top to bottom, one after the other; a table (short
cells side by side) row by row, its cells joined by a space; a slight skew is measured and undone
before lines are grouped, so a tilted scan keeps its lines apart.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.errors import LoaderError

OCR_HINT = "pip install 'rag-zh[ocr]'"
# Pixels of a page's longer side as the engine reads it: A4 at about 220 DPI. Measured (bench/ocr.py): 10-point
# text at 150 DPI lost lines to detection at its own 1,754 pixels and is read at 97% once enlarged to this.
MAX_SIDE = 2600
MIN_CONFIDENCE = 0.5  # lines the recogniser is less sure of are dropped (RapidOCR's own default)
BLANK_STD = 2.0  # grey levels: a page this even (a blank page, an empty scan) is not sent to the engine
_TEXT_LINE_CHARS = 8  # a block whose lines hold at least this many characters (median) is read as text columns


@dataclass(frozen=True)
class OcrLine:
    """One line of text found on an image; ``box`` is ``x0, y0, x1, y1`` as fractions of its width and height."""

    text: str
    box: tuple[float, float, float, float]
    confidence: float


_engine: Any = None
_load_lock = threading.Lock()
_run_lock = threading.Lock()  # one page at a time: every page already uses all the cores it may


def cores() -> int:
    """The cores this process may run on (its CPU affinity, a container's limit), at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def available() -> bool:
    """Whether the OCR extra is installed (without loading it)."""
    import importlib.util  # noqa: PLC0415 - only asked when a document needs OCR

    return all(importlib.util.find_spec(m) is not None for m in ("rapidocr_onnxruntime", "PIL"))


def engine(name: str, kind: str) -> Any:
    """The RapidOCR engine, loaded on first use; ``LoaderError`` naming file ``name`` when it is not installed."""
    global _engine
    if _engine is not None:
        return _engine
    with _load_lock:
        if _engine is None:
            try:
                import cv2  # noqa: PLC0415 - the ocr extra: heavy, optional, loaded only for scans and images
                from rapidocr_onnxruntime import RapidOCR  # noqa: PLC0415 - RapidOCR (ocr extra, ONNX Runtime), as cv2 above
            except ImportError as exc:
                raise LoaderError("ocr.needs_package", name=name, kind=kind, package="rapidocr-onnxruntime",
                                  hint=OCR_HINT) from exc
            n = cores()
            cv2.setNumThreads(n)
            _engine = _without_spinning(lambda: RapidOCR(intra_op_num_threads=n, inter_op_num_threads=1,
                                                         max_side_len=MAX_SIDE, text_score=MIN_CONFIDENCE))
    return _engine


def _without_spinning(build: Any) -> Any:
    """``build()`` with onnxruntime's worker threads sleeping when idle instead of spinning: a spinning pool
    keeps every core busy between the model's steps, starving the server's request threads."""
    from rapidocr_onnxruntime.utils import infer_engine  # noqa: PLC0415 - the ocr extra, as above

    options = infer_engine.OrtInferSession._init_sess_opts

    def quiet(config: dict[str, Any]) -> Any:
        opts = options(config)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return opts

    infer_engine.OrtInferSession._init_sess_opts = staticmethod(quiet)
    try:
        return build()
    finally:
        infer_engine.OrtInferSession._init_sess_opts = staticmethod(options)


def recognise(image: Any, name: str, kind: str = "image") -> list[OcrLine]:
    """The lines of text on ``image`` (a PIL image, in RGB), in reading order."""
    ocr = engine(name, kind)
    width, height = image.size
    if float(np.asarray(image.convert("L")).std()) < BLANK_STD:
        return []
    with _run_lock:
        result, _ = ocr(image)
    return lines_in_order(result or [], width, height)


def lines_in_order(found: Iterable[Sequence[Any]], width: int, height: int) -> list[OcrLine]:
    """``(quadrilateral, text, score)`` of each box found on an image ``width`` × ``height``, as lines
    in reading order (a row's pieces one line), boxes as fractions of the image."""
    items = []
    for quad, text, score in found:
        text = str(text).strip()
        if text:
            items.append(_Item([(float(x), float(y)) for x, y in quad], text, float(score)))
    return [
        OcrLine(it.text, (_frac(it.x0, width), _frac(it.y0, height), _frac(it.x1, width), _frac(it.y1, height)),
                round(it.score, 4))
        for it in _reading_order(items)
    ]


def _frac(v: float, size: int) -> float:
    return round(min(max(v / size, 0.0), 1.0), 4)


class _Item:
    """A detected text box: its quadrilateral, text and score, and its extent in the deskewed frame."""

    def __init__(self, quad: list[tuple[float, float]], text: str, score: float) -> None:
        self.quad, self.text, self.score = quad, text, score
        xs, ys = [p[0] for p in quad], [p[1] for p in quad]
        self.x0, self.y0, self.x1, self.y1 = min(xs), min(ys), max(xs), max(ys)
        self.rx0 = self.ry0 = self.rx1 = self.ry1 = 0.0

    def deskew(self, cos: float, sin: float) -> None:
        pts = [(x * cos + y * sin, -x * sin + y * cos) for x, y in self.quad]
        self.rx0, self.rx1 = min(p[0] for p in pts), max(p[0] for p in pts)
        self.ry0, self.ry1 = min(p[1] for p in pts), max(p[1] for p in pts)
        # the box's own height, not its bounding box's: a tilted line's box is taller than its text
        (ax, ay), (bx, by), (cx, cy), (dx, dy) = pts
        self.height = max(1.0, (math.hypot(dx - ax, dy - ay) + math.hypot(cx - bx, cy - by)) / 2)
        self.cy = (ay + by + cy + dy) / 4


def _skew(items: list[_Item]) -> float:
    """The page's tilt (radians): the median angle of the top edges of boxes wider than tall."""
    angles = sorted(math.atan2(q[1][1] - q[0][1], q[1][0] - q[0][0]) for q in (it.quad for it in items)
                    if math.hypot(q[1][0] - q[0][0], q[1][1] - q[0][1]) > 2 * math.hypot(q[3][0] - q[0][0], q[3][1] - q[0][1]))
    return angles[len(angles) // 2] if angles else 0.0


def _reading_order(items: list[_Item]) -> list[_Item]:
    if not items:
        return []
    angle = _skew(items)
    for it in items:
        it.deskew(math.cos(angle), math.sin(angle))
    left, right = min(it.rx0 for it in items), max(it.rx1 for it in items)
    span = max(right - left, 1.0)
    out: list[_Item] = []
    block: list[_Item] = []
    for it in sorted(items, key=lambda i: i.cy):
        if it.rx1 - it.rx0 > 0.6 * span:  # a line across the page (a title, a paragraph) closes the columns above
            out += _block_order(block)
            block = []
            out.append(it)
        else:
            block.append(it)
    return out + _block_order(block)


def _block_order(block: list[_Item]) -> list[_Item]:
    """Lines of a block: column by column when they are text columns, row by row otherwise (a table)."""
    if not block:
        return []
    lengths = sorted(len(it.text) for it in block)
    if lengths[len(lengths) // 2] >= _TEXT_LINE_CHARS:
        columns = _columns(block)
        if len(columns) > 1:
            return [it for col in columns for it in _rows(col)]
    return _rows(block)


def _columns(block: list[_Item]) -> list[list[_Item]]:
    """The block split at vertical gutters: x ranges no box crosses, wider than a line is tall."""
    gap = sorted(it.height for it in block)[len(block) // 2]
    cols: list[list[_Item]] = []
    reach = -math.inf
    for it in sorted(block, key=lambda i: i.rx0):
        if not cols or it.rx0 - reach > gap:
            cols.append([])
        cols[-1].append(it)
        reach = max(reach, it.rx1)
    return cols


def _rows(items: list[_Item]) -> list[_Item]:
    """Items grouped into rows (centres within half a line's height), top to bottom, each left to right;
    the pieces of one row become one item, their texts joined by a space."""
    rows: list[list[_Item]] = []
    for it in sorted(items, key=lambda i: i.cy):
        row = rows[-1] if rows else None
        if row is not None and abs(it.cy - sum(r.cy for r in row) / len(row)) < 0.5 * min(it.height, row[0].height):
            row.append(it)
        else:
            rows.append([it])
    return [_joined(sorted(row, key=lambda i: i.rx0)) for row in rows]


def _joined(row: list[_Item]) -> _Item:
    if len(row) == 1:
        return row[0]
    first = row[0]
    merged = _Item(first.quad, " ".join(it.text for it in row), min(it.score for it in row))
    merged.x0, merged.y0 = min(it.x0 for it in row), min(it.y0 for it in row)
    merged.x1, merged.y1 = max(it.x1 for it in row), max(it.y1 for it in row)
    merged.cy, merged.height = first.cy, first.height
    return merged


__all__ = ["MAX_SIDE", "OCR_HINT", "OcrLine", "available", "cores", "engine", "lines_in_order", "recognise"]
