"""Indexing through Ray (rag.ingest.distributed) gives the index the in-process path gives.

A local Ray of 2 CPUs, started once for the module in a short temp folder, with usage stats
off and a token of its own (nothing written to ~/.ray); shut down at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SEEDS

from rag.ingest.chunking import ChunkSettings
from rag.storage.build import build_snapshot, empty_snapshot

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]'): the Ray ingestion path is untested")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install '.[ray]')")

from rag.ingest.distributed import RayIngest  # noqa: E402 - only once Ray is known to be there

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
        "from rag.errors import ConfigError\nfrom rag.ingest.distributed import connect\n"
        f"try:\n    connect({address!r})\nexcept ConfigError as exc:\n    print('ConfigError:', exc)\n")
    assert f"ConfigError: no Ray cluster answers at {address!r}" in done.stdout, done.stderr[-2000:]
    assert seconds < 30  # ray.init alone retries for over a minute


def test_without_ray_installed_the_error_says_what_to_install():
    done, _ = _run(
        "import sys\nsys.modules['ray'] = None\nfrom rag.errors import ConfigError\n"
        "from rag.ingest.distributed import RayIngest\n"
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
