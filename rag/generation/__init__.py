"""Passages to an answer: the Generator protocol, the offline extractive default, LLMs through LangChain, local GGUF models, prompts and citation checking.

May import rag.retrieval (passages), rag.storage, rag.embedding, rag.text, rag.config, rag.types, rag.errors.
"""

from rag.generation.base import NOT_FOUND_EN, NOT_FOUND_ZH, Draft, Generator, Quote, not_found_message
from rag.generation.extractive import ExtractiveGenerator, ExtractiveSettings

__all__ = [
    "NOT_FOUND_EN", "NOT_FOUND_ZH", "Draft", "ExtractiveGenerator", "ExtractiveSettings",
    "Generator", "Quote", "not_found_message",
]
