"""A large segment's approximate index: IVF lists of 4-bit PQ fast-scan codes, re-scored exactly.

The dense side only shortlists with it: the shortlist is re-scored from the segment's float16
``vectors.npy`` (``Segment.cosines``), so the codes need to rank, not to score. Earlier versions
wrote 8-bit scalar codes (IVF-SQ8, 384 bytes a 384-dim vector). At 10M chunks a question's probed
lists held ~770,000 of them, and scanning them was 30 ms of both cores, half of a question's work.
FAISS's fast-scan PQ (4-bit codes compared with in-register lookups, André et al. 2015) scanned the
same lists of one 250,000-row segment 13x faster here (0.22 against 2.84 ms at 200 lists), in 48
bytes a vector (``dim / 4`` sub-quantizers of 4 bits) instead of 384, so serving memory and disk
shrink too.

Its scores are coarser than SQ8's, so a segment with these codes re-scores ``RESCORE_PQ`` times k
(SQ8: 2 times): on that segment, recall@10 after re-scoring was the same as SQ8's and recall@100
0.70 against 0.73 at 8 times. The IVF breadth is tuned as every other approximate index here
(``rag.storage.vectors.tune_breadth``), but on the recall@10 after that re-scoring, which is what a
search returns, and relative to that recall with every list probed: on 10M synthetic vectors that
barely cluster the codes lose a little whatever the breadth, and the absolute target made every
segment probe all its lists (40 segments' shared budget then scanned 2,000 lists where 1,536 had
done). Segments written before keep their IVF-SQ8 index and are searched as before.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rag.storage.vectors import MIN_PROBED, NPROBE_STEPS, TUNE_K, build_index, ivf_nlist, tune_breadth

PQ_DIMS = 4  # dimensions per 4-bit sub-quantizer: 96 of them (48 bytes a vector) for e5-small's 384
PQ_BITS = 4  # fast scan's code width
MIN_PQ_ROWS = 39 * 2**PQ_BITS  # FAISS trains each sub-quantizer's 16 centroids on at least 39 points each
RESCORE_SQ8 = 2  # how many times k an IVF-SQ8 segment shortlists for exact re-scoring
RESCORE_PQ = 8  # the same for fast-scan codes, whose scores are coarser
MIN_SHORTLIST = 100


def build(x: np.ndarray) -> Any:
    """The approximate index of a segment's vectors ``x`` (float32 unit vectors, row i is id i): fast-scan
    PQ, or IVF-SQ8 where PQ cannot train (fewer than ``MIN_PQ_ROWS`` rows, a width not divisible by 4)."""
    import faiss  # noqa: PLC0415 - FAISS (~0.3 s) only for a large segment ANN index

    n, dim = x.shape
    if n < MIN_PQ_ROWS or dim % PQ_DIMS:
        return build_index(x, dim, kind="ivf-sq8")
    nlist = ivf_nlist(n)
    index = faiss.index_factory(dim, f"IVF{nlist},PQ{dim // PQ_DIMS}x{PQ_BITS}fs", faiss.METRIC_INNER_PRODUCT)
    index.train(x)
    index.add(x)
    floor = min(nlist, math.ceil(MIN_PROBED * nlist / n))
    steps = sorted({max(floor, s) for s in NPROBE_STEPS if s <= nlist} | {nlist})

    def rescored(queries: np.ndarray) -> np.ndarray:
        """The ``TUNE_K`` best of each query's shortlist by exact inner product (what a search returns)."""
        ids = index.search(queries, shortlist(TUNE_K, index))[1]
        sims = np.einsum("qkd,qd->qk", x[np.maximum(ids, 0)], queries)
        sims[ids < 0] = -np.inf
        top = np.argsort(-sims, axis=1, kind="stable")[:, :TUNE_K]
        return np.where(np.take_along_axis(sims, top, 1) > -np.inf, np.take_along_axis(ids, top, 1), -1)

    tune_breadth(x, lambda v: setattr(index, "nprobe", v), steps, rescored, relative=True)
    return index


def is_pq(index: Any) -> bool:
    import faiss  # noqa: PLC0415 - only asked of an index FAISS made

    return isinstance(index, faiss.IndexIVFPQFastScan)


def shortlist(k: int, index: Any) -> int:
    """How many of ``index``'s approximate neighbours are re-scored exactly for the ``k`` best."""
    return max((RESCORE_PQ if is_pq(index) else RESCORE_SQ8) * k, MIN_SHORTLIST)


__all__ = ["MIN_PQ_ROWS", "MIN_SHORTLIST", "PQ_DIMS", "RESCORE_PQ", "RESCORE_SQ8", "build", "is_pq", "shortlist"]
