"""Build a synthetic index of N chunks in either store, openable with ``RAG.open`` (bench/update.py, bench/scale.py).

    python bench/synth_index.py --chunks 1000000 --store segments|faiss --out DIR [--seed 0] [--stream]

The texts, BM25 terms (``--tokens direct`` of bench/query.py: from the generator's word lists,
not jieba) and FAKE vectors come from bench/synth.py; documents are 10 chunks each. They are
generated once per size and seed, in a process of their own, into ``corpus-N-SEED/`` beside
``DIR`` (texts, term ids, vectors and questions as files), and both stores are built from those
same files. The build itself then runs in this process, so its peak RSS is the index writer's,
not the generator's: ``faiss`` (today's snapshot, the baseline) loads every chunk, as a snapshot
must: bm25s over the same term ids with its term cache, the FAISS index of
``rag.storage.vectors``, ``save_snapshot``; ``segments`` reads the files ``SEGMENT_MAX_ROWS``
chunks at a time and writes a segment from each, as ``rag index --store segments`` does with the
chunks of its scan. The index records the real default embedder, so ``RAG.open`` loads it and a
change (``RAG.add``) embeds its new chunks for real. Prints one JSON line: seconds, peak RSS,
disk bytes.

``--stream`` (``segments`` only; bench/scale.py ``--stores segments``, for 10M chunks): no corpus
files; ``synth.Stream`` draws the same corpus ``SEGMENT_MAX_ROWS`` rows at a time in this process and
each segment is written as soon as its rows are drawn, so the peak RSS is a few GB whatever N (the
vocabulary's tables, one segment's rows, then the commit's opening of every segment), and the disk
holds the index and the questions only. Build time and peak RSS are then generation and writing
together (both are reported, and the generation's own share). No ``vectors.npy``: recall is
measured against the index's own float16 vectors (bench/scale.py).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.scale import vm_rss_mib

DIM = 384
DOC_CHUNKS = 10
QUESTIONS = 300


def embedder_entry() -> dict:
    from rag.embedding.backends import load_embedder
    from rag.indexing.embed import embedder_entry

    return embedder_entry(load_embedder())


def doc_of(row: int) -> str:
    return f"synthetic/{row // DOC_CHUNKS:06d}.txt"


def documents_of(n: int) -> tuple[list[str], dict[str, dict]]:
    """Each chunk's document id, and the manifest's documents (10 chunks each)."""
    return [doc_of(i) for i in range(n)], documents(n)


def documents(n: int) -> dict[str, dict]:
    """The manifest's documents of ``n`` chunks, 10 a document (the last one fewer)."""
    docs = {}
    for first in range(0, n, DOC_CHUNKS):
        d = doc_of(first)
        docs[d] = {"path": f"/nonexistent/{d}", "sha256": _sha(d), "size": 0, "chunks": min(DOC_CHUNKS, n - first),
                   "indexed_at": "2026-12-02T00:00:00+0000"}
    return docs


def _sha(doc_id: str) -> str:
    return hashlib.sha256(doc_id.encode()).hexdigest()


def chunking() -> dict:
    from dataclasses import asdict

    from rag.config import Settings
    from rag.ingest.chunking import ChunkSettings

    s = Settings.from_env()
    return asdict(ChunkSettings(chunk_tokens=s.chunk_tokens, overlap_tokens=s.overlap_tokens, headers=s.headers))


def generate(n: int, corpus_dir: Path, seed: int = 0) -> dict:
    """The synthetic corpus as files (run in its own process: it holds the whole corpus)."""
    from bench import synth

    t0 = time.perf_counter()
    corpus = synth.generate(n, seed)
    ptr, ids, terms = synth.direct_terms(corpus)
    vectors = synth.fake_vectors(corpus, DIM, seed)
    queries = synth.make_queries(corpus, QUESTIONS, DIM, seed)
    tmp = corpus_dir.with_name(corpus_dir.name + ".tmp")  # renamed when complete: a killed run leaves no corpus
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(corpus_dir, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "vectors.npy", vectors)  # also the exact vectors, for recall against exact search
    np.save(tmp / "query_vectors.npy", queries.vectors)
    np.save(tmp / "term_ptr.npy", ptr.astype(np.int64))
    np.save(tmp / "term_ids.npy", ids.astype(np.uint32))
    (tmp / "terms.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
    with (tmp / "texts.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(t, ensure_ascii=False) + "\n" for t in corpus.texts)
    (tmp / "queries.json").write_text(json.dumps({"texts": queries.texts, "targets": queries.targets.tolist()},
                                                 ensure_ascii=False), encoding="utf-8")
    info = {"generate_s": time.perf_counter() - t0, "mean_chars": float(np.mean([len(t) for t in corpus.texts]))}
    (tmp / "info.json").write_text(json.dumps(info))
    tmp.rename(corpus_dir)
    return info


def ensure_corpus(n: int, corpus_dir: Path, seed: int) -> dict:
    if not (corpus_dir / "info.json").is_file():
        res = subprocess.run([sys.executable, __file__, "--generate", str(corpus_dir), "--chunks", str(n), "--seed",
                              str(seed)], stdout=subprocess.DEVNULL, check=False)
        if res.returncode:
            raise SystemExit(f"generating {n} synthetic chunks failed (exit {res.returncode})")
    return json.loads((corpus_dir / "info.json").read_text())


def texts_of(corpus_dir: Path, start: int = 0, stop: int | None = None) -> list[str]:
    with (corpus_dir / "texts.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in itertools.islice(f, start, stop)]


def build(n: int, store: str, out: Path, seed: int = 0, stream: bool = False) -> dict:
    if stream:
        if store != "segments":
            raise ValueError("--stream builds the segments store only")
        return build_stream(n, out, seed)
    corpus_dir = out.parent / f"corpus-{n}-{seed}"
    info = ensure_corpus(n, corpus_dir, seed)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("vectors.npy", "query_vectors.npy", "queries.json"):  # where scale.py reads them
        (out / name).unlink(missing_ok=True)
        os.link(corpus_dir / name, out / name)
    doc_ids, docs = documents_of(n)
    t1 = time.perf_counter()
    index_dir = out / "index"
    if store == "faiss":
        _build_faiss(index_dir, corpus_dir, doc_ids, docs)
    else:
        _build_segments(index_dir, corpus_dir, doc_ids, docs)
    build_s = time.perf_counter() - t1
    disk = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    return {"store": store, "chunks": n, "generate_s": info["generate_s"], "build_s": build_s, "disk_bytes": disk,
            "disk_per_chunk": disk / n, "build_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "mean_chars": info["mean_chars"]}


def _chunk_list(texts, doc_ids, first: int = 0):
    """Chunks of rows ``first``, ``first + 1``, ... (``first`` a multiple of ``DOC_CHUNKS``)."""
    from rag.types import Chunk

    chunks, offset = [], 0
    for i, (text, doc) in enumerate(zip(texts, doc_ids), start=first):
        offset = 0 if i % DOC_CHUNKS == 0 else offset
        chunks.append(Chunk(f"{doc}#{i % DOC_CHUNKS}", doc, text, offset, offset + len(text)))
        offset += len(text)
    return chunks


def _build_faiss(index_dir, corpus_dir, doc_ids, docs) -> None:
    from rag.storage.faiss.snapshot import Snapshot, new_faiss_index, save_snapshot
    from rag.storage.lexical import DocIds, LexicalIndex

    terms = json.loads((corpus_dir / "terms.json").read_text(encoding="utf-8"))
    lexical = LexicalIndex.from_ids(DocIds(np.load(corpus_dir / "term_ids.npy"), np.load(corpus_dir / "term_ptr.npy")),
                                    {t: i for i, t in enumerate(terms)})
    del terms
    vectors = np.load(corpus_dir / "vectors.npy")
    snap = Snapshot(_chunk_list(texts_of(corpus_dir), doc_ids), new_faiss_index(vectors, DIM), lexical, docs,
                    embedder_entry(), chunking())
    del vectors
    save_snapshot(index_dir, snap)


def _build_segments(index_dir, corpus_dir, doc_ids, docs) -> None:
    """One segment per ``SEGMENT_MAX_ROWS`` chunks, each read from the corpus files when its turn comes."""
    from rag.storage.bm25 import term_hash
    from rag.storage.segments import index as segments
    from rag.storage.segments.segment import TERM_BYTEORDER

    terms = json.loads((corpus_dir / "terms.json").read_text(encoding="utf-8"))
    hashes = np.fromiter((term_hash(t, TERM_BYTEORDER) for t in terms), np.uint64, count=len(terms))
    del terms
    ptr = np.load(corpus_dir / "term_ptr.npy")
    emb = embedder_entry()
    snap = segments.empty(index_dir, emb, chunking())
    entry = dict(snap.store.manifest_entry())
    entries = []
    step = segments.SEGMENT_MAX_ROWS
    with (corpus_dir / "texts.jsonl").open(encoding="utf-8") as f:
        for b0 in range(0, len(doc_ids), step):
            b1 = min(b0 + step, len(doc_ids))
            texts = [json.loads(line) for line in itertools.islice(f, b1 - b0)]
            rows = _rows(b0, texts, ptr[b0 : b1 + 1] - ptr[b0], _read(corpus_dir / "term_ids.npy", int(ptr[b0]),
                         int(ptr[b1])), _read(corpus_dir / "vectors.npy", b0, b1), hashes)
            del texts
            entries.append(segments.add_rows(index_dir, entry, rows, ann=b1 - b0 >= 50_000))
            del rows
            print(f"[{time.strftime('%H:%M:%S')}] segment {entries[-1]['name']}: {b1 - b0} rows, peak RSS "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB", file=sys.stderr, flush=True)
    segments.commit(index_dir, snap, docs, entries, int(entry["next_key"]), 50_000, emb,
                    chunking())


def _read(path: Path, lo: int, hi: int) -> np.ndarray:
    """Rows ``lo:hi`` of a ``.npy`` file, read into memory with the segments' own reader: pages of a
    memory map would stay in the RSS this bench reports (file-backed, but counted), which ``rag index``
    reading files would not hold."""
    from rag.storage.segments.segment import _ArrayReader

    reader = _ArrayReader(path, np.load(path, mmap_mode="r"))
    try:
        return reader.span(lo, hi)
    finally:
        reader.close()


def _rows(first: int, texts: list[str], term_ptr: np.ndarray, term_ids: np.ndarray, vectors: np.ndarray,
          hashes: np.ndarray):
    """A segment's ``Rows`` of corpus rows ``first``, ``first + 1``, ...: their texts, BM25 term ids
    (``term_ids[term_ptr[i]:term_ptr[i + 1]]`` for the i-th, ids into ``hashes``) and vectors."""
    from rag.storage.segments.segment import Rows, postings_of

    nb = len(texts)
    doc_ids = [doc_of(i) for i in range(first, first + nb)]
    chunks = _chunk_list(texts, doc_ids, first=first)
    lines = [(json.dumps(c.to_dict(), ensure_ascii=False) + "\n").encode() for c in chunks]
    del chunks
    lengths = np.diff(term_ptr)
    term, row, tf = postings_of(term_ids, lengths)
    block_docs = sorted(set(doc_ids))
    doc_ix = {d: j for j, d in enumerate(block_docs)}
    return Rows(lines, [(d, _sha(d)) for d in block_docs], np.array([doc_ix[d] for d in doc_ids], np.int32), vectors,
                hashes, term, row, tf, lengths.astype(np.int32), np.full(nb, -1, np.int32), np.full(nb, -1, np.int32),
                [], [])


def build_stream(n: int, out: Path, seed: int = 0) -> dict:
    """The segments index of ``n`` synthetic chunks, drawn and written one segment at a time (``--stream``).

    ``out`` gets ``index/``, ``query_vectors.npy`` and ``queries.json`` (what bench/scale.py reads);
    the corpus itself is never on disk but in the index."""
    from bench import synth
    from rag.storage.bm25 import term_hash
    from rag.storage.segments import index as segments
    from rag.storage.segments.segment import TERM_BYTEORDER

    t0 = time.perf_counter()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    index_dir = out / "index"
    emb = embedder_entry()
    stream = synth.Stream(n, DIM, seed, QUESTIONS)
    gen_s = time.perf_counter() - t0
    _progress(f"vocabulary of {len(stream.vocab.words):,} words and its tables", t0, gen_s)
    snap = segments.empty(index_dir, emb, chunking())
    entry = dict(snap.store.manifest_entry())
    entries = []
    hashes = np.zeros(0, np.uint64)
    chars = 0
    blocks = stream.blocks(segments.SEGMENT_MAX_ROWS)
    while True:
        t1 = time.perf_counter()
        block = next(blocks, None)
        gen_s += time.perf_counter() - t1
        if block is None:
            break
        new = stream.terms.terms(len(hashes))
        hashes = np.concatenate([hashes, np.fromiter((term_hash(t, TERM_BYTEORDER) for t in new), np.uint64,
                                                     count=len(new))])
        nb = len(block.texts)
        chars += sum(map(len, block.texts))
        rows = _rows(block.start, block.texts, block.term_ptr, block.term_ids, block.vectors, hashes)
        del block
        entries.append(segments.add_rows(index_dir, entry, rows, ann=nb >= 50_000))
        del rows
        _progress(f"segment {entries[-1]['name']}: {nb:,} rows ({entry['next_key']:,} of {n:,})", t0, gen_s)
    t1 = time.perf_counter()
    queries = stream.queries()
    gen_s += time.perf_counter() - t1
    del stream, blocks
    np.save(out / "query_vectors.npy", queries.vectors)
    (out / "queries.json").write_text(json.dumps({"texts": queries.texts, "targets": queries.targets.tolist()},
                                                 ensure_ascii=False), encoding="utf-8")
    t1 = time.perf_counter()
    snap = segments.commit(index_dir, snap, documents(n), entries, int(entry["next_key"]), 50_000, emb, chunking())
    commit_s = time.perf_counter() - t1
    names = [s["name"] for s in snap.store.manifest_entry()["segments"]]
    _progress(f"committed: {len(names)} segments (written {len(entries)}) in {commit_s:.0f} s", t0, gen_s)
    build_s = time.perf_counter() - t0
    disk = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    return {"store": "segments", "stream": True, "chunks": n, "generate_s": gen_s, "build_s": build_s,
            "commit_s": commit_s, "segments_written": len(entries), "segments": len(names), "disk_bytes": disk,
            "disk_per_chunk": disk / n, "build_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "mean_chars": chars / n}


def _progress(what: str, t0: float, gen_s: float) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"[{time.strftime('%H:%M:%S')}] {what}; {time.perf_counter() - t0:,.0f} s elapsed ({gen_s:,.0f} s "
          f"generating), RSS {vm_rss_mib():,.0f} MiB, peak {peak:,.0f} MiB", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--store", choices=("faiss", "segments"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stream", action="store_true", help="segments only: draw and write a segment at a time, "
                    "no corpus files (for 10M chunks)")
    ap.add_argument("--generate", type=Path, help=argparse.SUPPRESS)  # the corpus files only, into this folder
    args = ap.parse_args()
    if args.generate:
        print(json.dumps(generate(args.chunks, args.generate, args.seed)))
        return
    if not (args.store and args.out):
        ap.error("--store and --out are required")
    print(json.dumps(build(args.chunks, args.store, args.out, args.seed, args.stream)))


if __name__ == "__main__":
    main()
