"""The Chinese of the errors and warnings a chat user can meet, shown before the library's English text.

The library's messages stay English (API clients, logs and tests match their wording); the chat, like
the rest of its page, shows each in Chinese first, from ``rag.catalogue``: an error by its code, a text
(an index report's skipped reasons, an answer's warnings, an error's message that travelled as text) by
the catalogue's English template it is. An error raised without a code is one no user causes (a bug, or
another library's text): it is shown in English only, as is a text the catalogue does not know.
tests/ui/test_messages.py raises each error from the code that writes it, so a reworded error cannot
silently lose its Chinese.
"""

from __future__ import annotations

from rag.catalogue import Message, recognise
from rag.errors import RagError
from rag.http.redact import public_message


def catalogued(error: RagError | str) -> Message | None:
    """The catalogued message of ``error``: an error's by its code, a text's by its English template; None
    for an error without a code or a text the catalogue does not know."""
    if isinstance(error, RagError):
        return None if error.code is None else Message(error.code, error.params)
    return recognise(str(error))


def chinese(error: RagError | str) -> str | None:
    """The Chinese of an error or warning the library writes; None for one the catalogue does not know."""
    found = catalogued(error)
    return None if found is None else found.text("zh")


def bilingual(error: RagError | str) -> str:
    """``中文 · English`` for a known error, else the English as it is (plain text: escape it to show it).
    A server path in either is shown by its last part (``rag.http.redact``): the chat is a client too."""
    message = public_message(str(error))
    zh = chinese(error if isinstance(error, RagError) else message)
    return message if zh is None else f"{public_message(zh)} · {message}"


def localized(error: RagError | str, lang: str) -> str:
    """The message in the page's language: ``zh`` the catalogue's Chinese (the English where it has none),
    any other the library's English; plain text, with server paths shown by their last part."""
    message = public_message(str(error))
    if isinstance(error, RagError) and error.code is None:  # the page's own refusals (ui.texts.Refusal)
        return public_message(error.text(lang) or message)
    if lang != "zh":
        return message
    zh = chinese(error if isinstance(error, RagError) else message)
    return message if zh is None else public_message(zh)


__all__ = ["bilingual", "catalogued", "chinese", "localized"]
