"""Retrieval speed and size at scale on a synthetic corpus: ours next to a naive baseline, in one run.

    python bench/query.py [--chunks 100000] [--seed 0] [--queries 200] [--baseline-queries 100]
                          [--tokens auto|jieba|direct] [--ann ivf|ivf-sq8|hnsw]

Real: the Snapshot pieces (``LexicalIndex.build`` over the texts' BM25 terms, the FAISS
index of ``rag.storage.vectors``, ``save_snapshot``/``load_snapshot``) and
``rag.retrieval.retrieve.retrieve`` (dense + BM25 + fusion, no LLM, top_k=5).
Synthetic (see bench/synth.py): the texts (seed sentences with words swapped), the
vectors (FAKE: random vectors correlated with the bag of words; they time the index,
they say nothing about relevance) and the questions (cut from random chunks, with a
precomputed query vector passed as ``query_vector=``).  With ``--tokens direct`` (the
default above 200k chunks, where jieba would take too long) the BM25 terms come from
the generator's word lists instead of jieba over the texts.

Baseline, measured in the same run on the same data: exact search (IndexFlatIP) for the
dense part and a pure-Python BM25 (bench/naive_bm25.py) for the lexical part, through
the same ``retrieve``.  Build, serve and baseline each run in their own process, so each
peak RSS (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

DIM = 384  # multilingual-e5-small
TOP_K = 5
JIEBA_MAX = 200_000  # above this many chunks, BM25 terms come from the word lists (jieba: ~4 min per 1M chars x 2)
TARGET_P95_MS = ((100_000, 50.0), (1_000_000, 150.0))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the jieba worker processes)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


@contextmanager
def timer(out: dict, key: str) -> Iterator[None]:
    """Wall seconds in ``out[key]``, CPU seconds in ``out["cpu"][key]`` (other load on the machine
    stretches the first, hardly the second)."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    yield
    out[key] = time.perf_counter() - t0
    out.setdefault("cpu", {})[key] = cpu_seconds() - c0
    log(f"{key}: {out[key]:.1f} s wall, {out['cpu'][key]:.1f} s CPU")


# --------------------------------------------------------------------------- build


def stage_build(args: argparse.Namespace, wd: Path) -> dict:
    from bench import synth
    from rag.storage.faiss.snapshot import Snapshot, save_snapshot
    from rag.storage.vectors import build_index, describe
    from rag.types import Chunk

    out: dict = {"tokens": args.tokens}
    with timer(out, "generate_s"):
        corpus = synth.generate(args.chunks, args.seed)
    with timer(out, "tokenise_s"):
        ptr, ids, terms = jieba_terms(corpus.texts) if args.tokens == "jieba" else synth.direct_terms(corpus)
    with timer(out, "bm25_build_s"):
        if args.tokens == "jieba":
            lexical = build_lexical(corpus.texts, ptr, ids, terms)
        else:
            lexical = build_lexical_from_ids(ptr, ids, terms)
    np.save(wd / "terms_ptr.npy", ptr)
    np.save(wd / "terms_ids.npy", ids)
    (wd / "terms.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
    out |= {"vocab_words": len(corpus.vocab.words), "bm25_terms": len(terms), "term_occurrences": len(ids),
            "postings": len(lexical._bm25.scores["data"]),
            "mean_chars": float(np.mean([len(t) for t in corpus.texts]))}
    del ptr, ids, terms
    with timer(out, "vectors_s"):
        vectors = synth.fake_vectors(corpus, DIM, args.seed)
    np.save(wd / "vectors.npy", vectors)
    queries = synth.make_queries(corpus, args.queries, DIM, args.seed)
    np.save(wd / "query_vectors.npy", queries.vectors)
    (wd / "queries.json").write_text(json.dumps({"texts": queries.texts, "targets": queries.targets.tolist()},
                                                ensure_ascii=False), encoding="utf-8")
    with timer(out, "faiss_build_s"):
        index = build_index(vectors, DIM)
    out["faiss"] = describe(index)
    del vectors
    chunks, offset = [], 0
    for i, text in enumerate(corpus.texts):
        offset = 0 if i % 20 == 0 else offset  # 20 chunks per synthetic document
        chunks.append(Chunk(f"c{i:07d}", f"synthetic/{i // 20:05d}.txt", text, offset, offset + len(text)))
        offset += len(text)
    snap = Snapshot(chunks, index, lexical, documents={}, embedder={"name": "synthetic-fake-vectors", "dim": DIM},
                    chunking={})
    with timer(out, "save_s"):
        manifest = save_snapshot(wd / "index", snap)
    gen = wd / "index" / manifest["generation"]
    out["disk"] = {
        "vectors.faiss": (gen / "vectors.faiss").stat().st_size,
        "bm25/": sum(p.stat().st_size for p in (gen / "bm25").rglob("*") if p.is_file()),
        "chunks.jsonl": (gen / "chunks.jsonl").stat().st_size,
        "generation": sum(p.stat().st_size for p in gen.rglob("*") if p.is_file()),
    }
    out["manifest_faiss"] = manifest["faiss"]
    out["rss_mib"] = peak_rss_mib()
    return out


def jieba_terms(texts: list[str], procs: int = 2) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The real ``index_terms`` (jieba) over every text, in ``procs`` processes, as (ptr, ids, terms)."""
    import multiprocessing

    from rag.text.normalize import index_terms

    index_terms("预热")  # load jieba's dictionary once, before forking
    term_ids: dict[str, int] = {}
    ptr = np.zeros(len(texts) + 1, dtype=np.int64)
    parts = []
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        for i, toks in enumerate(pool.imap(index_terms, texts, chunksize=500)):
            parts.append(np.array([term_ids.setdefault(t, len(term_ids)) for t in toks], dtype=np.int32))
            ptr[i + 1] = ptr[i] + len(toks)
    return ptr, np.concatenate(parts), list(term_ids)


def build_lexical(texts: list[str], ptr: np.ndarray, ids: np.ndarray, terms: list[str]):
    """``LexicalIndex.build`` itself, fed the precomputed terms of each text (in order) instead of
    running ``index_terms`` again, so tokenising is timed (and parallelised) on its own."""
    import rag.storage.lexical

    order = iter(range(len(texts)))

    def precomputed(_text: str) -> list[str]:
        i = next(order)
        return [terms[j] for j in ids[ptr[i] : ptr[i + 1]].tolist()]

    real = rag.storage.lexical.index_terms
    rag.storage.lexical.index_terms = precomputed
    try:
        return rag.storage.lexical.LexicalIndex.build(texts)
    finally:
        rag.storage.lexical.index_terms = real


def build_lexical_from_ids(ptr: np.ndarray, ids: np.ndarray, terms: list[str]):
    """The BM25 index of ``LexicalIndex.build`` (bm25s, k1=1.2, b=0.75) from term ids, skipping
    bm25s's string-to-id pass: used with ``--tokens direct``, where the terms are ids already."""
    from rag.storage.lexical import DocIds, LexicalIndex

    return LexicalIndex.from_ids(DocIds(ids.astype(np.uint32), ptr.astype(np.int64)), {t: i for i, t in enumerate(terms)})


# --------------------------------------------------------------------------- serve


def single_thread_faiss() -> None:
    """One question at a time gains nothing from OpenMP, and on a busy machine its barriers cost:
    exact search of 100k vectors took 75 ms with 2 threads against 14 ms with 1 (load average 12)."""
    import faiss

    faiss.omp_set_num_threads(1)


def load_queries(wd: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    q = json.loads((wd / "queries.json").read_text(encoding="utf-8"))
    return q["texts"], np.array(q["targets"]), np.load(wd / "query_vectors.npy")


def time_each(fn: Callable[[int], object], rows: range, warmup: int, cpu: list[float] | None = None) -> list[float]:
    """Wall ms per call; ``cpu`` also gets this process's CPU ms, which other load on the machine barely moves."""
    for i in range(min(warmup, len(rows))):
        fn(rows[i])
    out = []
    for i in rows:
        c0, t0 = time.process_time(), time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - c0) * 1000)
    return out


def measure(snap, texts: list[str], qvecs: np.ndarray, m: int, warmup: int) -> dict:
    """First, then warm latencies of retrieve(), the dense search and BM25 alone; top ids for agreement."""
    from rag.retrieval.retrieve import RetrievalSettings, retrieve
    from rag.storage.store import top as _top

    settings = RetrievalSettings()
    rows = range(m)
    top5: dict[int, list[int]] = {}

    def ask(i: int) -> None:
        got = retrieve(snap, None, texts[i], TOP_K, settings, query_vector=qvecs[i])
        top5[i] = [int(p.chunk.chunk_id[1:]) for p in got]

    t0 = time.perf_counter()
    ask(0)
    out: dict = {"first_ms": (time.perf_counter() - t0) * 1000}
    out["retrieve_cpu_ms"] = []
    out["retrieve_ms"] = time_each(ask, rows, warmup, out["retrieve_cpu_ms"])
    out["dense_ms"] = time_each(lambda i: snap.vectors.search(qvecs[i : i + 1], settings.candidates), rows, warmup)
    lex_top: dict[int, list[int]] = {}

    def lexical(i: int) -> None:
        scores = snap.lexical.scores(texts[i])
        lex_top[i] = [int(j) for j in _top(scores, 10) if scores[j] > 0]

    out["lexical_ms"] = time_each(lexical, rows, warmup)
    out["top5"] = [top5[i] for i in rows]
    out["lexical_top10"] = [lex_top[i] for i in rows]
    out["dense_top10"] = snap.vectors.search(qvecs, 10)[1].tolist()
    return out


def stage_serve(args: argparse.Namespace, wd: Path) -> dict:
    from rag.storage.faiss.snapshot import load_snapshot
    from rag.storage.vectors import tune_after_load
    from rag.text.normalize import index_terms

    index_terms("预热")  # jieba's dictionary: a per-process start-up cost, not an index cost
    single_thread_faiss()
    out: dict = {}
    with timer(out, "load_s"):
        snap = load_snapshot(wd / "index")
        tune_after_load(snap.vectors, snap.manifest.get("faiss"))
    texts, _, qvecs = load_queries(wd)
    out |= measure(snap, texts, qvecs, len(texts), args.warmup)
    out["rss_mib"] = peak_rss_mib()
    return out


# --------------------------------------------------------------------------- baseline


def stage_baseline(args: argparse.Namespace, wd: Path) -> dict:
    import faiss

    from bench.naive_bm25 import NaiveBM25
    from rag.storage.faiss.snapshot import Snapshot
    from rag.storage.manifest import read_manifest
    from rag.text.normalize import index_terms
    from rag.types import Chunk

    index_terms("预热")
    single_thread_faiss()
    out: dict = {}
    gen = wd / "index" / read_manifest(wd / "index")["generation"]
    with (gen / "chunks.jsonl").open(encoding="utf-8") as f:
        chunks = [Chunk.from_dict(json.loads(line)) for line in f]
    with timer(out, "flat_build_s"):
        flat = faiss.IndexFlatIP(DIM)
        flat.add(np.load(wd / "vectors.npy"))
    faiss.write_index(flat, str(wd / "flat.faiss"))
    out["flat_bytes"] = (wd / "flat.faiss").stat().st_size
    (wd / "flat.faiss").unlink()
    with timer(out, "naive_build_s"):
        naive = NaiveBM25(np.load(wd / "terms_ptr.npy"), np.load(wd / "terms_ids.npy"),
                          json.loads((wd / "terms.json").read_text(encoding="utf-8")))
    texts, _, qvecs = load_queries(wd)
    snap = Snapshot(chunks, flat, naive, documents={}, embedder={"name": "synthetic-fake-vectors", "dim": DIM},
                    chunking={})
    out |= measure(snap, texts, qvecs, min(args.baseline_queries, len(texts)), min(args.warmup, 3))
    out["rss_mib"] = peak_rss_mib()
    return out


# --------------------------------------------------------------------------- report


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def overlap(a: list[list[int]], b: list[list[int]], k: int) -> float:
    pairs = list(zip(a, b))
    return float(np.mean([len(set(x[:k]) & set(y[:k])) / max(1, min(k, len(y))) for x, y in pairs]))


def report(args: argparse.Namespace, build: dict, serve: dict, base: dict) -> None:
    import faiss

    n = args.chunks
    m_base = len(base["top5"])
    recall = overlap(serve["dense_top10"], base["dense_top10"], 10)  # the baseline's dense search is exact
    rows: list[tuple[str, float | None, float | None, str]] = []
    for name, key in (("retrieve() hybrid, top_k=5", "retrieve_ms"), ("  same, CPU time", "retrieve_cpu_ms"),
                      ("  dense search, 100 candidates", "dense_ms"), ("  BM25 scores + top", "lexical_ms")):
        for q in (50, 95):
            rows.append((f"{name}: p{q} ms", pct(serve[key], q), pct(base[key], q), ".1f"))
    rows += [
        ("first retrieve() after load, ms", serve["first_ms"], base["first_ms"], ".1f"),
        ("recall@10 dense vs exact", recall, 1.0, ".3f"),
        ("retrieve() top-5 = baseline's, share", overlap(serve["top5"][:m_base], base["top5"], 5), 1.0, ".3f"),
        ("BM25 top-10 = naive BM25's, share",
         overlap(serve["lexical_top10"][:m_base], base["lexical_top10"], 10), 1.0, ".3f"),
        ("build: FAISS index, s", build["faiss_build_s"], base["flat_build_s"], ".1f"),
        ("build: BM25 index (terms given), s", build["bm25_build_s"], base["naive_build_s"], ".1f"),
        (f"build: BM25 terms ({build['tokens']}), s", build["tokenise_s"], None, ".1f"),
        ("build: synthetic texts + vectors, s", build["generate_s"] + build["vectors_s"], None, ".1f"),
        ("build: save_snapshot, s", build["save_s"], None, ".1f"),
        ("peak RSS, build process, MiB", build["rss_mib"], None, ".0f"),
        ("peak RSS, serving (load + queries), MiB", serve["rss_mib"], base["rss_mib"], ".0f"),
        ("load_snapshot (checksums on), s", serve["load_s"], None, ".1f"),
        ("disk: vectors.faiss, bytes/chunk", build["disk"]["vectors.faiss"] / n, base["flat_bytes"] / n, ".0f"),
        ("disk: bm25/, bytes/chunk", build["disk"]["bm25/"] / n, None, ".0f"),
        ("disk: chunks.jsonl, bytes/chunk", build["disk"]["chunks.jsonl"] / n, None, ".0f"),
        ("disk: whole generation, bytes/chunk", build["disk"]["generation"] / n, None, ".0f"),
    ]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"bench/query.py --chunks {n:,} --seed {args.seed}   ({os.cpu_count()} cores, {cpu}; "
          f"faiss {faiss.__version__}, numpy {np.__version__}, python {platform.python_version()}; "
          f"load average at the end {os.getloadavg()[0]:.1f})")
    print(f"corpus: {n:,} synthetic chunks, {build['mean_chars']:.0f} chars on average, {build['vocab_words']:,} "
          f"generator words; BM25: {build['bm25_terms']:,} terms ({build['tokens']}: "
          f"{'jieba index_terms over the texts' if build['tokens'] == 'jieba' else 'from the word lists, NOT jieba'}), "
          f"{build['postings']:,} postings; vectors: FAKE (bag-of-words-correlated), dim {DIM}")
    print(f"ours: {json.dumps(build['faiss'])} + bm25s; baseline: IndexFlatIP + pure-Python BM25 "
          f"(its dict built with NumPy grouping); FAISS searches on 1 OpenMP thread in both")
    print(f"queries: {len(serve['retrieve_ms'])} timed (ours), {m_base} (baseline), after {args.warmup} warm-up; "
          f"ratio = ours / baseline")
    print()
    print(f"{'figure':44} {'ours':>12} {'baseline':>12} {'ratio':>8}")
    for label, ours, base_v, fmt in rows:
        b = "—" if base_v is None else format(base_v, fmt)
        r = "—" if base_v is None or base_v == 0 else f"{ours / base_v:.3g}"
        print(f"{label:44} {format(ours, fmt):>12} {b:>12} {r:>8}")
    cpu_s = {**build.get("cpu", {}), **serve.get("cpu", {})}
    print("CPU seconds of these steps (wall time above includes waiting for the CPU): "
          + ", ".join(f"{k.removesuffix('_s')} {v:.1f}" for k, v in cpu_s.items()))
    target = next((t for limit, t in TARGET_P95_MS if n <= limit), None)
    if target is not None:
        p95 = pct(serve["retrieve_ms"], 95)
        print(f"\ntarget: retrieve() p95 <= {target:.0f} ms at {n:,} chunks: {'PASS' if p95 <= target else 'FAIL'} "
              f"({p95:.1f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--baseline-queries", type=int,
                    help="default 100, or 30 above 200k chunks (the pure-Python BM25 takes seconds there)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--tokens", choices=("auto", "jieba", "direct"), default="auto")
    ap.add_argument("--ann", choices=("ivf", "ivf-sq8", "hnsw"), help="sets RAG_FAISS_ANN for the build")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp folder, removed)")
    ap.add_argument("--stage", choices=("build", "serve", "baseline"), help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.tokens == "auto":
        args.tokens = "jieba" if args.chunks <= JIEBA_MAX else "direct"
    if args.baseline_queries is None:
        args.baseline_queries = 100 if args.chunks <= JIEBA_MAX else 30
    if args.stage:
        result = {"build": stage_build, "serve": stage_serve, "baseline": stage_baseline}[args.stage](args, args.workdir)
        (args.workdir / f"{args.stage}.json").write_text(json.dumps(result), encoding="utf-8")
        return
    wd = args.keep or Path(tempfile.mkdtemp(prefix="rag-bench-query-"))
    wd.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, **({"RAG_FAISS_ANN": args.ann} if args.ann else {}))
    passthrough = ["--chunks", str(args.chunks), "--seed", str(args.seed), "--queries", str(args.queries),
                   "--baseline-queries", str(args.baseline_queries), "--warmup", str(args.warmup),
                   "--tokens", args.tokens]
    results = {}
    try:
        for stage in ("build", "serve", "baseline"):
            log(f"stage {stage}")
            subprocess.run([sys.executable, __file__, *passthrough, "--stage", stage, "--workdir", str(wd)],
                           check=True, env=env)
            results[stage] = json.loads((wd / f"{stage}.json").read_text(encoding="utf-8"))
    finally:
        if not args.keep:
            shutil.rmtree(wd, ignore_errors=True)
    report(args, results["build"], results["serve"], results["baseline"])


if __name__ == "__main__":
    main()
