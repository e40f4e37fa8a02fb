"""MilvusStore (Milvus Lite, a tmp file) against the FAISS SnapshotStore on the real seed chunks."""

from __future__ import annotations

import dataclasses
import importlib.util
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from rag.errors import IndexMismatchError, IndexNotFoundError
from rag.storage.faiss.snapshot import load_snapshot  # the FAISS index the Milvus rows are copied from
from rag.storage.lexical import LexicalIndex
from rag.storage.store import NOTHING, SnapshotStore
from rag.text.indexed import indexed_text
from rag.text.normalize import index_terms
from rag.types import Chunk

_MISSING = [m for m in ("pymilvus", "milvus_lite") if importlib.util.find_spec(m) is None]
if _MISSING:
    print(f"test_milvus_store skipped: {', '.join(_MISSING)} not installed (pip install '.[milvus]')")
    pytest.skip(f"{', '.join(_MISSING)} not installed (pip install '.[milvus]')", allow_module_level=True)

from rag.storage.milvus.client import MilvusStore, MilvusUnavailableError  # noqa: E402
from rag.storage.milvus.sparse_bm25 import term_id  # noqa: E402

QUERIES = ["天心经开区微短剧基地", "习近平总书记走进一户人家", "中国式现代化迈出新的重要步伐", "AI选角平台影嗅",
           "湖南大数据交易所 数字资产确权", "政治忠诚", "量子计算机的发展"]
DATES = ("2023-01-05", "2024-06-01", None)  # the seed has no dates: given here, every third chunk none
ODD_ARTICLE = "增长50%_以上"  # LIKE's wildcards in a title: the filter must take them literally

pytestmark = pytest.mark.milvus


def _dated(chunks: list[Chunk]) -> list[Chunk]:
    out = []
    for i, c in enumerate(chunks):
        meta = dict(c.meta)
        if DATES[i % 3]:
            meta["date"] = DATES[i % 3]
        if i == 5:
            meta["article"] = ODD_ARTICLE
        out.append(dataclasses.replace(c, meta=meta))
    return out


@pytest.fixture(scope="module")
def seed(seed_index, embedder):
    snap = load_snapshot(seed_index)
    snap = dataclasses.replace(snap, chunks=_dated(snap.chunks))  # texts unchanged: vectors and BM25 still fit
    vectors = snap.vectors.reconstruct_n(0, snap.size)
    return snap, vectors, embedder.embed_queries(QUERIES)


def _live(snap) -> dict[str, str]:
    return {d: meta["sha256"] for d, meta in snap.documents.items()}


def _build(path, snap, vectors, collection="seed", headers=None) -> MilvusStore:
    store = MilvusStore.open(str(path / "m.db"), collection, vectors.shape[1], create=True,
                             headers=headers or snap.chunking["headers"], state_dir=path)
    keys = store.add(snap.chunks, vectors, _live(snap))
    store.publish(_live(snap))
    assert keys == list(range(snap.size))  # keys from 0 in order: positions, so both stores' keys compare
    return store


@pytest.fixture(scope="module")
def built(seed, tmp_path_factory):
    snap, vectors, _ = seed
    path = tmp_path_factory.mktemp("milvus")
    return _build(path, snap, vectors), path


def _same_ranking(got, want, tol):
    assert [k for k, _ in got] == [k for k, _ in want]
    assert np.allclose([s for _, s in got], [s for _, s in want], atol=tol, rtol=0)


def test_dense_and_lexical_top10_equal_the_snapshot(seed, built):
    snap, _, qvecs = seed
    store, ref = built[0], SnapshotStore(snap)
    assert store.size == ref.size == snap.size
    for q, qv in zip(QUERIES, qvecs):
        _same_ranking(store.dense(qv, 10, None), ref.dense(qv, 10, None), 1e-5)
        _same_ranking(store.lexical(q, 10, None), ref.lexical(q, 10, None), 1e-4)
    assert ref.lexical(QUERIES[0], 10, None), "the check needs queries with lexical hits"


def test_no_term_collides_in_the_seed_vocabulary(seed):
    snap = seed[0]
    terms = {t for c in snap.chunks for t in index_terms(c.text)}
    assert len({term_id(t) for t in terms}) == len(terms) > 1000


def test_lexical_parity_with_titles_indexed(seed, tmp_path):
    """headers="all" puts article and section before the text for BM25: the store indexes the same text."""
    snap, vectors, _ = seed
    store = _build(tmp_path, snap, vectors, "titled", headers="all")
    lex = LexicalIndex.build([indexed_text(c, "all", for_dense=False) for c in snap.chunks])
    ref = SnapshotStore(dataclasses.replace(snap, lexical=lex))
    for q in QUERIES:
        _same_ranking(store.lexical(q, 10, None), ref.lexical(q, 10, None), 1e-4)


def test_idf_and_cosines_equal_the_snapshot(seed, built):
    snap, _, qvecs = seed
    store, ref = built[0], SnapshotStore(snap)
    for term in ["经开区", "的", "微短剧", "不存在的词语"]:
        assert store.idf(term) == pytest.approx(ref.idf(term), abs=1e-9)
    keys = [0, 7, snap.size // 2, snap.size - 1]
    got, want = store.cosines(keys, qvecs[0]), ref.cosines(keys, qvecs[0])
    assert got.keys() == want.keys() and all(abs(got[k] - want[k]) < 1e-6 for k in keys)


def test_chunks_round_trip(seed, built):
    snap, store = seed[0], built[0]
    got = store.chunks(list(range(snap.size)))
    assert [got[i] for i in range(snap.size)] == snap.chunks  # meta (offset_runs, dates) included
    assert any(c.meta.get("offset_runs") for c in got.values())


@pytest.mark.parametrize("filters", [
    {"doc": "000_*"}, {"doc": "000_e58332798fe41e73.txt"}, {"article": "数字潮涌"}, {"article": "0%_"},
    {"date_from": "2024-01-01"}, {"date_to": "2023-12-31"},
    {"date_from": "2023-01-01", "date_to": "2024-12-31", "article": "上接"},
])
def test_filters_select_what_the_snapshot_selects(seed, built, filters):
    snap, _, qvecs = seed
    store, ref = built[0], SnapshotStore(snap)
    mine, theirs = store.where(filters), ref.where(filters)
    assert mine is not NOTHING and theirs is not NOTHING
    for q, qv in zip(QUERIES, qvecs):
        _same_ranking(store.dense(qv, 100, mine), ref.dense(qv, 100, theirs), 1e-5)
        _same_ranking(store.lexical(q, 100, mine), ref.lexical(q, 100, theirs), 1e-4)


@pytest.mark.parametrize("filters", [{"doc": "nothing-*.txt"}, {"article": "没有这个标题"},
                                     {"article": "50_"},  # "_" taken literally: no title holds "50_"
                                     {"date_from": "2030-01-01"}])
def test_filters_matching_nothing(seed, built, filters):
    store = built[0]
    assert store.where(filters) is NOTHING and SnapshotStore(seed[0]).where(filters) is NOTHING
    assert store.dense(seed[2][0], 10, NOTHING) == [] and store.lexical(QUERIES[0], 10, NOTHING) == []


def _two_docs(snap) -> tuple[list[Chunk], dict[str, str]]:
    """The seed document and a copy of it under another id."""
    copy = [dataclasses.replace(c, doc_id="copy.txt", chunk_id="copy-" + c.chunk_id) for c in snap.chunks]
    return snap.chunks + copy, {**_live(snap), "copy.txt": "c" * 64}


def test_deleted_document_is_gone_at_once_and_after_reopen(seed, tmp_path):
    snap, vectors, qvecs = seed
    chunks, live = _two_docs(snap)
    db = str(tmp_path / "m.db")
    store = MilvusStore.open(db, "two", vectors.shape[1], create=True, state_dir=tmp_path)
    store.add(chunks, np.vstack([vectors, vectors]), live)
    store.publish(live)
    assert store.doc_chunk_counts() == {d: snap.size for d in live}
    assert store.delete_docs(["copy.txt"]) == snap.size
    assert store.doc_chunk_counts() == dict.fromkeys(_live(snap), snap.size) and store.count() == snap.size
    hits = store.dense(qvecs[0], 2 * snap.size, None) + store.lexical(QUERIES[0], 2 * snap.size, None)
    assert hits and all(k < snap.size for k, _ in hits)  # the copy's keys came after the seed's
    ref = SnapshotStore(snap)
    for q in QUERIES:  # BM25 after the delete: document frequencies and N back to the seed's alone
        _same_ranking(store.lexical(q, 10, None), ref.lexical(q, 10, None), 1e-4)
    before = store.dense(qvecs[1], 10, None), store.lexical(QUERIES[1], 10, None)
    again = MilvusStore.open(db, "two", vectors.shape[1], state_dir=tmp_path)
    assert (again.dense(qvecs[1], 10, None), again.lexical(QUERIES[1], 10, None)) == before
    assert again.add(snap.chunks[:1], vectors[:1], live)[0] == 2 * snap.size  # keys are never reused


def test_a_killed_writer_leaves_the_old_document(seed, tmp_path):
    """Rows of a version the manifest does not name stay hidden, and reopening with the manifest removes them."""
    snap, vectors, qvecs = seed
    db, live = str(tmp_path / "m.db"), _live(snap)
    store = MilvusStore.open(db, "crash", vectors.shape[1], create=True, state_dir=tmp_path)
    store.add(snap.chunks, vectors, live)
    store.publish(live)
    before = store.dense(qvecs[0], 10, None)
    new_sha = {d: "f" * 64 for d in live}
    store.add(snap.chunks[:5], vectors[:5], new_sha)  # a new version, killed after 5 chunks: never published
    assert store.dense(qvecs[0], 10, None) == before and store.count() == snap.size + 5
    (tmp_path / "milvus-crash-df.json").unlink()  # and its BM25 state lost: rebuilt from the rows
    again = MilvusStore.open(db, "crash", vectors.shape[1], state_dir=tmp_path, live=live)
    assert again.count() == snap.size and again.dense(qvecs[0], 10, None) == before
    for q in QUERIES:
        _same_ranking(again.lexical(q, 10, None), SnapshotStore(snap).lexical(q, 10, None), 1e-4)


def test_a_published_new_version_replaces_the_old(seed, tmp_path):
    snap, vectors, _ = seed
    live = _live(snap)
    store = MilvusStore.open(str(tmp_path / "m.db"), "upd", vectors.shape[1], create=True, state_dir=tmp_path)
    store.add(snap.chunks, vectors, live)
    store.publish(live)
    new = {d: "e" * 64 for d in live}
    keys = store.add(snap.chunks[:3], vectors[:3], new)
    assert store.publish(new) == snap.size
    assert sorted(store.chunks(keys)) == keys and store.count() == 3
    assert store.dense(vectors[0], 10, None)[0][0] == keys[0]


def test_another_dim_is_a_clear_error(built):
    with pytest.raises(IndexMismatchError, match="dim 384, not 768"):
        MilvusStore.open(str(built[1] / "m.db"), "seed", 768, state_dir=built[1])


def test_a_missing_collection_is_a_clear_error(built):
    with pytest.raises(IndexNotFoundError, match="no Milvus collection 'absent'.*create=True"):
        MilvusStore.open(str(built[1] / "m.db"), "absent", 384, state_dir=built[1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_a_clear_error_within_seconds(tmp_path):
    uri = f"http://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with pytest.raises(MilvusUnavailableError, match=f"cannot reach Milvus at {uri} within 5 s"):
        MilvusStore.open(uri, "seed", 384, state_dir=tmp_path)
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("name", ["bad name.db", "x" * 34 + ".db"])
def test_a_file_name_lite_refuses_is_a_clear_error(tmp_path, name):
    with pytest.raises(MilvusUnavailableError, match=f"cannot open the Milvus Lite file .*{name}: Milvus Lite takes"):
        MilvusStore.open(str(tmp_path / name), "seed", 384, create=True)
    MilvusStore.open(str(tmp_path / ("x" * 33 + ".db")), "seed", 4, create=True)  # 36 characters: taken


_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from pathlib import Path
    from rag.storage.milvus.client import MilvusStore
    from rag.types import Chunk
    uri, state = sys.argv[1], Path(sys.argv[2])
    store = MilvusStore.open(uri, "shared", 4, create=True, state_dir=state)
    chunks = [Chunk(f"c{i}", "a.txt", text, 0, len(text), {"date": "2024-01-0" + str(i + 1)})
              for i, text in enumerate(["天心经开区的微短剧基地", "湖南大数据交易所", "中国式现代化"])]
    store.add(chunks, np.eye(4, dtype=np.float32)[:3], {"a.txt": "a" * 64})
    store.publish({"a.txt": "a" * 64})
""")


def test_two_processes_through_a_lite_server(tmp_path):
    """One process writes through a Milvus Lite server on loopback, this one reads what it wrote."""
    from milvus_lite.server import Server

    port = _free_port()
    server = Server(str(tmp_path / "srv.db"), f"127.0.0.1:{port}")
    assert server.init() and server.start(), "milvus-lite did not start"
    try:
        uri = f"http://127.0.0.1:{port}"
        subprocess.run([sys.executable, "-c", _WRITER, uri, str(tmp_path)], check=True, timeout=120)
        store = MilvusStore.open(uri, "shared", 4, state_dir=tmp_path)
        assert store.doc_chunk_counts() == {"a.txt": 3}
        assert store.dense(np.array([0, 1, 0, 0], np.float32), 1, None) == [(1, pytest.approx(1.0))]
        assert [k for k, _ in store.lexical("微短剧", 3, None)] == [0]
        assert store.chunks([2])[2].meta == {"date": "2024-01-03"}
    finally:
        server.stop()


def test_bm25_drift_is_reported_not_hidden(seed, tmp_path, caplog):
    """Short chunks added later move the mean length away from the one in the stored weights."""
    snap, vectors, _ = seed
    live = _live(snap)
    store = MilvusStore.open(str(tmp_path / "m.db"), "drift", vectors.shape[1], create=True, state_dir=tmp_path)
    store.add(snap.chunks, vectors, live)
    assert store.bm25_drift() == 0.0
    short = [Chunk(f"s{i}", "short.txt", "微短剧", 0, 3) for i in range(snap.size)]
    with caplog.at_level("WARNING", logger="rag.storage.milvus.client"):
        store.add(short, vectors, {"short.txt": "d" * 64})
    assert store.bm25_drift() > 0.4 and "rebuild the collection for exact BM25" in caplog.text
