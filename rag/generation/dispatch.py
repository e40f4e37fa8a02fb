"""Running a generator for the pipeline, through the protocol alone (``rag.generation.base``):
the follow-up rewrite, the answer text as it comes with the extractive fallback, and the Answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag.catalogue import english
from rag.errors import ConfigError
from rag.generation.base import Context, Draft, Generator, GeneratorError, Quote
from rag.text.display import display
from rag.text.unicode import is_encodable
from rag.types import Answer, Citation, Passage


@dataclass(frozen=True)
class Outcome:
    draft: Draft
    generator: str  # the name of the generator that wrote it: the fallback's after a failure


def chat_turns(history: Sequence[Any] | None) -> list[tuple[str, str]]:
    """Chat history as (role, text) turns, from OpenAI-style messages or (user, assistant) pairs."""
    turns: list[tuple[str, str]] = []
    for item in history or []:
        if isinstance(item, dict):
            role, text = str(item.get("role", "user")), item.get("content")
            if isinstance(text, str) and not is_encodable(text):
                raise ConfigError("text.surrogate", what="a history message")
            if isinstance(text, str) and text.strip():
                turns.append(("assistant" if role == "assistant" else "user", text))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            user, bot = item
            if user:
                turns.append(("user", str(user)))
            if bot:
                turns.append(("assistant", str(bot)))
        else:
            raise ConfigError("history.bad_item", item=item)
    return turns


def standalone(gen: Generator, question: str, turns: list[tuple[str, str]], warnings: list[str]) -> str:
    """A follow-up rewritten into a standalone query by a generator that can (``rewrite``); else as asked."""
    rewrite = getattr(gen, "rewrite", None)
    if not turns or not callable(rewrite):
        return question
    try:
        return str(rewrite(question, turns))
    except GeneratorError as exc:
        warnings.append(english("answer.rewrite_failed", name=gen.name, reason=str(exc)))
        return question


def answer_pieces(gen: Generator, fallback: Generator, question: str, passages: Sequence[Passage], ctx: Context,
                  warnings: list[str]) -> Iterator[str | Outcome]:
    """The answer's text as it comes, then the ``Outcome``. A generator that raises ``GeneratorError``
    is replaced by ``fallback``, and the failure is added to ``warnings``."""
    draft, streamed = None, False
    try:
        for item in _pieces(gen, question, passages, ctx):
            if isinstance(item, Draft):
                draft = item
            elif isinstance(item, str):
                streamed = True
                yield item
            else:
                raise TypeError(f"generator {gen.name!r} streamed a {type(item).__name__}: a stream yields text, then a Draft")
        if draft is None:
            raise TypeError(f"the stream of generator {gen.name!r} ended without a Draft")
    except GeneratorError as exc:
        draft = None
        code = "answer.llm_failed_midway" if streamed else "answer.llm_failed"
        warnings.append(english(code, name=gen.name, reason=str(exc)))
    if draft is not None:
        yield Outcome(draft, gen.name)
        return
    draft = fallback.generate(question, passages, ctx)
    # The fallback is streamed too, unless the failed generator's text went first: appended to
    # it, it would read as one garbled answer. The `answer` event's text is authoritative.
    if not streamed:
        yield draft.text
    yield Outcome(draft, fallback.name)


def _pieces(gen: Generator, question: str, passages: Sequence[Passage], ctx: Context) -> Iterator[str | Draft]:
    """What ``stream`` yields; a generator without one sends its whole text as one piece."""
    stream = getattr(gen, "stream", None)
    if callable(stream):
        yield from stream(question, passages, ctx)
        return
    draft = gen.generate(question, passages, ctx)
    if not isinstance(draft, Draft):
        raise TypeError(f"generator {gen.name!r} returned a {type(draft).__name__}, not a rag.generation.Draft")
    yield draft.text
    yield draft


def with_span(outcome: Outcome, marker: Generator, question: str, passages: Sequence[Passage]) -> Outcome:
    """An answer another generator wrote (an LLM's), with its exact answer marked in the passages it cites
    by ``marker.mark_span`` (the extractive generator's reader); unchanged when it has one, or abstained."""
    draft = outcome.draft
    mark = getattr(marker, "mark_span", None)
    if draft.abstained or draft.span is not None or outcome.generator == marker.name or not callable(mark):
        return outcome
    cited = [c.n for c in draft.citations] if draft.citations is not None else [q.n for q in draft.quotes]
    span = mark(question, passages, cited)
    return outcome if span is None else Outcome(replace(draft, span=span), outcome.generator)


def to_answer(question: str, query: str, passages: Sequence[Passage], outcome: Outcome, warnings: list[str],
              timings: dict[str, float]) -> Answer:
    """The Answer of a Draft: its quotes become citations with source offsets (unless it cited itself)."""
    draft = outcome.draft
    citations = draft.citations
    if citations is None:
        citations = [_citation(passages, q, outcome.generator) for q in draft.quotes]
    citations = [_with_base(c, passages) for c in citations]
    return Answer(
        question=question, answer=draft.text, abstained=draft.abstained, citations=citations,
        passages=list(passages), warnings=warnings + list(draft.warnings), timings=timings,
        generator=outcome.generator, query=query if query != question else None, support=draft.support,
        confidence=draft.confidence, answer_span=_span(passages, draft.span),
    )


def _span(passages: Sequence[Passage], span: Quote | None) -> dict[str, Any] | None:
    """The exact answer as text and source offsets (``Chunk.source_span``), or None."""
    if span is None or not 1 <= span.n <= len(passages):
        return None
    chunk = passages[span.n - 1].chunk
    if not 0 <= span.start < span.end <= len(chunk.text):
        return None
    start, end = chunk.source_span(span.start, span.end)
    return {"text": display(chunk.text[span.start : span.end]), "start": start, "end": end, "n": span.n}


def _with_base(citation: Citation, passages: Sequence[Passage]) -> Citation:
    """The citation, saying which knowledge base its passage came from (when passages say so)."""
    if 1 <= citation.n <= len(passages) and passages[citation.n - 1].kb is not None and citation.kb is None:
        return replace(citation, kb=passages[citation.n - 1].kb)
    return citation


def _citation(passages: Sequence[Passage], quote: Quote, generator: str) -> Citation:
    if not 1 <= quote.n <= len(passages) or not 0 <= quote.start <= quote.end <= len(passages[quote.n - 1].chunk.text):
        raise ValueError(f"generator {generator!r} quoted {quote}, outside the {len(passages)} passages it was given")
    citation = Citation.of(quote.n, passages[quote.n - 1].chunk, quote.start, quote.end)
    return replace(citation, quote=display(citation.quote))  # shown without markup; offsets still the source's
