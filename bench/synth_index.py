"""Build a synthetic index of N chunks in either store, openable with ``RAG.open`` (bench/update.py, bench/scale.py).

    python bench/synth_index.py --chunks 1000000 --store segments|faiss --out DIR [--seed 0]

The texts, BM25 terms (``--tokens direct`` of bench/query.py: from the generator's word lists,
not jieba) and FAKE vectors come from bench/synth.py; documents are 10 chunks each. The index
records the real default embedder, so ``RAG.open`` loads it and a change (``RAG.add``) embeds its
new chunks for real. ``faiss`` is today's snapshot (the baseline): bm25s over the same term ids
with its term cache, the FAISS index of ``rag.storage.vectors``, ``save_snapshot``. ``segments``
writes the segments of ``rag.storage.segments`` from the same arrays, ``SEGMENT_MAX_ROWS`` at a
time. Prints one JSON line: seconds, peak RSS, disk bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

DIM = 384
DOC_CHUNKS = 10


def embedder_entry() -> dict:
    from rag.embedding.backends import load_embedder
    from rag.storage.build import _embedder_entry

    return _embedder_entry(load_embedder())


def documents_of(n: int) -> tuple[list[str], dict[str, dict]]:
    """Each chunk's document id, and the manifest's documents (10 chunks each)."""
    ids = [f"synthetic/{i // DOC_CHUNKS:06d}.txt" for i in range(n)]
    docs = {}
    for d in sorted(set(ids)):
        docs[d] = {"path": f"/nonexistent/{d}", "sha256": hashlib.sha256(d.encode()).hexdigest(), "size": 0,
                   "chunks": DOC_CHUNKS, "indexed_at": "2026-12-02T00:00:00+0000"}
    last = (n - 1) // DOC_CHUNKS
    docs[ids[-1]]["chunks"] = n - last * DOC_CHUNKS
    return ids, docs


def chunking() -> dict:
    from dataclasses import asdict

    from rag.config import Settings
    from rag.ingest.chunking import ChunkSettings

    s = Settings.from_env()
    return asdict(ChunkSettings(chunk_tokens=s.chunk_tokens, overlap_tokens=s.overlap_tokens, headers=s.headers))


def build(n: int, store: str, out: Path, seed: int = 0) -> dict:
    from bench import synth

    t0 = time.perf_counter()
    corpus = synth.generate(n, seed)
    ptr, ids, terms = synth.direct_terms(corpus)
    vectors = synth.fake_vectors(corpus, DIM, seed)
    queries = synth.make_queries(corpus, 300, DIM, seed)
    gen_s = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "vectors.npy", vectors)  # the exact vectors, for recall against exact search
    np.save(out / "query_vectors.npy", queries.vectors)
    (out / "queries.json").write_text(json.dumps({"texts": queries.texts, "targets": queries.targets.tolist()},
                                                 ensure_ascii=False), encoding="utf-8")
    doc_ids, docs = documents_of(n)
    t1 = time.perf_counter()
    index_dir = out / "index"
    if store == "faiss":
        _build_faiss(index_dir, corpus.texts, doc_ids, docs, ptr, ids, terms, vectors)
    else:
        _build_segments(index_dir, corpus.texts, doc_ids, docs, ptr, ids, terms, vectors)
    build_s = time.perf_counter() - t1
    disk = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    return {"store": store, "chunks": n, "generate_s": gen_s, "build_s": build_s, "disk_bytes": disk,
            "disk_per_chunk": disk / n, "build_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "mean_chars": float(np.mean([len(t) for t in corpus.texts]))}


def _chunk_list(texts, doc_ids):
    from rag.types import Chunk

    chunks, offset = [], 0
    for i, (text, doc) in enumerate(zip(texts, doc_ids)):
        offset = 0 if i % DOC_CHUNKS == 0 else offset
        chunks.append(Chunk(f"{doc}#{i % DOC_CHUNKS}", doc, text, offset, offset + len(text)))
        offset += len(text)
    return chunks


def _build_faiss(index_dir, texts, doc_ids, docs, ptr, ids, terms, vectors) -> None:
    from rag.storage.lexical import DocIds, LexicalIndex
    from rag.storage.snapshot import Snapshot, new_faiss_index, save_snapshot

    lexical = LexicalIndex.from_ids(DocIds(ids.astype(np.uint32), ptr.astype(np.int64)),
                                    {t: i for i, t in enumerate(terms)})
    snap = Snapshot(_chunk_list(texts, doc_ids), new_faiss_index(vectors, DIM), lexical, docs, embedder_entry(),
                    chunking())
    save_snapshot(index_dir, snap)


def _build_segments(index_dir, texts, doc_ids, docs, ptr, ids, terms, vectors) -> None:
    from rag.storage import segments
    from rag.storage.remote import StoreSpec
    from rag.storage.segment import Rows, term_hash

    hashes = np.fromiter((term_hash(t) for t in terms), np.uint64, count=len(terms))
    emb = embedder_entry()
    snap = segments.empty(index_dir, emb, chunking())
    entry = dict(snap.store.manifest_entry())
    entries = []
    chunks = _chunk_list(texts, doc_ids)
    step = segments.SEGMENT_MAX_ROWS
    for b0 in range(0, len(texts), step):
        b1 = min(b0 + step, len(texts))
        nb = b1 - b0
        lo, hi = int(ptr[b0]), int(ptr[b1])
        row = np.repeat(np.arange(nb, dtype=np.int64), np.diff(ptr[b0 : b1 + 1]))
        key, tf = np.unique(ids[lo:hi].astype(np.int64) * nb + row, return_counts=True)
        block_docs = sorted(set(doc_ids[b0:b1]))
        doc_ix = {d: j for j, d in enumerate(block_docs)}
        lines = [(json.dumps(c.to_dict(), ensure_ascii=False) + "\n").encode() for c in chunks[b0:b1]]
        rows = Rows(lines, [(d, docs[d]["sha256"]) for d in block_docs],
                    np.array([doc_ix[d] for d in doc_ids[b0:b1]], np.int32), vectors[b0:b1],
                    hashes, key // nb, key % nb, np.minimum(tf, 255), np.diff(ptr[b0 : b1 + 1]).astype(np.int32),
                    np.full(nb, -1, np.int32), np.full(nb, -1, np.int32), [], [])
        entries.append(segments.add_rows(index_dir, entry, rows, ann=nb >= 50_000))
        print(f"[{time.strftime('%H:%M:%S')}] segment {entries[-1]['name']}: {nb} rows", file=sys.stderr, flush=True)
    segments.commit(index_dir, StoreSpec("segments"), snap, docs, entries, int(entry["next_key"]), 50_000, emb,
                    chunking())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--store", choices=("faiss", "segments"), required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(json.dumps(build(args.chunks, args.store, args.out, args.seed)))


if __name__ == "__main__":
    main()
