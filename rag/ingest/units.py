"""A document's text built a unit at a time (``rag.types.Unit``: a row, a slide, a chapter, a mail part).

Readers of formats made of units append each unit's text here; it is set apart from its neighbours
by a blank line and recorded with its exact offsets in the text, its title and its meta, which the
chunker keeps apart and passes on to the unit's chunks. Text that is no unit (a DOCX's paragraphs
around its tables) goes in between with ``text``. Every character is counted against the document's
``TextBudget`` as it is added, so a reader stops at the bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rag.ingest.limits import TextBudget
from rag.types import Unit

_GAP = "\n\n"


@dataclass(frozen=True)
class Extracted:
    """What a reader made of a file: its text and the units in it (none for plain prose)."""

    text: str
    units: tuple[Unit, ...] = ()


class UnitText:
    def __init__(self, budget: TextBudget) -> None:
        self._parts: list[str] = []
        self._units: list[Unit] = []
        self._size = 0
        self._budget = budget

    def text(self, text: str) -> None:
        """Text that belongs to no unit."""
        self._append(text.strip())

    def unit(self, text: str, title: str | None = None, **meta: Any) -> None:
        """One unit; ``meta`` holds its ``UNIT_KEYS`` (``sheet="营收", row=5``). An empty one is left out."""
        start = self._append(text.strip())
        if start is not None:
            self._units.append(Unit(start, self._size, title or None, {k: v for k, v in meta.items() if v is not None}))

    def _append(self, text: str) -> int | None:
        if not text:
            return None
        if self._parts:
            self._parts.append(_GAP)
            self._size += len(_GAP)
        self._budget.spend(len(text))
        self._parts.append(text)
        self._size += len(text)
        return self._size - len(text)

    def result(self) -> Extracted:
        return Extracted("".join(self._parts), tuple(self._units))
