"""Generator specs to generators: the one place that knows the kinds.

- ``extractive``: the offline ``ExtractiveGenerator``
- ``llamacpp:PATH.gguf`` (``llamacpp:gemma3-270m``): a local GGUF model, in process
- any other ``provider:model``: a LangChain chat model from ``init_chat_model``, as an ``LLMGenerator``
- a LangChain ``BaseChatModel`` object: an ``LLMGenerator`` named by the model's class
- any other object implementing ``Generator`` (a ``name`` string and ``generate``): used as it is
"""

from __future__ import annotations

import sys
from typing import Any

from rag.config import Settings
from rag.errors import ConfigError
from rag.generation.base import Generator
from rag.generation.extractive import ExtractiveGenerator, ExtractiveSettings
from rag.generation.llm import LLMGenerator, LLMSettings, load_chat_model

# str | Generator | BaseChatModel; None = the configured one. Any: LangChain is imported only when used.
GeneratorSpec = Any

ACCEPTED = (
    "'extractive', 'provider:model' (e.g. openai:gpt-4o-mini), 'llamacpp:PATH.gguf', a LangChain chat model, "
    "or an object with a `name` string and a `generate(question, passages, ctx)` method (rag.generation.Generator)"
)


def llm_settings(settings: Settings) -> LLMSettings:
    return LLMSettings(context_tokens=settings.context_tokens, timeout=settings.llm_timeout, retries=settings.llm_retries)


class Generators:
    """The generators of one ``RAG``: spec strings are resolved once and cached (a model is set up
    once), objects are used as they come. The default is resolved here, so a bad spec fails at open."""

    def __init__(self, default: GeneratorSpec, settings: Settings) -> None:
        self.llm_settings = llm_settings(settings)
        # also the fallback when another generator fails
        self.extractive = ExtractiveGenerator(ExtractiveSettings(model=settings.answerer or None,
                                                                 reader=settings.reader or None))
        if settings.answerer:
            self.extractive.selector  # noqa: B018 - a bad RAG_ANSWERER fails at open, not at the first question
        if settings.reader and settings.reader != "off":
            self.extractive.reader  # noqa: B018 - so does a bad RAG_READER
        self._cache: dict[str, Generator] = {}
        self.default = self.get("extractive" if default is None else default)

    def get(self, spec: GeneratorSpec = None) -> Generator:
        if spec is None:
            return self.default
        if not isinstance(spec, str):
            return self._from_object(spec)
        key = spec.strip()
        if key not in self._cache:
            self._cache[key] = self._from_spec(key)
        return self._cache[key]

    def _from_spec(self, spec: str) -> Generator:
        if spec in ("", "extractive"):
            return self.extractive
        provider, _, path = spec.partition(":")
        if provider == "llamacpp" and path:
            from rag.generation.llamacpp import llamacpp_generator  # noqa: PLC0415 - optional extra

            return llamacpp_generator(spec, self.llm_settings)
        return LLMGenerator(load_chat_model(spec, self.llm_settings), spec, self.llm_settings)

    def _from_object(self, obj: object) -> Generator:
        # A chat model has `generate` and often a `name` too, so it is told apart first; an object
        # can be one only if langchain_core is loaded, and looking there keeps it unimported otherwise.
        chat_models = sys.modules.get("langchain_core.language_models.chat_models")
        if chat_models is not None and isinstance(obj, chat_models.BaseChatModel):
            return LLMGenerator(obj, type(obj).__name__, self.llm_settings)
        name = getattr(obj, "name", None)
        if not isinstance(obj, type) and callable(getattr(obj, "generate", None)) and isinstance(name, str) and name.strip():
            return obj  # type: ignore[return-value]
        raise ConfigError(f"generator must be {ACCEPTED}. Currently, it is {_describe(obj)}")


def _describe(obj: object) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__name__} (pass an instance)"
    kind = type(obj)
    what = f"{repr(obj)[:60]} ({kind.__name__})" if kind.__module__ == "builtins" else f"a {kind.__module__}.{kind.__qualname__} object"
    if callable(getattr(obj, "generate", None)):
        return f"{what} with generate() but no non-empty `name` string"
    return what


__all__ = ["ACCEPTED", "GeneratorSpec", "Generators", "llm_settings"]
