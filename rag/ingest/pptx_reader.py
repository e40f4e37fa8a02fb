"""PowerPoint (PPTX) slides: each slide a unit (``slide`` = its number), titled by its title.

A slide's text is its title, then the text of its other shapes in their order on the slide (text
boxes, placeholders, grouped shapes, tables a row to a line, cells joined by `` | ``), then its
speaker notes (``备注：``). The package is checked against ``rag.ingest.archive``'s caps before
python-pptx (the ``formats`` extra) unpacks anything; slides are counted against the page bound and
text against the document's ``TextBudget``. Office wraps a password-protected PPTX in an OLE file:
that is refused as protected.
"""

from __future__ import annotations

import io

from rag.errors import LoaderError
from rag.ingest.archive import open_archive
from rag.ingest.limits import TextBudget, check_pages
from rag.ingest.optional import optional_module
from rag.ingest.units import Extracted, UnitText

KIND = "PPTX"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAX_DEPTH = 32  # groups within groups


def pptx_units(raw: bytes, name: str) -> Extracted:
    """The slides of a PPTX, each a unit with ``slide`` and its title."""
    pptx = optional_module("pptx", "python-pptx", name, KIND)
    if not raw:
        raise LoaderError("file.empty", name=name)
    if raw.startswith(_OLE_MAGIC):
        raise LoaderError("office.encrypted", name=name, kind=KIND)
    if not raw.startswith(_ZIP_MAGIC):
        raise LoaderError("file.wrong_format", name=name, kind=KIND)
    open_archive(raw, name, KIND).close()  # the zip's caps, before python-pptx unpacks anything
    try:
        deck = pptx.Presentation(io.BytesIO(raw))
    except (pptx.exc.PackageNotFoundError, KeyError, ValueError) as exc:
        raise LoaderError("file.damaged", name=name, kind=KIND, detail=f"{type(exc).__name__}: {exc}"[:300]) from exc
    slides = list(deck.slides)
    check_pages(len(slides), name, KIND)
    budget = TextBudget(name, KIND)  # what is read; what the units hold is bounded by their own
    out = UnitText(TextBudget(name, KIND))
    for number, slide in enumerate(slides, 1):
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
        lines = [title] if title else []
        for shape in slide.shapes:
            if title_shape is None or shape.shape_id != title_shape.shape_id:
                lines.extend(_shape_lines(shape, budget, 0))
        if slide.has_notes_slide and (frame := slide.notes_slide.notes_text_frame) is not None:
            notes = frame.text.strip()
            budget.spend(len(notes))
            if notes:
                lines.append(f"备注：{notes}")
        out.unit("\n".join(lines), title or None, slide=number)
    return out.result()


def _shape_lines(shape, budget: TextBudget, depth: int) -> list[str]:
    """A shape's text as lines: its paragraphs, a table's rows, a group's shapes in turn."""
    lines: list[str] = []
    if getattr(shape, "shapes", None) is not None and depth < _MAX_DEPTH:
        for inner in shape.shapes:  # a group
            lines.extend(_shape_lines(inner, budget, depth + 1))
    elif getattr(shape, "has_table", False) and shape.has_table:
        for row in shape.table.rows:
            cells = [" ".join(cell.text.split()) for cell in row.cells]
            if any(cells):
                lines.append(" | ".join(cells))
    elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        lines.extend(p for para in shape.text_frame.paragraphs if (p := "".join(r.text for r in para.runs).strip()))
    budget.spend(sum(len(line) for line in lines))
    return lines
