"""Answer generators: the offline extractive default (and LLM-backed ones)."""

from .base import NOT_FOUND_EN, NOT_FOUND_ZH, Draft, Generator, Quote, not_found_message
from .extractive import ExtractiveGenerator, ExtractiveSettings

__all__ = [
    "NOT_FOUND_EN", "NOT_FOUND_ZH", "Draft", "ExtractiveGenerator", "ExtractiveSettings",
    "Generator", "Quote", "not_found_message",
]
