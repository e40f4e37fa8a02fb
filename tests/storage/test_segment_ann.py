"""A large segment's approximate index (``rag.storage.segments.ann``): fast-scan PQ where it can train,
IVF-SQ8 where it cannot; its breadth tuned on the recall after exact re-scoring; kept across a save and
load; and a store mixing both kinds (segments written before and after) searches like exact search."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from rag.storage.segments import ann
from rag.storage.segments import index as segments
from rag.storage.segments.segment import Rows, Segment, write_segment
from rag.storage.vectors import TUNE_K, TUNE_RECALL, build_index, describe, exact_top, tune_breadth, tuning_queries

DIM = 32
EMB = {"name": "fake", "dim": DIM, "engine": "test"}
CHUNKING = {"chunk_tokens": 300, "overlap_tokens": 50, "headers": "none"}


def _clustered(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    """Unit vectors around 40 centres: text embeddings cluster, and IVF lists follow clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim))
    x = centres[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _near(x: np.ndarray, m: int, seed: int) -> np.ndarray:
    """``m`` questions at cosine 0.8 from stored vectors (as the tuner's, but others)."""
    rng = np.random.default_rng(seed)
    base = x[rng.choice(len(x), m, replace=False)]
    noise = rng.standard_normal(base.shape).astype(np.float32)
    noise -= (noise * base).sum(1, keepdims=True) * base
    q = 0.8 * base + 0.6 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def _rows(x: np.ndarray, prefix: str = "") -> Rows:
    """``x`` as a segment's rows: documents of 4 chunks, one BM25 term."""
    n = len(x)
    lines = [f'{{"id": "{prefix}d{i // 4}#{i % 4}", "doc_id": "{prefix}d{i // 4}", "text": "t{i}", "start": 0, '
             f'"end": 2, "meta": {{}}}}\n'.encode() for i in range(n)]
    docs = [(f"{prefix}d{j}", f"sha{j}") for j in range((n + 3) // 4)]
    return Rows(lines, docs, (np.arange(n) // 4).astype(np.int32), x, np.array([7], np.uint64), np.zeros(n, np.int64),
                np.arange(n, dtype=np.int64), np.ones(n, np.uint8), np.ones(n, np.int32), np.full(n, -1, np.int32),
                np.full(n, -1, np.int32), [], [])


def test_a_large_segment_gets_fast_scan_codes_tuned_on_the_re_scored_recall():
    x = _clustered(3_000, 0)
    index = ann.build(x)
    assert isinstance(index, faiss.IndexIVFPQFastScan)
    assert (index.M, index.nbits) == (DIM // ann.PQ_DIMS, 4)
    params = describe(index)
    assert params["kind"] == "ivf-pq-fs" and params["nprobe"] == index.nprobe and params["pq_m"] == DIM // 4
    assert 1 <= index.nprobe < index.nlist  # tuned: the smallest breadth reaching the target, not all lists
    # on fresh questions near the data, the re-scored shortlist finds the exact top 10
    q = _near(x, 200, 1)
    ids = index.search(q, ann.shortlist(10, index))[1]
    sims = np.einsum("qkd,qd->qk", x[np.maximum(ids, 0)], q)
    top = np.take_along_axis(ids, np.argsort(-sims, axis=1)[:, :10], 1)
    exact = exact_top(x, q, 10)[1]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, exact)])
    assert recall >= TUNE_RECALL - 0.05
    assert ann.shortlist(10, index) == ann.MIN_SHORTLIST and ann.shortlist(100, index) == 100 * ann.RESCORE_PQ


@pytest.mark.parametrize(("n", "dim"), [(ann.MIN_PQ_ROWS - 1, DIM), (3_000, 30)])
def test_segments_pq_cannot_train_on_get_ivf_sq8(n, dim):
    index = ann.build(_clustered(n, 2, dim))
    assert isinstance(index, faiss.IndexIVFScalarQuantizer)
    assert ann.shortlist(100, index) == 100 * ann.RESCORE_SQ8


def test_the_codes_and_their_breadth_survive_a_write_and_read(tmp_path):
    x = _clustered(2_000, 3)
    write_segment(tmp_path / "seg-000001", _rows(x), 0, ann=True)
    seg = Segment(tmp_path / "seg-000001")
    assert isinstance(seg.ann, faiss.IndexIVFPQFastScan)
    assert seg.meta["ann"]["kind"] == "ivf-pq-fs" and seg.ann.nprobe == seg.meta["ann"]["nprobe"]
    assert seg.shortlist(20) == 20 * ann.RESCORE_PQ
    q = _near(x, 1, 4)[0]
    rows, scores = seg.dense(q, 5, None)
    exact = np.argsort(-(x @ q))[:5]
    assert set(rows.tolist()) == set(exact.tolist())
    assert scores == pytest.approx(np.sort(x @ q)[::-1][:5], abs=2e-3)  # exact cosines of float16 vectors
    mask = np.zeros(len(x), bool)
    mask[::2] = True  # a filter letting half the rows through: searched through the codes, still exact scores
    rows, _ = seg.dense(q, 5, mask)
    assert mask[rows].all() and set(rows.tolist()) == set(np.flatnonzero(mask)[np.argsort(-(x[mask] @ q))[:5]].tolist())
    seg.close()


def test_a_store_mixing_older_sq8_segments_and_fast_scan_ones_searches_like_exact(tmp_path, monkeypatch):
    folder = tmp_path / "idx"
    snap = segments.empty(folder, EMB, CHUNKING)
    parts = [_clustered(1_500, 10 + i) for i in range(3)]
    entry = dict(snap.store.manifest_entry())
    entries: list = []
    documents: dict = {}
    for i, x in enumerate(parts):
        rows = _rows(x, f"p{i}-")
        if i == 0:  # written as before this round: IVF-SQ8
            monkeypatch.setattr(ann, "build", lambda v: build_index(v, v.shape[1], kind="ivf-sq8"))
        else:
            monkeypatch.undo()
        entries.append(segments.add_rows(folder, entry, rows, ann=True))
        documents |= {d: {"sha256": s, "chunks": 4, "path": d} for d, s in rows.docs}
    snap = segments.commit(folder, snap, documents, entries, int(entry["next_key"]), 1_000, EMB, CHUNKING)
    store = snap.store
    kinds = sorted(type(seg.ann).__name__ for seg in store.segments)
    assert kinds == ["IndexIVFPQFastScan", "IndexIVFPQFastScan", "IndexIVFScalarQuantizer"]
    assert [seg.key_base for seg in store.segments] == [0, 1_500, 3_000]  # keys in the order of the parts
    x = np.vstack(parts)
    agree = 0
    for q in _near(x, 30, 5):
        hits = store.dense(q, 10, None)
        agree += len({k for k, _ in hits} & set(np.argsort(-(x @ q))[:10].tolist()))
    assert agree >= 0.9 * 300


def test_a_relative_target_stops_where_more_breadth_buys_nothing_back():
    """Codes that lose recall at every breadth: the absolute target probes everything, the relative one
    the smallest breadth within TUNE_RECALL of the widest."""
    x = _clustered(2_000, 7)
    exact = exact_top(x, tuning_queries(x), TUNE_K)[1]
    breadth = {"v": 0}

    def search(queries: np.ndarray) -> np.ndarray:  # 9 of each top 10 from breadth 4 on, 5 below
        ids = exact.copy()
        ids[:, -(1 if breadth["v"] >= 4 else 5):] = -1
        return ids

    steps = [1, 2, 4, 8, 16]
    assert tune_breadth(x, lambda v: breadth.update(v=v), steps, search) == 16
    assert tune_breadth(x, lambda v: breadth.update(v=v), steps, search, relative=True) == 4
