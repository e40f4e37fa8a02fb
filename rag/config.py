"""One settings object, filled from defaults, then ``RAG_*`` environment variables, then arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Settings:
    embedder: str = "multilingual-e5-small"
    chunk_tokens: int = 192
    overlap_tokens: int = 48
    headers: str = "none"  # article/section titles in what is indexed: none | dense | both
    top_k: int = 5
    retrieval: str = "hybrid"  # hybrid | dense | lexical
    candidates: int = 100
    generator: str = "extractive"  # or "provider:model", e.g. openai:gpt-4o-mini (OPENAI_BASE_URL for any compatible server)
    context_tokens: int = 4096  # LLM context budget for instructions + passages + question
    llm_timeout: float = 60.0  # seconds per LLM request
    llm_retries: int = 2  # bounded retries with backoff, by the LLM client
    max_file_mb: float = 50.0
    max_question_chars: int = 2000
    batch_size: int = 32
    progress: bool = True
    # ---- the server (rag serve, the HTTP API, the chat) ----
    api_key: str = field(default="", repr=False)  # guards document writes and uploads when set
    max_upload_mb: float = 20.0  # per upload request, through the API or the chat
    # generators a network client may pick, comma-separated, besides `generator` (which always is):
    # picking one makes the server load a model or spend its own LLM credentials, so the operator chooses
    allowed_generators: str = ""
    allowed_origins: str = ""  # other web origins (https://host:port, comma-separated) that may send writes
    allowed_hosts: str = ""  # Host names served besides loopback when listening on loopback (DNS rebinding)

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ConfigError(f"top_k must be greater than 0. Currently, top_k is {self.top_k}")
        if self.max_file_mb <= 0:
            raise ConfigError(f"max_file_mb must be positive. Currently, max_file_mb is {self.max_file_mb}")
        if self.max_upload_mb <= 0:
            raise ConfigError(f"max_upload_mb must be positive. Currently, max_upload_mb is {self.max_upload_mb}")

    def network_generators(self) -> list[str]:
        """The generator specs a network client may choose: the configured one first, then
        ``allowed_generators``; ``*`` there allows any (only for a server its operator alone uses)."""
        specs = [self.generator.strip() or "extractive"]
        specs += [s.strip() for s in self.allowed_generators.split(",") if s.strip()]
        return list(dict.fromkeys(specs))

    def check_network_generator(self, spec: str | None) -> str | None:
        """``spec`` if a network client may choose it (None = the configured one), else ``ConfigError``."""
        if spec is None or not spec.strip():
            return None
        allowed = self.network_generators()
        if spec.strip() not in allowed and "*" not in allowed:
            raise ConfigError(
                f"generator {spec.strip()!r} is not allowed on this server; allowed: {', '.join(a for a in allowed if a != '*')} "
                "(the operator sets RAG_ALLOWED_GENERATORS)"
            )
        return spec.strip()

    def comma_list(self, name: str) -> list[str]:
        return [s.strip() for s in str(getattr(self, name)).split(",") if s.strip()]

    def with_overrides(self, **overrides: Any) -> Settings:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"RAG_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw, type(getattr(cls(), f.name)))
        return cls(**values)


def _parse(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise ConfigError(f"RAG_{name.upper()} must be a {kind.__name__}. Currently, it is {raw!r}") from None
