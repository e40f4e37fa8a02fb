"""The Generator protocol the pipeline dispatches on, what a generator is given, and what it returns.

A generator is any object with a ``name`` and ``generate(question, passages, ctx) -> Draft``;
``stream`` (text as it is written, then the Draft) and ``rewrite`` (a follow-up made standalone)
are optional. The pipeline asks for nothing else: the offline extractive default, LLMs and a
user's own object plug in alike (``rag.generation.resolve`` turns a spec into one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from rag.errors import RagError
from rag.text.normalize import is_chinese
from rag.types import Citation, Passage

if TYPE_CHECKING:
    import numpy as np

    from rag.embedding.backends import Embedder

NOT_FOUND_ZH = "资料中没有找到相关信息。"
NOT_FOUND_EN = "The documents do not contain information that answers this question."


def not_found_message(question: str) -> str:
    """The abstention message, in the question's language."""
    return NOT_FOUND_ZH if is_chinese(question) else NOT_FOUND_EN


class GeneratorError(RagError):
    """A generator could not produce an answer (an LLM's connection, timeout, HTTP error, malformed
    reply...): the pipeline answers extractively instead, with a warning naming the failure."""


@dataclass(frozen=True)
class Quote:
    """A span of passage ``n`` (1-based) that the answer rests on; offsets are within the chunk text."""

    n: int
    start: int
    end: int


@dataclass(frozen=True)
class Draft:
    text: str  # the answer, with [n] markers
    quotes: list[Quote]  # mapped by the pipeline to citations with source offsets
    abstained: bool
    warnings: list[str] = field(default_factory=list)
    support: float | None = None
    citations: list[Citation] | None = None  # set by generators that check their own citations (quotes unused)
    confidence: float | None = None  # p(the answer is right), from a calibrated generator
    span: Quote | None = None  # the exact answer, inside one of the quotes


@dataclass(frozen=True)
class Context:
    """What the pipeline has at hand for one answer besides the question and the passages.

    ``embedder`` is the index's; ``idf`` weighs a word by the answering snapshot's BM25
    statistics; ``query_vector`` is the question's embedding, already computed for retrieval.
    """

    embedder: Embedder
    idf: Callable[[str], float]
    query_vector: np.ndarray | None = None


class Generator(Protocol):
    """Passages to a Draft. Raise ``GeneratorError`` for a failure the extractive answer should cover."""

    name: str  # reported as ``Answer.generator``

    def generate(self, question: str, passages: Sequence[Passage], ctx: Context) -> Draft: ...


class StreamingGenerator(Generator, Protocol):
    def stream(self, question: str, passages: Sequence[Passage], ctx: Context) -> Iterator[str | Draft]:
        """Pieces of the answer text as they are written, then the ``Draft`` (its text is the final one)."""
        ...


class Rewriter(Protocol):
    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """A standalone question for retrieval from a follow-up and the (role, text) turns before it."""
        ...
