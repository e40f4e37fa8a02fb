"""Whether a string is text at all: a lone UTF-16 surrogate (which JSON allows) is not."""

from __future__ import annotations


def is_encodable(text: str) -> bool:
    """False for strings holding lone surrogates (JSON allows ``\\ud800``; UTF-8 cannot encode it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


__all__ = ["is_encodable"]
