"""One settings object, filled from defaults, then ``RAG_*`` environment variables, then arguments.

This is the only module that reads ``RAG_*`` variables: every field ``name`` is ``RAG_NAME``.
Every value is checked when the object is made (so at ``RAG.open``), with the bad value and the
variable named in the message. Modules below take their values as arguments; where a function is
also called on its own (``load_embedder``, ``build_index``), its default is ``current()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rag.errors import ConfigError

RETRIEVAL_MODES = ("hybrid", "dense", "lexical")
HEADER_MODES = ("none", "dense", "both")
EMBED_ENGINES = ("auto", "openvino", "torch")
FAISS_ANN_KINDS = ("ivf", "ivf-sq8", "hnsw")
CHUNKING_FIELDS = ("chunk_tokens", "overlap_tokens", "headers")  # fixed when an index is built


@dataclass(frozen=True)
class Settings:
    # ---- the index (chunking and the embedder are recorded in its manifest) ----
    embedder: str = "multilingual-e5-small"
    # 640 over 192, 384 and 512, measured on CMRC 2018 trial, DRCD dev and seed-dev among 1,000 news articles
    # (bench/naive_answer.py, rag eval; see the README's Evaluation): about 400 characters of Chinese a chunk
    chunk_tokens: int = 640
    overlap_tokens: int = 160
    headers: str = "none"  # article/section titles in what is indexed: none | dense | both
    index_dir: str = "index"  # the CLI's default --index-dir, and the default knowledge base of `rag serve`
    store: str = ""  # where a new index keeps chunks and vectors: "" (FAISS files in the index folder) | segments | milvus:PATH.db | milvus:http://HOST:19530
    ray: str = ""  # read, chunk and embed on a Ray cluster: an address (host:port, ray://host:port) or auto; "" = in this process
    kb_root: str = "kbs"  # the other knowledge bases, one index folder each: kbs/<name>/ (`rag kb`, --kb NAME)
    # ---- retrieval and answers ----
    top_k: int = 5
    retrieval: str = "hybrid"  # hybrid | dense | lexical
    candidates: int = 100
    generator: str = "extractive"  # or "provider:model", e.g. openai:gpt-4o-mini (OPENAI_BASE_URL for any compatible server)
    answerer: str = ""  # the extractive answer selector's model JSON (python -m rag.generation.train); "" = the shipped one
    reader: str = ""  # the neural reader (rag train-reader's safetensors); "" = the shipped one; "off" = the selector alone
    context_tokens: int = 4096  # LLM context budget for instructions + passages + question
    llm_timeout: float = 60.0  # seconds per LLM request
    llm_retries: int = 2  # bounded retries with backoff, by the LLM client
    max_file_mb: float = 50.0
    max_question_chars: int = 2000
    # ---- the machine ----
    batch_size: int = 32
    progress: bool = True
    embed_engine: str = "auto"  # auto (OpenVINO where it can, else torch) | openvino | torch
    # Models come from local folders or the local Hugging Face cache; True lets a hub name download.
    allow_downloads: bool = False
    cache_dir: str = ""  # converted and exported models (default: $XDG_CACHE_HOME/rag or ~/.cache/rag)
    faiss_flat_max: int = 50_000  # exact search below this many vectors, approximate above
    faiss_ann: str = "ivf"  # the approximate index: ivf | ivf-sq8 | hnsw
    # ---- the server (rag serve, the HTTP API, the chat) ----
    api_key: str = field(default="", repr=False)  # guards document writes and uploads when set
    max_upload_mb: float = 20.0  # per upload request, through the API or the chat
    max_feedback_mb: float = 20.0  # <index_dir>/feedback.jsonl refuses new feedback beyond this size
    # generators a network client may pick, comma-separated, besides `generator` (which always is):
    # picking one makes the server load a model or spend its own LLM credentials, so the operator chooses
    allowed_generators: str = ""
    allowed_origins: str = ""  # other web origins (https://host:port, comma-separated) that may send writes
    allowed_hosts: str = ""  # Host names served besides loopback when listening on loopback (DNS rebinding)

    def __post_init__(self) -> None:
        for name, low in (("top_k", 1), ("chunk_tokens", 16), ("overlap_tokens", 0), ("candidates", 1),
                          ("context_tokens", 64), ("llm_retries", 0), ("max_question_chars", 1),
                          ("batch_size", 1), ("faiss_flat_max", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                _bad(name, value, f"a whole number of at least {low}")
        for name in ("max_file_mb", "max_upload_mb", "max_feedback_mb", "llm_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                _bad(name, value, "a positive number")
        if self.overlap_tokens >= self.chunk_tokens:
            _bad("overlap_tokens", self.overlap_tokens, f"smaller than chunk_tokens ({self.chunk_tokens})")
        for name, allowed in (("retrieval", RETRIEVAL_MODES), ("headers", HEADER_MODES),
                              ("embed_engine", EMBED_ENGINES), ("faiss_ann", FAISS_ANN_KINDS)):
            if getattr(self, name) not in allowed:
                _bad(name, getattr(self, name), f"one of {', '.join(allowed)}")
        for name in ("embedder", "generator", "index_dir", "kb_root"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                _bad(name, getattr(self, name), "a non-empty string")

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

    # ---- derived views ---------------------------------------------------------------------
    def chunking(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CHUNKING_FIELDS}

    def network_generators(self) -> list[str]:
        """The generator specs a network client may choose: the configured one first, then
        ``allowed_generators``; ``*`` there allows any (only for a server its operator alone uses)."""
        specs = [self.generator.strip()]
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


def cache_root(settings: Settings | None = None) -> Path:
    """Where models converted or exported for this machine live (``cache_dir``, else the XDG cache)."""
    chosen = (settings or current()).cache_dir
    if chosen:
        return Path(chosen).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag"


def current() -> Settings:
    """The settings of this process's environment (for functions called outside a ``RAG``)."""
    return Settings.from_env()


def differences(asked: dict[str, Any], recorded: dict[str, Any]) -> list[str]:
    """``name=asked (the index has recorded)`` for each asked value the index does not have."""
    return [f"{k}={asked[k]!r} (the index has {recorded[k]!r})"
            for k in sorted(asked) if k in recorded and asked[k] is not None and asked[k] != recorded[k]]


def _bad(name: str, value: Any, expected: str) -> None:
    raise ConfigError(f"{name} (RAG_{name.upper()}) must be {expected}. Currently, it is {value!r}")


def _parse(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw.replace("_", ""))
        if kind is str:
            return raw.strip()
        return kind(raw)
    except ValueError:
        raise ConfigError(f"RAG_{name.upper()} must be a {kind.__name__}. Currently, it is {raw!r}") from None
