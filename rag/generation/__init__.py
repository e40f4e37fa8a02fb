"""Passages to an answer: the Generator protocol, the offline extractive default, LLMs through LangChain, local GGUF models, prompts and citation checking.

A generator of one's own implements ``Generator`` (``name``, ``generate(question, passages, ctx) -> Draft``;
optionally ``stream`` and ``rewrite``) and is passed as ``RAG.open(..., generator=obj)`` or ``rag.ask(q, generator=obj)``.

May import rag.retrieval (passages), rag.storage, rag.embedding, rag.text, rag.config, rag.types, rag.errors.
"""

from rag.generation.base import (
    NOT_FOUND_EN,
    NOT_FOUND_ZH,
    Context,
    Draft,
    Generator,
    GeneratorError,
    Quote,
    Rewriter,
    StreamingGenerator,
    not_found_message,
)
from rag.generation.extractive import ExtractiveGenerator, ExtractiveSettings

__all__ = [
    "NOT_FOUND_EN", "NOT_FOUND_ZH", "Context", "Draft", "ExtractiveGenerator", "ExtractiveSettings",
    "Generator", "GeneratorError", "Quote", "Rewriter", "StreamingGenerator", "not_found_message",
]
