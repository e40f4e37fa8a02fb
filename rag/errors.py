"""The project's error hierarchy. Each class says its HTTP status and CLI exit code (``http_status``,
``exit_code``: the HTTP layer and the CLI read them); an error a user can cause carries a code of
``rag.catalogue`` and its parameters, from which its English message and its Chinese are written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from rag.catalogue import CATALOGUE, Lang, message


class RagError(Exception):
    """Base class of every error this library raises on purpose.

    ``RagError("file.empty", name="a.txt")`` is the catalogued message ``file.empty``; ``RagError("text")``
    (no parameters, not a code) is a message not catalogued yet, or another library's text, as it is."""

    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, text: object = "", /, **params: Any) -> None:
        if isinstance(text, str) and text in CATALOGUE:
            self.code: str | None = text
            self.params: Mapping[str, Any] = dict(params)
            self.message = message(text, **params).text("en")
        elif params:  # a mistyped code must not become the message
            raise TypeError(f"{type(self).__name__}: no message {text!r} in rag.catalogue (parameters {sorted(params)})")
        else:
            self.code, self.params, self.message = None, {}, str(text)
        super().__init__(self.message)

    def text(self, lang: Lang = "en") -> str | None:
        """The message in ``lang``; None for Chinese of an error with no code (its English is all there is)."""
        if self.code is None:
            return self.message if lang == "en" else None
        return message(self.code, **self.params).text(lang)

    @property
    def zh(self) -> str | None:
        return self.text("zh")

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled across processes (a Ray worker's LoaderError) with its code and parameters, not only its text
        return _rebuilt, (type(self), self.code, dict(self.params), self.message)


def _rebuilt(cls: type[RagError], code: str | None, params: dict[str, Any], text: str) -> RagError:
    return cls(code, **params) if code is not None else cls(text)


class ConfigError(RagError):
    """A setting or a request has a bad value (the message names the setting and the value)."""

    http_status = 400
    exit_code = 2


class EmbedderError(RagError):
    """An embedding model cannot be found, converted or loaded."""

    exit_code = 7


class LoaderError(RagError):
    """A document cannot be read (empty, binary, undecodable, too large)."""

    http_status = 400


class IndexNotFoundError(RagError):
    """No index exists at the given directory."""

    http_status = 503
    exit_code = 3


class IndexCorruptError(RagError):
    """An index exists but its files disagree with each other or with the manifest."""

    exit_code = 4


class IndexMismatchError(RagError):
    """An index was built with another embedder or chunking than the one requested."""

    exit_code = 4


class IndexLockedError(RagError):
    """Another process is writing to the same index."""

    http_status = 503
    exit_code = 5


class DocumentNotFoundError(RagError):
    """A document id is not in the index."""

    http_status = 404
    exit_code = 6


class KnowledgeBaseNotFoundError(RagError):
    """A knowledge base name is not one this installation (or server) has."""

    http_status = 404
    exit_code = 3


class AccessDeniedError(RagError):
    """The caller's key may see the knowledge base but not do this to it (``rag.access``)."""

    http_status = 403
    exit_code = 8
