"""What every answer generator returns, and the protocol it implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rag.text.normalize import is_chinese
from rag.types import Citation, Passage

NOT_FOUND_ZH = "资料中没有找到相关信息。"
NOT_FOUND_EN = "The documents do not contain information that answers this question."


def not_found_message(question: str) -> str:
    """The abstention message, in the question's language."""
    return NOT_FOUND_ZH if is_chinese(question) else NOT_FOUND_EN


@dataclass(frozen=True)
class Quote:
    """A span of passage ``n`` (1-based) that the answer rests on; offsets are within the chunk text."""

    n: int
    start: int
    end: int


@dataclass(frozen=True)
class Draft:
    text: str  # the answer, with [n] markers
    quotes: list[Quote]
    abstained: bool
    warnings: list[str] = field(default_factory=list)
    support: float | None = None
    citations: list[Citation] | None = None  # set by generators that check their own citations


class Generator(Protocol):
    name: str

    def generate(self, question: str, passages: Sequence[Passage]) -> Draft: ...
