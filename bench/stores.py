"""FAISS files vs Milvus Lite behind the same RAG facade: ingest, query and add-one-document, same corpus, same run.

    python bench/stores.py --chunks 10000 100000

The corpus is bench/synth.py's (Chinese text made from the seed, FAKE vectors: they time the stores,
they say nothing about relevance; quality is measured on CMRC with real embeddings, see docs/scale-out.md).
Per size and store it prints:

- ingest: chars/s of writing the chunks (vectors given, so the embedding model's cost, the same for
  both, is left out): FAISS = the index, BM25 and the snapshot saved; Milvus = the rows with their
  client-side BM25 weights inserted and published;
- query: p50/p95 of ``retrieve()`` (hybrid, top 5, warm, the question vector given);
- add one document of 10 chunks through ``RAG.add`` (embedding with the real model included), and
  delete it again: what one upload costs.

FAISS is the baseline. A Milvus server or cluster answers over the network, so its query times are
these plus a round trip; its ingest scales with its data nodes, which Lite (one process) cannot show.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synth import fake_vectors, generate, make_queries
from rag.types import Chunk

DIM = 384
PER_DOC = 10
QUERIES = 200
DOC = "\n\n".join(f"第{i}段：紫藤镇风筝节于每年四月十八日举行，今年吸引游客两万三千人，其中第{i}组来自外省。"
                  for i in range(12))


def documents_of(texts: list[str]) -> tuple[list[Chunk], dict[str, dict]]:
    """The synthetic chunks grouped PER_DOC to a document, with manifest entries (no source files)."""
    chunks, docs = [], {}
    for d in range(0, len(texts), PER_DOC):
        doc_id = f"synth/{d // PER_DOC:07d}.txt"
        part = texts[d:d + PER_DOC]
        start = 0
        for t in part:
            cid = hashlib.sha1(f"{doc_id}\0{t}".encode()).hexdigest()[:16]
            chunks.append(Chunk(cid, doc_id, t, start, start + len(t), {}))
            start += len(t) + 1
        sha = hashlib.sha256("".join(part).encode()).hexdigest()
        docs[doc_id] = {"path": f"/nonexistent/{doc_id}", "sha256": sha, "size": start, "encoding": "utf-8",
                        "chars": start, "chunks": len(part), "indexed_at": "2026-01-01T00:00:00+0000"}
    return chunks, docs


def build_faiss(folder: Path, chunks: list[Chunk], vectors: np.ndarray, docs: dict, embedder: dict) -> float:
    from rag.storage.faiss.snapshot import Snapshot, new_faiss_index, save_snapshot
    from rag.storage.lexical import LexicalIndex

    t0 = time.perf_counter()
    snap = Snapshot(chunks, new_faiss_index(vectors, DIM), LexicalIndex.build([c.text for c in chunks]), docs, embedder,
                    {"chunk_tokens": 192, "overlap_tokens": 48, "headers": "none"})
    save_snapshot(folder, snap)
    return time.perf_counter() - t0


def build_milvus(folder: Path, chunks: list[Chunk], vectors: np.ndarray, docs: dict, embedder: dict) -> float:
    from rag.storage.backend import parse_store
    from rag.storage.milvus.collection import empty_store_snapshot
    from rag.storage.state import StoreSnapshot, save_store_manifest

    spec = parse_store(f"milvus:{folder.parent / (folder.name + '.db')}")
    chunking = {"chunk_tokens": 192, "overlap_tokens": 48, "headers": "none"}
    t0 = time.perf_counter()
    empty = empty_store_snapshot(folder, spec, embedder, chunking)
    empty.store.add(chunks, vectors, {d: m["sha256"] for d, m in docs.items()})
    snap = StoreSnapshot(empty.store, docs, embedder, chunking)
    save_store_manifest(folder, snap)
    empty.store.publish(snap.live())
    return time.perf_counter() - t0


def query_times(folder: Path, texts: list[str], vectors: np.ndarray) -> list[float]:
    from rag import RAG
    from rag.retrieval.retrieve import RetrievalSettings, retrieve
    from rag.storage.store import search_store

    rag = RAG.open(folder, progress=False)
    store = search_store(rag.state)
    settings = RetrievalSettings()
    for i in range(5):  # warm
        retrieve(store, None, texts[i], 5, settings, query_vector=vectors[i])
    out = []
    for t, v in zip(texts, vectors):
        t0 = time.perf_counter()
        retrieve(store, None, t, 5, settings, query_vector=v)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def add_one(folder: Path, work: Path) -> tuple[float, float]:
    from rag import RAG

    rag = RAG.open(folder, progress=False)
    doc = work / "kite-festival.txt"
    doc.write_text(DOC, encoding="utf-8")
    rag.embedder.embed_passages(["预热 warm-up"])
    t0 = time.perf_counter()
    rag.add(doc)
    added = time.perf_counter() - t0
    t0 = time.perf_counter()
    rag.delete(["kite-festival.txt"])
    return added, time.perf_counter() - t0


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, nargs="+", default=[10_000])
    args = ap.parse_args()
    from rag.embedding.backends import load_embedder
    from rag.indexing.embed import embedder_entry

    model = load_embedder()
    embedder = embedder_entry(model)
    rows = []
    for n in args.chunks:
        corpus = generate(n)
        vectors = fake_vectors(corpus, DIM)
        queries = make_queries(corpus, QUERIES, DIM)
        chunks, docs = documents_of(corpus.texts)
        chars = sum(len(c.text) for c in chunks)
        with tempfile.TemporaryDirectory(prefix="stores-") as tmp:
            work = Path(tmp)
            for name, build in (("faiss", build_faiss), ("milvus-lite", build_milvus)):
                folder = work / name
                seconds = build(folder, chunks, vectors, docs, embedder)
                times = query_times(folder, queries.texts, queries.vectors)
                added, deleted = add_one(folder, work)
                rows.append((n, name, chars / seconds, seconds, pct(times, 50), pct(times, 95), added, deleted))
                print(f"{n:>8,} {name:<12} ingest {chars / seconds:>10,.0f} chars/s ({seconds:6.1f} s)  "
                      f"query p50 {pct(times, 50):6.1f} ms p95 {pct(times, 95):6.1f} ms  "
                      f"add 10-chunk doc {added:5.2f} s, delete {deleted:5.2f} s", flush=True)
    print("\nratio milvus-lite / faiss (same size):")
    for n in args.chunks:
        f, m = [r for r in rows if r[0] == n]
        print(f"{n:>8,} ingest x{m[2] / f[2]:.2f}  query p50 x{m[4] / f[4]:.2f} p95 x{m[5] / f[5]:.2f}  "
              f"add x{m[6] / f[6]:.2f}  delete x{m[7] / f[7]:.2f}")


if __name__ == "__main__":
    main()
