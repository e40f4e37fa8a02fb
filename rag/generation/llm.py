"""Answers written by an LLM: any LangChain chat model, named by a ``provider:model`` spec or given as an object.

The prompt numbers the retrieved passages; the model is told to cite them and to
say so when they do not hold the answer.  Its citations are then parsed and
checked (``rag.generation.citations``); a model that cannot be reached raises
``GeneratorError``, and the pipeline falls back to the extractive answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag.catalogue import english
from rag.errors import ConfigError
from rag.generation import prompts
from rag.generation.base import NOT_FOUND_EN, NOT_FOUND_ZH, Context, Draft, GeneratorError, not_found_message
from rag.generation.citations import MARKER, check, marker_numbers
from rag.text.sentences import sentence_spans
from rag.text.tokens import count_tokens
from rag.types import Passage

# Providers whose LangChain classes take timeout= and max_retries= (the OpenAI-style clients).
_TIMEOUT_KWARGS = {"openai", "azure_openai", "deepseek", "groq", "mistralai", "xai", "together", "fireworks", "openrouter"}
_ABSTAIN = re.compile(r"资料中没有|没有找到相关|无法从资料|未提及|do(?:es)? not contain|no information|not mentioned", re.I)


@dataclass(frozen=True)
class LLMSettings:
    context_tokens: int = 4096  # budget for system prompt + passages + question
    timeout: float = 60.0
    retries: int = 2
    temperature: float = 0.0


def known_providers() -> list[str]:
    from langchain.chat_models import base  # noqa: PLC0415 - LangChain (~1 s) loads only to check an LLM spec

    return sorted(getattr(base, "_BUILTIN_PROVIDERS", {}))


def load_chat_model(spec: str, settings: LLMSettings) -> Any:
    """``provider:model`` → a LangChain chat model, through ``init_chat_model`` (``llamacpp:`` is
    ``rag.generation.llamacpp``'s, see ``rag.generation.resolve``)."""
    from langchain.chat_models import init_chat_model  # noqa: PLC0415 - LangChain (~1 s) loads only when an LLM generator is built

    provider, sep, model = spec.partition(":")
    if not sep or not provider or not model:
        raise ConfigError(f"generator must be 'extractive' or 'provider:model' (e.g. openai:gpt-4o-mini). Currently, it is {spec!r}")
    providers = known_providers()
    if providers and provider not in providers:
        raise ConfigError(f"unknown LLM provider {provider!r}; known providers: {', '.join([*providers, 'llamacpp'])}")
    kwargs: dict[str, Any] = {"temperature": settings.temperature}
    if provider in _TIMEOUT_KWARGS:
        kwargs |= {"timeout": settings.timeout, "max_retries": settings.retries}
    try:
        return init_chat_model(model, model_provider=provider, **kwargs)
    except ImportError as exc:
        package = "langchain-" + provider.split("_")[0].replace("google", "google-genai")
        raise ConfigError("llm.needs_package", provider=provider, package=package, reason=str(exc)) from exc
    except Exception as exc:
        raise ConfigError("llm.setup_failed", spec=spec, reason=str(exc)) from exc


def prompt_messages(question: str, passages: Sequence[Passage]) -> list[tuple[str, str]]:
    """The chat messages that ask ``question`` over ``passages``, numbered [1]..[k] in the given order."""
    blocks = "\n\n".join(_block(i, p) for i, p in enumerate(passages, 1))
    return [
        ("system", prompts.SYSTEM.format(not_found=not_found_message(question))),
        ("human", prompts.USER.format(passages=blocks, question=question)),
    ]


def prompt_tokens(question: str, passages: Sequence[Passage]) -> int:
    """cl100k tokens of the messages' text, which ``context_tokens`` budgets (chat-template tokens are the server's)."""
    return sum(count_tokens(text) for _, text in prompt_messages(question, passages))


def fit_passages(question: str, passages: Sequence[Passage], budget: int) -> tuple[list[Passage], list[str]]:
    """Passages whose prompt fits the token budget: the weakest are dropped first, none is cut mid-sentence.

    Each candidate set is costed as the whole prompt it makes (instructions, numbering and
    separators included), so what is returned always fits; it is empty only when not even
    the first sentence of the best passage does.
    """
    order = {id(p): i for i, p in enumerate(passages)}
    kept: list[Passage] = []
    notes: list[str] = []
    for p in sorted(passages, key=lambda p: -p.score):
        trial = sorted([*kept, p], key=lambda q: order[id(q)])
        if prompt_tokens(question, trial) <= budget:
            kept = trial
    if not kept and passages:
        short = _leading_sentences(question, max(passages, key=lambda p: p.score), budget)
        if short is not None:
            kept = [short]
            notes.append(english("answer.passage_shortened"))
    dropped = len(passages) - len(kept)
    if dropped:
        notes.append(english("answer.passages_dropped", n=dropped, budget=budget))
    return kept, notes


def _leading_sentences(question: str, p: Passage, budget: int) -> Passage | None:
    """``p`` cut to the most leading whole sentences whose prompt fits ``budget``; None if not one fits."""
    text, fitted = p.chunk.text, None
    for _, e in sentence_spans(text):
        chunk = replace(p.chunk, text=text[:e], end=p.chunk.source_span(0, e)[1])
        candidate = replace(p, chunk=chunk)
        if prompt_tokens(question, [candidate]) > budget:
            break
        fitted = candidate
    return fitted


def _block(n: int, p: Passage) -> str:
    return prompts.PASSAGE.format(n=n, source=p.chunk.doc_id, text=p.chunk.text)


def _is_abstention(text: str) -> bool:
    t = text.strip()
    return t.startswith((NOT_FOUND_ZH, NOT_FOUND_EN)) or (len(t) < 80 and bool(_ABSTAIN.search(t)))


class LLMGenerator:
    """A Generator over a LangChain chat model; ``stream`` yields text pieces, then the checked ``Draft``.

    ``ctx`` is not needed: the model reads the passages themselves.
    """

    def __init__(self, model: Any, name: str | None = None, settings: LLMSettings | None = None) -> None:
        self.model = model
        self.name = name or type(model).__name__
        self.settings = settings or LLMSettings()

    def messages(self, question: str, passages: Sequence[Passage]) -> list[tuple[str, str]]:
        return prompt_messages(question, passages)

    def generate(self, question: str, passages: Sequence[Passage], ctx: Context | None = None) -> Draft:
        *_, draft = self.stream(question, passages, ctx)
        assert isinstance(draft, Draft)
        return draft

    def stream(self, question: str, passages: Sequence[Passage], ctx: Context | None = None) -> Iterator[str | Draft]:
        """Yield the text as the model writes it, then the checked ``Draft``."""
        used, notes = fit_passages(question, passages, self.settings.context_tokens)
        if passages and not used:  # a prompt without the passages would only make the model say "not found"
            raise GeneratorError(f"not one sentence of the best passage fits the {self.settings.context_tokens}-token "
                                 "context window (context_tokens)")
        pieces: list[str] = []
        try:
            for chunk in self.model.stream(self.messages(question, used)):
                text = _text_of(chunk)
                if text:
                    pieces.append(text)
                    yield text
        except Exception as exc:
            raise GeneratorError(f"{type(exc).__name__}: {_short(str(exc))}") from exc
        answer = "".join(pieces).strip()
        if not answer:
            raise GeneratorError("the model returned an empty answer")
        yield self._draft(question, answer, passages, used, notes)

    def _draft(self, question: str, answer: str, passages: Sequence[Passage], used: list[Passage],
               notes: list[str]) -> Draft:
        if _is_abstention(answer):
            return Draft(not_found_message(question), [], True, notes, support=None)
        # The prompt numbered only the passages that fitted (the best one perhaps shortened, so
        # not the same object): map its numbers back to the full list by chunk id.
        position = {p.chunk.chunk_id: n for n, p in enumerate(passages, 1)}
        renumber = {i: position[p.chunk.chunk_id] for i, p in enumerate(used, 1)}
        answer = _renumber(answer, renumber)
        checked = check(answer, passages)
        return Draft(checked.text, [], False, notes + checked.warnings, support=checked.support,
                     citations=checked.citations)

    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """A standalone question for retrieval, from a follow-up and the chat history."""
        lines = "\n".join(f"{'用户 User' if role == 'user' else '助手 Assistant'}: {text}" for role, text in history[-6:])
        try:
            reply = self.model.invoke([("human", prompts.REWRITE.format(history=lines, question=question))])
        except Exception as exc:
            raise GeneratorError(f"{type(exc).__name__}: {_short(str(exc))}") from exc
        text = _text_of(reply).strip().splitlines()
        return text[0].strip() if text and text[0].strip() else question


def _renumber(answer: str, mapping: dict[int, int]) -> str:
    if all(k == v for k, v in mapping.items()):
        return answer

    def sub(m: re.Match[str]) -> str:
        return "".join(f"[{mapping.get(n, n + 1000)}]" for n in marker_numbers(m.group(1)))

    return MARKER.sub(sub, answer)


def _text_of(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content or "")


def _short(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
