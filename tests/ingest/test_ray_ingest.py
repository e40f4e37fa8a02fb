"""Indexing through Ray (rag.indexing.distributed) gives the index the in-process path gives.

A local Ray of 2 CPUs, started once for the module in a short temp folder, with usage stats
off and a token of its own (nothing written to ~/.ray); shut down at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT, SEEDS

from rag.ingest.chunking import ChunkSettings
from rag.storage.faiss.build import build_snapshot, empty_snapshot

pytestmark = pytest.mark.ray

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]'): the Ray ingestion path is untested")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install '.[ray]')")

from rag.indexing.distributed import RayIngest  # noqa: E402 - only once Ray is known to be there

ZH = "第{i}段：分布式索引把文件分给多个工作进程，读取、清洗、切分之后由嵌入模型计算向量。每个向量都要和单进程的结果一致。"
EN = "Paragraph {i}: the distributed path reads, cleans and chunks files on workers, then embedding actors embed them."
MAX_BYTES = 50 * 2**20


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    """seeds/ plus a Chinese and an English document, an empty file and a binary one."""
    extra = tmp_path_factory.mktemp("ray-corpus")
    (extra / "zh.txt").write_text("\n\n".join(ZH.format(i=i) for i in range(40)), encoding="utf-8")
    (extra / "en.md").write_text("# Notes\n\n" + "\n\n".join(EN.format(i=i) for i in range(40)), encoding="utf-8")
    (extra / "empty.txt").write_bytes(b"")
    (extra / "blob.txt").write_bytes(bytes(range(256)) * 8)
    return [SEEDS, extra]


@pytest.fixture(scope="module")
def cluster():
    keys = ("RAY_USAGE_STATS_ENABLED", "RAY_AUTH_TOKEN")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    temp = tempfile.mkdtemp(prefix="rt-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    try:
        yield RayIngest.connect("auto", num_cpus=2, temp_dir=temp)
    finally:
        ray.shutdown()
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def both(cluster, corpus, embedder):
    """The same corpus indexed in-process and through Ray."""
    chunking = ChunkSettings()

    def build(distributed):
        return build_snapshot(empty_snapshot(embedder, chunking), corpus, embedder, chunking, sync=True,
                              max_bytes=MAX_BYTES, progress=False, distributed=distributed)

    return build(None), build(cluster)


def test_cluster_is_local_with_two_cpus_and_workers_import_this_checkout(cluster):
    @ray.remote
    def rag_file() -> str:
        import rag

        return rag.__file__

    assert ray.cluster_resources()["CPU"] == 2
    assert cluster.actors == 2
    assert Path(ray.get(rag_file.remote())).resolve() == (ROOT / "rag" / "__init__.py").resolve()


def test_same_documents_chunks_and_order(both):
    (local, local_report), (remote, remote_report) = both
    assert remote_report.added == local_report.added and len(local_report.added) == 3
    assert [c.chunk_id for c in remote.chunks] == [c.chunk_id for c in local.chunks]
    assert [c.to_dict() for c in remote.chunks] == [c.to_dict() for c in local.chunks]
    drop_time = lambda docs: {k: {f: v for f, v in d.items() if f != "indexed_at"} for k, d in docs.items()}  # noqa: E731
    assert drop_time(remote.documents) == drop_time(local.documents)


def test_vectors_agree_with_in_process(both):
    (local, _), (remote, _) = both
    a = local.vectors.reconstruct_n(0, local.size)
    b = remote.vectors.reconstruct_n(0, remote.size)
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(f"\n{len(cos)} vectors, min cosine Ray vs in-process {cos.min():.7f}, identical rows {np.mean(np.all(a == b, axis=1)):.0%}")
    assert cos.min() >= 0.9999


def test_unreadable_files_skipped_with_the_same_reasons(both):
    (_, local_report), (_, remote_report) = both
    assert remote_report.skipped == local_report.skipped
    reasons = {Path(p).name: r for p, r in local_report.skipped.items()}
    assert set(reasons) == {"empty.txt", "blob.txt"}
    assert reasons["empty.txt"].startswith("empty.txt: ") and reasons["blob.txt"].startswith("blob.txt: ")


def test_unchanged_documents_are_not_embedded_again(cluster, corpus, embedder, both):
    (local, _), _ = both
    chunking = ChunkSettings()
    _, report = build_snapshot(local, corpus, embedder, chunking, sync=True, max_bytes=MAX_BYTES, progress=False,
                               distributed=cluster)
    assert report.unchanged == sorted(local.documents) and report.chunks_embedded == 0


class _ExplodingChunking:
    """Chunk settings whose size cannot be read: chunking fails on the worker for every document."""

    overlap_tokens, headers = 48, "none"

    @property
    def chunk_tokens(self) -> int:
        raise RuntimeError("chunk size unreadable")


def test_a_worker_failure_names_the_document(cluster, corpus):
    from ray import cloudpickle

    from rag.errors import LoaderError
    from rag.ingest.files import find_files

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    files, _ = find_files(corpus)
    readable = {f.doc_id for f in files if f.path.name not in ("empty.txt", "blob.txt")}
    with pytest.raises(LoaderError, match="cleaning or chunking failed on a Ray worker: RuntimeError") as err:
        cluster.prepare(files, _ExplodingChunking(), MAX_BYTES)
    assert str(err.value).split(":")[0] in readable


def test_an_embedder_the_workers_cannot_load_is_an_embedder_error(cluster, tmp_path):
    from rag.errors import EmbedderError

    missing = f"st:{tmp_path / 'no-such-model'}"
    t0 = time.monotonic()
    with pytest.raises(EmbedderError, match="no-such-model"):
        cluster.embed(["一段文字"], missing, 32)
    assert time.monotonic() - t0 < 120


def _run(code: str) -> tuple[subprocess.CompletedProcess, float]:
    env = os.environ | {"PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    return done, time.monotonic() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("scheme", ["ray://", ""])
def test_an_address_without_a_cluster_fails_quickly_and_clearly(scheme):
    address = f"{scheme}127.0.0.1:{_free_port()}"
    done, seconds = _run(
        "from rag.errors import ConfigError\nfrom rag.indexing.distributed import connect\n"
        f"try:\n    connect({address!r})\nexcept ConfigError as exc:\n    print('ConfigError:', exc)\n")
    assert f"ConfigError: no Ray cluster answers at {address!r}" in done.stdout, done.stderr[-2000:]
    assert seconds < 30  # ray.init alone retries for over a minute


def test_without_ray_installed_the_error_says_what_to_install():
    done, _ = _run(
        "import sys\nsys.modules['ray'] = None\nfrom rag.errors import ConfigError\n"
        "from rag.indexing.distributed import RayIngest\n"
        "try:\n    RayIngest.connect('auto')\nexcept ConfigError as exc:\n    print('ConfigError:', exc)\n")
    assert "ConfigError: indexing with --ray (RAG_RAY) needs Ray Data" in done.stdout, done.stderr[-2000:]
    assert "pip install '.[ray]'" in done.stdout


def test_rag_index_through_ray_into_milvus_answers_as_in_process(cluster, corpus, tmp_path):
    """The whole path of `rag index --ray auto --store milvus:…`: the facade, the cluster, the store."""
    pytest.importorskip("milvus_lite", reason="pip install '.[milvus]'")
    from rag import RAG

    local = RAG.open(tmp_path / "local", create=True, progress=False)
    local.index(corpus)
    spread = RAG.open(tmp_path / "spread", create=True, progress=False, ray="auto", store=f"milvus:{tmp_path}/r.db")
    report = spread.index(corpus)
    assert report.skipped.keys() == local.index(corpus).skipped.keys() and spread.size == local.size
    for q in ("蓝风微短剧基地从签约到试运营用了多少天？", "What is note 7 about?"):
        assert [p.chunk.chunk_id for p in spread.search(q)] == [p.chunk.chunk_id for p in local.search(q)]
    assert "47天" in spread.ask("蓝风微短剧基地从签约到试运营用了多少天？").answer


# ---- the actors write into a Milvus server themselves -------------------------------------------
# The collection they write is the one this process writes (same rows, same BM25 state, same
# answers), and a failed insert fails the run with its rows hidden until the next open removes them.
# The server is Milvus Lite serving on loopback.

WRITE_QUERIES = ["蓝风微短剧基地从签约到试运营用了多少天？", "What is note 7 about?", "分布式索引 嵌入模型", "embedding actors"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("milvus_lite", reason="pip install '.[milvus]'")
    from milvus_lite.server import Server

    port = _free_port()
    server = Server(str(tmp_path_factory.mktemp("srv") / "srv.db"), f"127.0.0.1:{port}")
    assert server.init() and server.start(), "milvus-lite did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pair(cluster, corpus, server, tmp_path_factory):
    """The corpus indexed into the server twice: by the Ray actors, and in-process (this process inserts)."""
    from rag import RAG
    from rag.storage.milvus.client import MilvusStore

    base = tmp_path_factory.mktemp("pair")
    local = RAG.open(base / "local", create=True, progress=False, store=f"milvus:{server}")
    local.index(corpus)
    spread = RAG.open(base / "spread", create=True, progress=False, ray="auto", store=f"milvus:{server}")
    with pytest.MonkeyPatch.context() as mp:  # proof that the rows do not go in from this process
        mp.setattr(MilvusStore, "add", lambda *a, **k: pytest.fail("the driver inserted rows"))
        spread.index(corpus)
    return local, spread, base


def _rows(rag) -> tuple[Any, list[dict]]:
    from rag.storage.milvus.rows import FIELDS

    store = rag.state.store
    rows = store.client.get(store.collection, ids=list(range(store.count())), output_fields=list(FIELDS),
                            consistency_level="Strong")
    return store, sorted(rows, key=lambda r: r["pk"])


def test_the_actors_write_the_rows_this_process_writes(pair):
    local, spread, _ = pair
    (a_store, a), (b_store, b) = _rows(local), _rows(spread)
    assert a_store.collection != b_store.collection and len(a) == len(b) > 20
    assert [r["pk"] for r in b] == list(range(len(b)))
    exact = [f for f in a[0] if f != "dense"]
    for ra, rb in zip(a, b):
        assert {f: rb[f] for f in exact} == {f: ra[f] for f in exact}  # sparse weights, dl, avgdl to the bit
    da, db = np.array([r["dense"] for r in a], np.float32), np.array([r["dense"] for r in b], np.float32)
    same = np.mean(np.all(da == db, axis=1))
    print(f"\n{len(a)} rows; every field but dense identical; dense identical in {same:.0%} of rows, "
          f"max |diff| {np.abs(da - db).max():.2e}")
    assert np.abs(da - db).max() < 1e-4  # the model run on a worker: float noise only (test_ray_ingest)


def test_the_bm25_state_is_the_one_this_process_keeps(pair):
    local, spread, _ = pair
    a, b = (json.loads(_rows(r)[0].state_path.read_text()) for r in (local, spread))
    assert a == b and a["n"] > 20 and a["next_pk"] == a["n"]


def test_search_gives_the_same_passages_and_scores(pair):
    local, spread, _ = pair
    for q in WRITE_QUERIES:
        got, want = spread.search(q), local.search(q)
        assert got and [p.chunk.chunk_id for p in got] == [p.chunk.chunk_id for p in want]
        assert np.allclose([p.score for p in got], [p.score for p in want], atol=1e-4, rtol=0)


def _chunks(doc: str, n: int) -> list[Any]:
    from rag.types import Chunk

    texts = [f"{doc} 第{i}段：嵌入模型的工作进程直接写入向量数据库。" for i in range(n)]
    return [Chunk(f"{doc}-{i}", doc, t, 0, len(t), {}) for i, t in enumerate(texts)]


def test_a_failed_insert_fails_the_run_and_its_rows_stay_hidden(cluster, server, embedder, tmp_path):
    from rag.errors import RagError
    from rag.storage.milvus.client import MilvusStore
    from rag.types import Chunk

    store = MilvusStore.open(server, "fails", embedder.dim, create=True, state_dir=tmp_path)
    kept = _chunks("a.txt", 5)
    store.add_on_workers(kept, [c.text for c in kept], {"a.txt": "a" * 64}, cluster, embedder.name, 32)
    store.publish({"a.txt": "a" * 64})
    # 300 chunks in several blocks; the longest, last in the length order, is over Milvus's text limit
    bad = _chunks("b.txt", 300)
    bad[-1] = Chunk("b.txt-big", "b.txt", "长" * 30_000, 0, 30_000, {})
    with pytest.raises(RagError, match=r"writing to Milvus collection 'fails'.*b.txt-big.*over the Milvus store's "
                                       r"limit.*The rows written are hidden") as err:
        store.add_on_workers(bad, [c.text for c in bad], {"b.txt": "b" * 64}, cluster, embedder.name, 32)
    assert "\n" not in str(err.value) and "Traceback" not in str(err.value)  # the cause, not Ray's traceback
    assert ("b.txt", "b" * 64) in store.journal.hidden()
    print(f"\nrows in the collection after the failure: {store.count()} (5 published)")
    hits = store.dense(embedder.embed_queries(["嵌入模型的工作进程"])[0], 50, None)
    assert sorted(k for k, _ in hits) == list(range(5))  # readers see only a.txt's rows
    again = MilvusStore.open(server, "fails", embedder.dim, state_dir=tmp_path, live={"a.txt": "a" * 64})
    assert again.count() == 5 and again.journal.hidden() == [] and again.state.n == 5


def test_a_lite_file_keeps_one_writer(embedder, tmp_path):
    pytest.importorskip("milvus_lite", reason="pip install '.[milvus]'")
    from rag.errors import RagError
    from rag.storage.milvus.client import MilvusStore

    store = MilvusStore.open(str(tmp_path / "m.db"), "lite", embedder.dim, create=True)
    with pytest.raises(RagError, match="takes one writer"):
        store.add_on_workers(_chunks("a.txt", 1), ["x"], {"a.txt": "a" * 64}, None, embedder.name, 32)
