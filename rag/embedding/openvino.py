"""Sentence-transformers models run by OpenVINO: the fast engine for indexing and for cold starts.

Same model, same prompts, same pooling as the sentence-transformers path, but:

- indexing is faster (bf16 where the CPU has it, fused kernels): 1.2x sentence-transformers
  with bf16 autocast and 2x in fp32 on the project's machine; see ``python bench/ingest.py``;
- a fresh process embeds a question without importing torch, transformers or
  sentence-transformers (about 6 s of imports), which is what makes ``rag ask`` start fast.

sentence-transformers has an OpenVINO backend of its own, but it needs optimum-intel,
whose requirements would downgrade transformers and pull a CUDA build of torch.  So the
model is exported once with ``openvino.convert_model`` (that step does use torch) and
cached; tokenising (HF ``tokenizers``, the model's own ``tokenizer.json``; for e5's kind a
quick-loading copy with the same ids, ``rag.embedding.fast_tokenizer``), pooling and
normalising stay here, read from the model directory's sentence-transformers configs.
Models whose pipeline is not Transformer -> Pooling (mean or CLS) -> Normalize are not
handled here and run through sentence-transformers instead.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import cache_root as settings_cache_root
from rag.embedding import export_cache, fast_tokenizer, ov_runtime
from rag.embedding.batching import MicroBatcher
from rag.errors import EmbedderError

BATCHED_ROWS = 8  # calls of at most this many texts go through the micro-batcher (rag.embedding.batching)
# Padded tokens (rows x width) per network call when embedding many texts. A call's activations grow with
# it (attention's rows x heads x width^2 above all); kept near the caches' size, a bulk embedding runs
# faster than at a fixed 32 rows: on 640-token chunks 12,600 tokens/s against 11,585, on questions
# 14,700 against 13,700 (bench/ingest.py's rows, AVX512-BF16 host). 1,024 and 8,192 were slower.
TOKEN_BUDGET = 2048
ENGINE_VERSION = 1  # bump when the exported files change shape, so caches are rebuilt
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json", "tokenizer.json")


class EngineUnavailable(EmbedderError):
    """This model cannot run on OpenVINO here; the caller falls back to sentence-transformers."""


@dataclass(frozen=True)
class ModelConfig:
    """What the sentence-transformers configs of a model directory say, read without importing it."""

    path: Path
    dim: int
    pooling: str  # "mean" | "cls"
    max_length: int
    prompts: dict[str, str]
    lower_case: bool = False


def read_model_config(path: Path) -> ModelConfig:
    """Read modules.json and friends; EngineUnavailable for pipelines this engine does not run."""
    try:
        return _read_model_config(path)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:  # missing or malformed configs
        raise EngineUnavailable(f"{path}: unreadable sentence-transformers config ({exc})") from exc


def _read_model_config(path: Path) -> ModelConfig:
    modules_file = path / "modules.json"
    if not modules_file.is_file() or not (path / "tokenizer.json").is_file():
        raise EngineUnavailable(f"{path} has no modules.json or tokenizer.json")
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        raise EngineUnavailable(f"{path}: modules {kinds} are not Transformer -> Pooling [-> Normalize]")
    if modules[0].get("path", "") not in ("", "."):
        raise EngineUnavailable(f"{path}: the transformer lives in a sub-folder")
    pool = json.loads((path / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
    pooling = _pooling_mode(pool)
    if pooling not in ("mean", "cls"):
        raise EngineUnavailable(f"{path}: pooling {pooling!r} is neither mean nor CLS")
    if pool.get("include_prompt") is False:
        raise EngineUnavailable(f"{path}: pooling leaves the prompt out (include_prompt=false)")
    dim = int(pool.get("embedding_dimension") or pool["word_embedding_dimension"])
    st_cfg = _json_or_empty(path / "sentence_bert_config.json")
    st_prompts = _json_or_empty(path / "config_sentence_transformers.json").get("prompts") or {}
    max_len = int(st_cfg.get("max_seq_length") or _json_or_empty(path / "tokenizer_config.json").get("model_max_length", 512))
    return ModelConfig(path, dim, pooling, min(max_len, 8192), dict(st_prompts), lower_case=bool(st_cfg.get("do_lower_case")))


def _pooling_mode(pool: dict) -> str | None:
    """sentence-transformers 6 writes ``pooling_mode: "mean"``; older versions one bool per mode."""
    mode = pool.get("pooling_mode")
    if isinstance(mode, list):
        mode = mode[0] if len(mode) == 1 else None
    if isinstance(mode, str):
        return {"cls_token": "cls", "mean_tokens": "mean"}.get(mode, mode)
    legacy = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
    active = [k for k, v in pool.items() if k.startswith("pooling_mode_") and v is True]
    return legacy.get(active[0], active[0]) if len(active) == 1 else None


def _json_or_empty(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def cache_root(root: Path | None = None) -> Path:
    """``openvino/`` under the settings' cache root (``RAG_CACHE_DIR``), beside the converted models."""
    return (root or settings_cache_root()) / "openvino"


def _cache_key(path: Path, cache: Path | None = None) -> str:
    """The model files' bytes (``export_cache``): a replaced model is exported again, a copy elsewhere is not."""
    return export_cache.content_key(cache_root(cache), [path / name for name in _WEIGHT_FILES], salt=ENGINE_VERSION)


def export_dir(cfg: ModelConfig, cache: Path | None = None) -> Path:
    """Where this model's OpenVINO copy is (or goes), with its quick-loading tokenizer's files."""
    return cache_root(cache) / f"{cfg.path.name}-{_cache_key(cfg.path, cache)}"


def model_tokenizer(cfg: ModelConfig, cache: Path | None = None) -> fast_tokenizer.FastTokenizer | None:
    """This model's quick-loading tokenizer (``rag.embedding.fast_tokenizer``), one in the process for
    every user of it (the embedder, the reader), built beside the OpenVINO copy when that exists;
    None for a tokenizer.json of another kind."""
    out = export_dir(cfg, cache)
    return fast_tokenizer.shared(cfg.path / "tokenizer.json", cfg.max_length, cfg.path, out,
                                 build_in=out if out.is_dir() else None)


def exported_model(cfg: ModelConfig, cache: Path | None = None) -> Path:
    """The OpenVINO IR of this model, exported on first use (needs torch then, once) under ``cache``."""
    out = export_dir(cfg, cache)
    if (out / "model.xml").is_file() and (out / "model.bin").is_file():
        export_cache.mark_used(out)
        return out / "model.xml"
    print(f"preparing the OpenVINO copy of {cfg.path.name} (once; cached in {out})", file=sys.stderr)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like the model folder
    except OSError as exc:
        raise EngineUnavailable(f"cannot write the OpenVINO copy under {out.parent} ({exc}); set RAG_CACHE_DIR") from exc
    try:
        _export(cfg, tmp)
        # rename is atomic: a killed export leaves only a hidden temp folder, never a half model
        try:
            tmp.rename(out)
        except OSError:  # another process exported it first
            if not (out / "model.xml").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    export_cache.prune(out, cfg.path.name)  # older exports of a model of this name beyond the few last used
    return out / "model.xml"


def _export(cfg: ModelConfig, dest: Path) -> None:
    import torch  # noqa: PLC0415 - only the one-off export needs torch
    from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415 - transformers (~3 s) only for the one-off export

    try:
        tok = AutoTokenizer.from_pretrained(str(cfg.path))
        model = AutoModel.from_pretrained(str(cfg.path)).eval()
        example = dict(tok(["an example", "两个例子，长短不一"], padding=True, return_tensors="pt"))
        # The tracer warns about shape checks in transformers' masking code; they are constant
        # for an encoder with a mask, and the tests check padded and truncated batches.
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ov_model = ov_runtime.convert_model(model, example_input=example)
        # fp16 weights halve the file; compute stays f32/bf16 (cosine vs fp32 torch >= 0.9999, tested)
        ov_runtime.runtime().save_model(ov_model, str(dest / "model.xml"), compress_to_fp16=True)
    except Exception as exc:
        raise EngineUnavailable(f"cannot export {cfg.path} to OpenVINO: {exc}") from exc


def compile_cached(xml: Path, config: dict[str, str]) -> Any:
    """``compile_model`` on the CPU with OpenVINO's model cache in ``compiled/`` beside the IR: a later
    process loads the compiled network instead of compiling it again (the cold start of ``rag ask``).
    The blob is keyed by the IR, the config and OpenVINO's version, so it cannot go stale."""
    ov = ov_runtime.runtime()

    config = dict(config)
    cache = xml.parent / "compiled"
    try:
        cache.mkdir(exist_ok=True)
        config["CACHE_DIR"] = str(cache)
    except OSError:  # a read-only model cache: compile every time, as before
        pass
    try:
        return ov.Core().compile_model(str(xml), "CPU", config)
    except RuntimeError as exc:
        # Two first starts at once (two checkouts' `make setup`, a CI run beside a session) write the
        # same blob: OpenVINO then fails on the file the other process replaced. The cache is only a
        # speed-up, so compile without it this once rather than fail the start.
        if "CACHE_DIR" not in config or "filesystem error" not in str(exc):
            raise
        return ov.Core().compile_model(str(xml), "CPU", {k: v for k, v in config.items() if k != "CACHE_DIR"})


def token_batches(lengths: Sequence[int], max_rows: int, budget: int) -> list[list[int]]:
    """Indices of ``lengths`` in batches: sorted by length, each batch at most ``max_rows`` long and its
    rows x longest length within ``budget`` (a text longer than the budget goes alone)."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if current and (len(current) >= max_rows or (len(current) + 1) * lengths[i] > budget):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class OpenVINOEncoder:
    """Tokenise, run the exported transformer, pool and normalise; thread-safe."""

    def __init__(self, cfg: ModelConfig, bf16: bool, batch_size: int = 32, cache: Path | None = None) -> None:
        try:
            ov_runtime.runtime()  # optional engine: missing means EngineUnavailable
            from tokenizers import Tokenizer  # noqa: PLC0415 - HF tokenizers only when an encoder is built
        except ImportError as exc:
            raise EngineUnavailable(f"OpenVINO is not installed ({exc})") from exc
        self.cfg, self.batch_size = cfg, batch_size
        xml = exported_model(cfg, cache)
        compiled: list = []

        def compile_model() -> None:
            try:
                compiled.append(compile_cached(xml, {
                    "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32", "PERFORMANCE_HINT": "LATENCY"}))
            except Exception as exc:
                compiled.append(exc)

        # Compiling releases the GIL and loading tokenizer.json (0.55 s for e5's 250k pieces)
        # holds it: side by side they cost the longer of the two, which matters for cold starts.
        worker = threading.Thread(target=compile_model, name="openvino-compile", daemon=True)
        worker.start()
        # Better still, a tokenizer.json of e5's kind has a quick-loading copy (rag.embedding.fast_tokenizer,
        # same ids): it loads in a thread that releases the GIL, while the index and jieba load.
        self._fast = model_tokenizer(cfg, cache)
        self._tok = None if self._fast is not None else Tokenizer.from_file(str(cfg.path / "tokenizer.json"))
        worker.join()
        if isinstance(compiled[0], Exception):
            raise EngineUnavailable(f"OpenVINO cannot compile {xml}: {compiled[0]}") from compiled[0]
        self._compiled = compiled[0]
        self._inputs = {p.get_any_name() for p in self._compiled.inputs}
        if self._tok is not None:
            self._tok.enable_truncation(cfg.max_length)
            self._tok.no_padding()
        self._pad_id = self._pad_token_id()
        self._local = threading.local()  # one infer request per thread: requests are not shareable
        self._batcher = MicroBatcher(self._infer, name="embedder", max_rows=BATCHED_ROWS * 4)

    def _infer(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """The network's outputs for ``input_ids``, ``attention_mask`` [, ``token_type_ids``]."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        names = ("input_ids", "attention_mask", "token_type_ids")
        return [request.infer(dict(zip(names, arrays, strict=False)))[0]]

    def _pad_token_id(self) -> int:
        pad = _json_or_empty(self.cfg.path / "tokenizer_config.json").get("pad_token")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        found = (self._fast or self._tok).token_to_id(pad) if pad else None
        return int(found) if found is not None else 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors (n, dim), float32. Texts are sorted by token count so batches carry little padding,
        and a batch holds at most ``batch_size`` texts and ``TOKEN_BUDGET`` padded tokens: long passages go
        a few to a call, short ones many."""
        out = np.zeros((len(texts), self.cfg.dim), np.float32)
        if not texts:
            return out
        if self.cfg.lower_case:  # as sentence-transformers' Transformer module does
            texts = [t.lower() for t in texts]
        encs = self._fast.encode_ids(list(texts)) if self._fast is not None else [
            e.ids for e in self._tok.encode_batch(list(texts))]
        shared = len(texts) <= BATCHED_ROWS  # a question or a few sentences: may share a call with others
        for idx in token_batches([len(e) for e in encs], self.batch_size, TOKEN_BUDGET):
            out[idx] = self._batch([encs[i] for i in idx], shared)
        return out

    def _batch(self, encs: list[list[int]], shared: bool) -> np.ndarray:
        width = max(len(e) for e in encs)
        ids = np.full((len(encs), width), self._pad_id, np.int64)
        mask = np.zeros((len(encs), width), np.int64)
        for row, e in enumerate(encs):
            ids[row, : len(e)] = e
            mask[row, : len(e)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = (self._batcher if shared else self._infer)(*feed.values())[0]
        if self.cfg.pooling == "cls":
            vecs = hidden[:, 0]
        else:
            vecs = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)
