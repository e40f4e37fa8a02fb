"""Embedding a build's new passages: with a progress bar here, or on a Ray cluster; and what the
manifest records of the embedder. Every backend embeds through ``embed``."""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from rag.embedding.backends import Embedder
from rag.errors import EmbedderError


def embed(embedder: Embedder, texts: list[str], progress: bool, batch_size: int, distributed: Any = None) -> np.ndarray:
    """The passage vectors of ``texts``: here, or on the Ray cluster ``distributed``
    (``rag.indexing.distributed.RayIngest``), checked to be of this process's model's shape."""
    if distributed is None or not texts:  # nothing new: no cluster round trip
        return embed_with_progress(embedder, texts, progress, batch_size)
    vecs = distributed.embed(texts, embedder.name, batch_size)
    if vecs.shape != (len(texts), embedder.dim):  # the cluster resolved the spec to another model
        raise EmbedderError(f"the Ray workers' {embedder.name!r} gave vectors of shape {vecs.shape}; this process's "
                            f"model gives {embedder.dim} dimensions for {len(texts)} texts: install the same model there")
    return vecs


def embedder_entry(embedder: Embedder) -> dict[str, object]:
    """What the manifest says of the embedder; the engine is for the record (engines' vectors agree)."""
    return {"name": embedder.name, "dim": embedder.dim, "engine": getattr(embedder, "engine", "unknown")}


def embed_with_progress(embedder: Embedder, texts: list[str], progress: bool, batch_size: int = 32) -> np.ndarray:
    """Embed passages in length-sorted blocks, showing chunks and chars/s on a progress bar."""
    if not texts:
        return np.zeros((0, embedder.dim), np.float32)
    from tqdm import tqdm  # noqa: PLC0415 - tqdm (~0.3 s) only when there is something to embed

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), embedder.dim), np.float32)
    block = max(batch_size * 4, 64)
    t0 = time.perf_counter()
    chars = 0
    with tqdm(total=len(texts), desc="embedding", unit="chunk", disable=not progress, file=sys.stderr) as bar:
        for b in range(0, len(order), block):
            idx = order[b : b + block]
            out[idx] = embedder.embed_passages([texts[i] for i in idx])
            chars += sum(len(texts[i]) for i in idx)
            bar.update(len(idx))
            bar.set_postfix_str(f"{chars / max(time.perf_counter() - t0, 1e-9):,.0f} chars/s")
    return out


__all__ = ["embed", "embed_with_progress", "embedder_entry"]
