"""The FAISS index kind follows corpus size, and every kind keeps the store's contract (behaviour only)."""

from __future__ import annotations

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from rag.errors import ConfigError  # noqa: E402
from rag.storage.vectors import (  # noqa: E402
    ANN_ENV,
    FLAT_MAX_ENV,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    build_index,
    choose_kind,
    describe,
    ivf_nlist,
    tune_after_load,
)

DIM = 64
N = 5000


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors (like real embeddings) and queries near them."""
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((50, DIM))
    x = _unit(centres[rng.integers(0, 50, N)] + 0.6 * rng.standard_normal((N, DIM)))
    q = _unit(x[rng.integers(0, N, 50)] + 0.15 * rng.standard_normal((50, DIM)))  # cosine ~0.7 to its source
    return x, q


@pytest.fixture(scope="module")
def built(data) -> dict[str, object]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(FLAT_MAX_ENV, "2000")
        out = {}
        for kind in ("ivf", "ivf-sq8", "hnsw"):
            mp.setenv(ANN_ENV, kind)
            out[kind] = build_index(data[0], DIM)
        return out


def _recall(found: np.ndarray, x: np.ndarray, q: np.ndarray) -> float:
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]))


def test_flat_below_the_threshold(data, monkeypatch):
    monkeypatch.delenv(FLAT_MAX_ENV, raising=False)
    assert choose_kind(49_999) == "flat" and choose_kind(50_000) != "flat"
    index = build_index(data[0], DIM)
    assert isinstance(index, faiss.IndexFlatIP) and index.ntotal == N
    assert describe(index) == {"type": "IndexFlatIP", "metric": "inner_product", "kind": "flat", "dim": DIM, "ntotal": N}
    monkeypatch.setenv(FLAT_MAX_ENV, "2000")
    assert choose_kind(1999) == "flat"
    empty = build_index(np.zeros((0, DIM), np.float32), DIM)
    assert empty.ntotal == 0 and describe(empty)["kind"] == "flat"


@pytest.mark.slow
def test_approximate_above_the_threshold(built, monkeypatch):
    monkeypatch.setenv(FLAT_MAX_ENV, "2000")
    monkeypatch.delenv(ANN_ENV, raising=False)
    assert choose_kind(2000) == "ivf"
    assert isinstance(built["ivf"], faiss.IndexIVFFlat)
    assert isinstance(built["ivf-sq8"], faiss.IndexIVFScalarQuantizer)
    assert isinstance(built["hnsw"], faiss.IndexHNSWFlat)
    for index in built.values():
        assert index.ntotal == N and index.metric_type == faiss.METRIC_INNER_PRODUCT


def test_bad_settings_are_refused(monkeypatch):
    monkeypatch.setenv(FLAT_MAX_ENV, "lots")
    with pytest.raises(ConfigError, match=FLAT_MAX_ENV):
        choose_kind(10)
    monkeypatch.setenv(FLAT_MAX_ENV, "0")
    monkeypatch.setenv(ANN_ENV, "lsh")
    with pytest.raises(ConfigError, match=ANN_ENV):
        choose_kind(10)


def test_ivf_lists_have_enough_training_points():
    assert ivf_nlist(1_000_000) == 1000
    assert ivf_nlist(5000) == 71
    assert ivf_nlist(1000) == 25  # sqrt would be 32, but 1000 // 39 = 25
    assert ivf_nlist(10) == 1


@pytest.mark.parametrize("kind", ["ivf", "ivf-sq8", "hnsw"])
@pytest.mark.slow
def test_reconstruct_returns_the_stored_vectors_in_row_order(built, data, kind):
    x = data[0]
    index = built[kind]
    tol = 2e-2 if kind == "ivf-sq8" else 1e-6  # 8-bit codes: approximate by design
    np.testing.assert_allclose(index.reconstruct(1234), x[1234], atol=tol)
    np.testing.assert_allclose(index.reconstruct_n(0, N), x, atol=tol)


@pytest.mark.parametrize("kind", ["ivf", "ivf-sq8", "hnsw"])
@pytest.mark.slow
def test_search_agrees_with_brute_force(built, data, kind):
    x, q = data
    scores, found = built[kind].search(q, 10)
    assert _recall(found, x, q) >= 0.95
    np.testing.assert_allclose(scores[:, 0], np.max(q @ x.T, axis=1), atol=2e-2)
    # the retriever asks for 100 candidates: the scanned lists must hold at least that many
    assert (built[kind].search(q, 100)[1] >= 0).all()


@pytest.mark.parametrize("kind", ["ivf", "ivf-sq8", "hnsw"])
def test_index_survives_write_and_read(built, data, kind, tmp_path):
    q = data[1]
    index = built[kind]
    path = str(tmp_path / "vectors.faiss")
    faiss.write_index(index, path)
    loaded = tune_after_load(faiss.read_index(path), describe(index))
    assert describe(loaded) == describe(index)
    np.testing.assert_array_equal(loaded.search(q, 10)[1], index.search(q, 10)[1])
    np.testing.assert_array_equal(loaded.reconstruct(17), index.reconstruct(17))


def test_tune_after_load_applies_the_manifest(built, tmp_path):
    path = str(tmp_path / "v.faiss")
    faiss.write_index(built["hnsw"], path)
    loaded = faiss.read_index(path)
    loaded.hnsw.efSearch = 16  # as if the file had not kept it
    assert tune_after_load(loaded, describe(built["hnsw"])).hnsw.efSearch == built["hnsw"].hnsw.efSearch
    faiss.write_index(built["ivf"], path)
    loaded = faiss.read_index(path)
    loaded.nprobe = 1
    loaded.set_direct_map_type(faiss.DirectMap.NoMap)
    tune_after_load(loaded, describe(built["ivf"]))
    assert loaded.nprobe == built["ivf"].nprobe and describe(loaded)["direct_map"]
    assert tune_after_load(loaded, None) is loaded


def test_describe_records_the_parameters(built):
    hnsw = describe(built["hnsw"])
    assert hnsw["type"] == "IndexHNSWFlat" and hnsw["kind"] == "hnsw" and hnsw["metric"] == "inner_product"
    assert (hnsw["M"], hnsw["efConstruction"]) == (HNSW_M, HNSW_EF_CONSTRUCTION) and hnsw["efSearch"] >= 16
    ivf = describe(built["ivf"])
    assert ivf["kind"] == "ivf" and ivf["nlist"] == ivf_nlist(N) and 1 <= ivf["nprobe"] <= ivf["nlist"]
    assert ivf["direct_map"] is True and ivf["dim"] == DIM and ivf["ntotal"] == N
    assert describe(built["ivf-sq8"])["type"] == "IndexIVFScalarQuantizer"
