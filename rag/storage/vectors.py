"""The FAISS index, chosen by corpus size: exact below ``RAG_FAISS_FLAT_MAX`` vectors, approximate above.

Exact inner-product search reads every vector for every query, which is cheap
up to tens of thousands of chunks and then grows linearly.  Above the threshold
an approximate index keeps a query well under a millisecond or two; its search
breadth (IVF ``nprobe``, HNSW ``efSearch``) is tuned at build time on the
corpus itself until recall@10 against exact search reaches ``TUNE_RECALL``.

IVF-Flat is the default approximate index because this project rebuilds the
whole index on every ``rag index`` run: on 2 cores (``bench/query.py``, 100k
vectors of dim 384) HNSW with M=32, efConstruction=80 took 25 s to build where
IVF took 1.8 s (29 s for 1M), with the same recall@10 (0.98) and searches of
0.1-0.4 ms.  ``RAG_FAISS_ANN=hnsw`` selects HNSW; ``ivf-sq8`` stores 1 byte per
dimension instead of 4 where memory matters, but then ``reconstruct`` is only
approximate (about 1e-2), and so are the vectors reused by the next build.

Every kind keeps the contract the rest of the code relies on: vector i is chunk i,
``reconstruct(i)``/``reconstruct_n`` work (IVF gets a direct map), and scores are
inner products of unit vectors, i.e. cosines.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rag.config import Settings, current
from rag.errors import ConfigError

FLAT_MAX_ENV = "RAG_FAISS_FLAT_MAX"
ANN_ENV = "RAG_FAISS_ANN"
KINDS = ("flat", "ivf", "ivf-sq8", "hnsw")

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
# From 64, not FAISS's 16: HNSW loses recall fast on queries away from the stored vectors
# (questions embed differently from passages), and 64 costs well under a millisecond.
EF_SEARCH_STEPS = (64, 96, 128, 192, 256, 384, 512)
NPROBE_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
MIN_TRAIN_PER_LIST = 39  # FAISS warns and clusters poorly below 39 training points per centroid
MIN_PROBED = 512  # vectors scanned at least, so the retriever's 100 candidates fill up on small corpora

TUNE_RECALL = 0.97  # tuned above the promised 0.95: the tuning queries are only a sample
TUNE_QUERIES = 100
TUNE_COSINE = 0.8  # tuning queries sit at this cosine from a stored vector, in a random direction
TUNE_K = 10


def choose_kind(n: int, settings: Settings | None = None) -> str:
    """Exact below ``faiss_flat_max`` vectors, else the ``faiss_ann`` kind (``RAG_FAISS_FLAT_MAX``,
    ``RAG_FAISS_ANN``; default: this process's settings)."""
    s = settings or current()
    return "flat" if n < s.faiss_flat_max else s.faiss_ann


def ivf_nlist(n: int) -> int:
    """About sqrt(n) lists, but never fewer than 39 training points per list."""
    return max(1, min(round(math.sqrt(n)), n // MIN_TRAIN_PER_LIST))


def build_index(vectors: np.ndarray, dim: int, kind: str | None = None, settings: Settings | None = None):
    """An inner-product index holding ``vectors`` in row order; ``kind`` defaults to :func:`choose_kind`."""
    import faiss  # noqa: PLC0415 - FAISS (~0.3 s) only once vectors are indexed or searched

    x = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
    n = len(x)
    kind = kind or choose_kind(n, settings)
    if kind not in KINDS:
        raise ConfigError(f"FAISS index kind must be one of {', '.join(KINDS)}. Currently, it is {kind!r}")
    if kind == "flat" or n == 0:
        index = faiss.IndexFlatIP(dim)
        if n:
            index.add(x)
        return index
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.add(x)
        _tune(index, x, lambda v: setattr(index.hnsw, "efSearch", v), EF_SEARCH_STEPS)
        return index
    nlist = ivf_nlist(n)
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
    index.train(x)
    index.add(x)
    index.make_direct_map()  # reconstruct(i) by id, which IVF cannot do otherwise
    floor = min(nlist, math.ceil(MIN_PROBED * nlist / n))
    steps = sorted({max(floor, s) for s in NPROBE_STEPS if s <= nlist} | {nlist})
    _tune(index, x, lambda v: setattr(index, "nprobe", v), steps)
    return index


def describe(index) -> dict[str, Any]:
    """The index's kind and parameters, for the manifest (the same before and after a save and load)."""
    import faiss  # noqa: PLC0415 - FAISS, as in build_index

    out: dict[str, Any] = {
        "type": type(index).__name__,
        "metric": "inner_product" if index.metric_type == faiss.METRIC_INNER_PRODUCT else "l2",
        "kind": _kind_of(index),
        "dim": int(index.d),
        "ntotal": int(index.ntotal),
    }
    if out["kind"] == "hnsw":
        out |= {"M": _hnsw_m(index), "efConstruction": int(index.hnsw.efConstruction),
                "efSearch": int(index.hnsw.efSearch)}
    elif out["kind"] in ("ivf", "ivf-sq8"):
        out |= {"nlist": int(index.nlist), "nprobe": int(index.nprobe),
                "direct_map": index.direct_map.type != faiss.DirectMap.NoMap}
    elif out["kind"] == "ivf-pq-fs":
        out |= {"nlist": int(index.nlist), "nprobe": int(index.nprobe), "pq_m": int(index.M), "pq_bits": int(index.nbits)}
    return out


def tune_after_load(index, params: dict[str, Any] | None = None):
    """Make a freshly read index searchable as it was built; returns it.

    FAISS 1.15 keeps efSearch, nprobe and the IVF direct map in its file, but
    older builds did not keep efSearch, so the manifest's values (``params``,
    from :func:`describe`) are applied again, and a missing direct map is rebuilt.
    """
    import faiss  # noqa: PLC0415 - FAISS, as in build_index

    params = params or {}
    kind = _kind_of(index)
    if kind == "hnsw" and params.get("efSearch"):
        index.hnsw.efSearch = int(params["efSearch"])
    elif kind in ("ivf", "ivf-sq8"):
        if params.get("nprobe"):
            index.nprobe = int(params["nprobe"])
        if index.direct_map.type == faiss.DirectMap.NoMap:
            index.make_direct_map()
    elif kind == "ivf-pq-fs" and params.get("nprobe"):  # no direct map: its segment re-scores from its own vectors
        index.nprobe = int(params["nprobe"])
    return index


def search(index, q: np.ndarray, k: int, allowed: np.ndarray | None):
    """The ``k`` best (scores, positions) of ``index`` for the query vector ``q``, among ``allowed`` when given."""
    import faiss  # noqa: PLC0415 - FAISS, as in build_index

    x = q.reshape(1, -1).astype(np.float32)
    if allowed is None:
        return index.search(x, k)
    if len(allowed) <= 20_000:
        # Exact scores over the allowed chunks: ANN indexes with an ID filter can miss most of a
        # small allowed set (HNSW found 1 of 3 in a test), and a few thousand dot products are cheap.
        vecs = index.reconstruct_batch(np.asarray(allowed, dtype=np.int64))
        scores = vecs @ x[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return scores[order].reshape(1, -1), np.asarray(allowed)[order].reshape(1, -1)
    sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
    if isinstance(index, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(index.hnsw.efSearch, k))
    elif isinstance(index, faiss.IndexIVF):
        params = faiss.SearchParametersIVF(sel=sel, nprobe=index.nprobe)
    else:
        params = faiss.SearchParameters(sel=sel)
    return index.search(x, k, params=params)


def exact_top(x: np.ndarray, queries: np.ndarray, k: int, block: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner products by NumPy matrix products in blocks (bounded memory at any n)."""
    k = min(k, len(x))
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(x), block):
        sims = queries @ x[start : start + block].T
        kk = min(k, sims.shape[1])
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        s = np.concatenate([best_s, np.take_along_axis(sims, part, 1)], 1)
        i = np.concatenate([best_i, part + start], 1)
        keep = np.argsort(-s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(s, keep, 1), np.take_along_axis(i, keep, 1)
    return best_s, best_i


def recall_at_k(x: np.ndarray, queries: np.ndarray, found: np.ndarray, kth_exact: np.ndarray) -> float:
    """Share of found ids that score at least the k-th exact score (ties between duplicate chunks count as hits)."""
    valid = found >= 0
    sims = np.einsum("qkd,qd->qk", x[np.where(valid, found, 0)], queries)
    hits = valid & (sims >= kth_exact[:, None] - 1e-5)
    return float(hits.sum() / found.size)


def _tune(index, x: np.ndarray, set_value: Callable[[int], None], steps: Sequence[int]) -> int:
    return tune_breadth(x, set_value, steps, lambda queries: index.search(queries, TUNE_K)[1])


def tune_breadth(x: np.ndarray, set_value: Callable[[int], None], steps: Sequence[int],
                 search: Callable[[np.ndarray], np.ndarray], relative: bool = False) -> int:
    """Set the smallest search breadth whose recall@10 on sample queries reaches ``TUNE_RECALL``; ``search``
    gives the ``TUNE_K`` ids found for each of the queries at the breadth last set.

    ``relative``: ``TUNE_RECALL`` of the recall at the widest breadth instead. For codes that lose some
    recall whatever the breadth (fast-scan PQ on vectors that barely cluster), the breadth then pays for
    what the lists lose, not for what no breadth can buy back."""
    queries = tuning_queries(x)
    kth = exact_top(x, queries, TUNE_K)[0][:, -1]
    target = TUNE_RECALL
    if relative:
        set_value(steps[-1])
        target *= recall_at_k(x, queries, search(queries), kth)
    for value in steps:
        set_value(value)
        if recall_at_k(x, queries, search(queries), kth) >= target:
            return value
    return steps[-1]


def tuning_queries(x: np.ndarray) -> np.ndarray:
    """Stored vectors moved to cosine ``TUNE_COSINE`` in a random direction: near the data, not on it."""
    rng = np.random.default_rng(0)  # fixed, so a rebuild of the same vectors picks the same breadth
    rows = rng.choice(len(x), size=min(TUNE_QUERIES, len(x)), replace=False)
    base = x[np.sort(rows)]
    noise = rng.standard_normal(base.shape).astype(np.float32)
    noise -= (noise * base).sum(1, keepdims=True) * base  # orthogonal to the stored vector
    noise /= np.linalg.norm(noise, axis=1, keepdims=True) + 1e-12
    q = TUNE_COSINE * base + math.sqrt(1 - TUNE_COSINE**2) * noise
    return np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True), dtype=np.float32)


def _kind_of(index) -> str:
    import faiss  # noqa: PLC0415 - FAISS, as in build_index

    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(index, faiss.IndexIVFScalarQuantizer):
        return "ivf-sq8"
    if isinstance(index, faiss.IndexIVFPQFastScan):
        return "ivf-pq-fs"  # the segments' own kind (rag.storage.segments.ann), not a choice of faiss_ann
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    if isinstance(index, faiss.IndexFlat):
        return "flat"
    return type(index).__name__


def _hnsw_m(index) -> int:
    """M of an HNSW graph: the neighbours per node on levels above 0 (level 0 holds 2·M)."""
    return int(index.hnsw.nb_neighbors(1))
