"""Indexing in-process vs through Ray (rag.indexing.distributed) on the same files, in one run.

    python bench/ray_ingest.py [--docs 14] [--cpus 2] [--address auto]

The corpus is seeds/ plus ``--docs`` generated Chinese documents (each different, so the
vector cache, which skips any text already embedded, does not hide work; about 200 chunks by
default). Printed: Ray's start-up time, then for each path the wall time of ``build_snapshot``
on an empty index (read, clean, chunk, embed, build the index structures) and the chunk chars
it embedded per second, and whether both gave the same chunk ids and vectors.

Measured here (2 shared cores, 203 chunks): in-process 9.1 s, 3,600 chars/s, of which reading and
chunking take 0.06 s; Ray start-up 7.8 s, then 20-21 s per build, 1,600 chars/s (read+chunk 6-7 s:
worker processes starting and importing rag; embed 13-15 s, the actors loading the model
included); same chunk ids, min cosine 0.9999999.

What it predicts for a cluster: embedding is the bottleneck, so a cluster's rate is about one
actor's chars/s times the actors, minus what Ray adds: start-up, the actor pool's start on every
``embed`` call (each actor loads the model, a few seconds), the workers' imports on the first
files, and shipping texts out and 384 float32 per chunk back (1.5 kB per chunk, negligible next
to the model's time). On one 2-core machine there is nothing to gain: the in-process model
already uses both cores, and Ray's processes and the extra model copies take the same cores and
1.5 GB more. It pays off from a few nodes and thousands of chunks on.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np
import ray

from rag.embedding.backends import load_embedder
from rag.indexing.distributed import RayIngest
from rag.ingest.chunking import ChunkSettings
from rag.storage.faiss.build import build_snapshot, empty_snapshot
from rag.storage.faiss.snapshot import Snapshot

TOPICS = ["分布式索引", "嵌入模型", "向量检索", "中文分词", "引用回答", "文档清洗"]


def write_corpus(out: Path, docs: int) -> list[Path]:
    """seeds/ and ``docs`` generated documents of about ten chunks, no two paragraphs alike."""
    gen = out / "generated"
    gen.mkdir(parents=True)
    for d in range(docs):
        paras = [f"第{d}篇第{p}段：{TOPICS[(d + p) % len(TOPICS)]}的第{d * 31 + p}项测量显示，"
                 f"处理{(d + 1) * (p + 3)}个文件用了{(d * 7 + p * 13) % 97 + 1}秒，"
                 f"其中读取和切分占{(d + p) % 9 + 1}成，其余时间用于计算向量。" for p in range(30)]
        (gen / f"doc{d:03d}.txt").write_text("\n\n".join(paras), encoding="utf-8")
    return [ROOT / "seeds", gen]


class Timed:
    """A ``distributed`` object that records how long its prepare and embed calls take."""

    def __init__(self, inner: RayIngest) -> None:
        self.inner, self.seconds = inner, {}

    def prepare(self, *args, **kwargs):
        return self._timed("read+chunk", self.inner.prepare, *args, **kwargs)

    def embed(self, *args, **kwargs):
        return self._timed("embed", self.inner.embed, *args, **kwargs)

    def _timed(self, name, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[name] = time.perf_counter() - t0


def build(paths: list[Path], embedder, distributed=None) -> tuple[Snapshot, float, int]:
    chunking = ChunkSettings()
    t0 = time.perf_counter()
    snap, report = build_snapshot(empty_snapshot(embedder, chunking), paths, embedder, chunking, sync=True,
                                  max_bytes=50 * 2**20, progress=False, distributed=distributed)
    return snap, time.perf_counter() - t0, report.chunks_embedded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=14, help="generated documents besides seeds/ (default 14: about 200 chunks)")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster (default 2)")
    ap.add_argument("--address", default="auto", help="a cluster to join instead of a local one")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rb-", dir="/tmp"))  # short: Ray's socket paths are limited
    try:
        paths = write_corpus(tmp / "corpus", args.docs)
        t0 = time.perf_counter()
        embedder = load_embedder()
        print(f"model load in this process: {time.perf_counter() - t0:.1f} s")
        local, local_s, n = build(paths, embedder)
        chars = sum(len(c.text) for c in local.chunks)
        print(f"in-process: {n} chunks, {chars:,} chars, {local_s:6.1f} s, {chars / local_s:8,.0f} chars/s")
        t0 = time.perf_counter()
        ray_ingest = RayIngest.connect(args.address, num_cpus=args.cpus, temp_dir=str(tmp / "ray"))
        print(f"Ray start-up ({args.address}, {ray_ingest.actors} actors): {time.perf_counter() - t0:.1f} s")
        for run in ("first", "second"):
            timed = Timed(ray_ingest)
            remote, ray_s, _ = build(paths, embedder, timed)
            phases = ", ".join(f"{k} {v:.1f} s" for k, v in timed.seconds.items())
            print(f"through Ray ({run} run): {n} chunks, {ray_s:6.1f} s, {chars / ray_s:8,.0f} chars/s ({phases}; "
                  f"each embed call starts its actor pool, which loads the model)")
        a, b = local.vectors.reconstruct_n(0, local.size), remote.vectors.reconstruct_n(0, remote.size)
        same_ids = [c.chunk_id for c in local.chunks] == [c.chunk_id for c in remote.chunks]
        print(f"same chunk ids: {same_ids}; min cosine {float(np.min(np.sum(a * b, axis=1))):.7f}")
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
