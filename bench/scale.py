"""Memory, disk and query time at scale: the segmented index next to today's FAISS snapshot, same chunks, same run.

    python bench/scale.py [--chunks 1000000] [--queries 300] [--work DIR]
    python bench/scale.py --stores segments --chunks 10000000 [--baseline-chunks 1000000] [--rounds 3] [--work DIR]

The indexes are bench/synth_index.py's (reused from ``--work`` when bench/update.py built them
there): synthetic texts and BM25 terms, FAKE vectors, 10 chunks a document. Each index is then
served in a fresh process: ``RAG.open``, then ``RAG.search(question, top_k=5)`` for each synthetic
question one at a time, the real question embedding included (hybrid retrieval, the default),
after 20 warm-up questions. Printed per index: build seconds and peak RSS (its own process), disk
bytes per chunk, serving RSS per chunk (VmRSS after the questions; the embedding model included),
query p50/p95, the question embedding's own p50, and recall@10 of the dense retriever against exact
search over the float32 vectors.

Targets at 1M (issue 17): serving RSS <= 1.5 KB per chunk, disk <= 2.5 KB per chunk, build peak
<= 4 GB, recall@10 >= 0.95, query p95 <= 20 ms.

``--stores segments``: the segmented index only, for sizes the snapshot cannot reach (10M chunks
here). Both columns are then ours, built alike with ``synth_index.py --stream`` (the corpus drawn and
written a segment at a time, never on disk as corpus files): at ``--chunks`` and, as the baseline
measured in the same run, at ``--baseline-chunks`` (1M; built there if missing, no baseline when
``--chunks`` is not larger). Build time and peak RSS are then generation and writing together (the
generation's share is shown). "Exact" for recall@10 is then a brute-force search over the index's
own stored vectors (each live row's float16 vector in its segment's ``vectors.npy``, read in
blocks), the vectors the dense retriever re-scores with: there is no float32 copy of the corpus.
Each index then also takes ``--rounds`` adds and deletes of a 10-chunk document (bench/update.py's
``changes``, wall seconds with the save, median and max), after it has been served: they change the
index (a delete can merge segments), which a later run in the same ``--work`` reuses as it is.
Targets at 10M (above 1M): serving RSS <= 1.2 KB per chunk, disk <= 2.5 KB per chunk, query p95
<= 60 ms, recall@10 >= 0.95, build <= 2 h, a 10-chunk document's add and delete <= 3 s each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

from bench.update import STORES, TARGETS, ensure_built, index_folder, log

WARMUP = 20
TARGETS_1M = {"peak_gb": 4.0, "disk_kb": 2.5, "rss_kb": 1.5, "p95_ms": 20.0, "recall": 0.95, "build_s": None,
              "change_s": TARGETS[1_000_000]}
TARGETS_10M = {"peak_gb": None, "disk_kb": 2.5, "rss_kb": 1.2, "p95_ms": 60.0, "recall": 0.95, "build_s": 7200.0,
               "change_s": 3.0}


def vm_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve(work: Path, m: int) -> dict:
    """Runs in its own process: open the index in ``work``, ask the questions, return the figures."""
    from rag import RAG
    from rag.storage.store import search_store

    t0 = time.perf_counter()
    rag = RAG.open(work / "index", progress=False)
    out: dict = {"open_s": time.perf_counter() - t0}
    q = json.loads((work / "queries.json").read_text(encoding="utf-8"))
    texts = q["texts"][: m + WARMUP]
    for t in texts[:WARMUP]:
        rag.search(t, top_k=5)
    times, embed = [], []
    for t in texts[WARMUP:]:
        t0 = time.perf_counter()
        rag.search(t, top_k=5)
        times.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        rag.embedder.embed_queries(["问：" + t])  # not t itself: the embedder remembers the question just searched
        embed.append((time.perf_counter() - t0) * 1000)
    qv = np.load(work / "query_vectors.npy")[:100]
    store = search_store(rag.state)
    found = [[k for k, _ in store.dense(v, 10, None)] for v in qv]
    out |= {"p50_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95)),
            "embed_p50_ms": statistics.median(embed), "serving_rss_mib": vm_rss_mib(),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "found": found,
            "chunks": rag.size}
    return out


def recall(work: Path, found: list[list[int]]) -> float:
    """Share of the dense top-10 that scores at least the exact 10th score (ties count), by exact search:
    over ``work``'s float32 ``vectors.npy`` when the build left one (keys are rows), else over the index's
    own float16 vectors (``--stream`` builds: ``recall_of_index``)."""
    from rag.storage.vectors import exact_top

    if not (work / "vectors.npy").is_file():
        return recall_of_index(work / "index", np.load(work / "query_vectors.npy")[: len(found)], found)
    x = np.load(work / "vectors.npy", mmap_mode="r")
    qv = np.load(work / "query_vectors.npy")[: len(found)]
    kth = exact_top(np.asarray(x), qv, 10)[0][:, -1]
    hits = total = 0
    for q, ids, t in zip(qv, found, kth):
        sims = np.asarray(x[np.array(ids, np.int64)], np.float32) @ q if ids else np.zeros(0)
        hits += int((sims >= t - 1e-5).sum())
        total += 10
    return hits / total


def recall_of_index(index_dir: Path, qv: np.ndarray, found: list[list[int]], k: int = 10) -> float:
    """``recall`` with "exact" = brute force over every live row's stored float16 vector (``kth_of_index``),
    keys ``key_base + row`` as the store's."""
    segs = _live_segments(index_dir)
    q32 = np.ascontiguousarray(qv, np.float32)
    kth = kth_of_index(index_dir, q32, k, segs)
    hits = total = 0
    for q, keys, t in zip(q32, found, kth):
        sims = _vectors_of_keys(segs, keys) @ q
        hits += int((sims >= t - 1e-5).sum())
        total += k
    return hits / total


def kth_of_index(index_dir: Path, qv: np.ndarray, k: int = 10, segs: list | None = None) -> np.ndarray:
    """Each question's k-th best inner product with the live rows' stored float16 vectors: brute force,
    segment by segment, ``VECTOR_BLOCK`` rows at a time (read, not memory-mapped)."""
    segs = _live_segments(index_dir) if segs is None else segs
    best = np.full((len(qv), k), -np.inf, np.float32)
    q32 = np.ascontiguousarray(qv, np.float32)
    for folder, _, live in segs:
        for lo, x in _vector_blocks(folder / "vectors.npy"):
            sims = q32 @ x.astype(np.float32).T  # (questions, rows)
            sims[:, ~live[lo : lo + len(x)]] = -np.inf
            if sims.shape[1] > k:
                sims = -np.partition(-sims, k - 1, axis=1)[:, :k]
            both = np.concatenate([best, sims], axis=1)
            best = -np.partition(-both, k - 1, axis=1)[:, :k]
    return best.min(axis=1)


VECTOR_BLOCK = 65_536


def _live_segments(index_dir: Path) -> list[tuple[Path, int, np.ndarray]]:
    """(folder, key_base, live row mask) of each segment the manifest names: a row is live when its
    document is listed in the segment's entry with the manifest's sha256 (as the store decides)."""
    manifest = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
    documents = manifest.get("documents") or {}
    out = []
    for entry in manifest["store"]["segments"]:
        folder = index_dir / "segments" / entry["name"]
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        listed = set(entry.get("docs", []))
        ok = np.array([d in listed and (documents.get(d) or {}).get("sha256") == sha for d, sha in meta["docs"]]
                      or [False])
        out.append((folder, int(meta["key_base"]), ok[np.load(folder / "rows.npy")]))
    return out


def _vector_blocks(path: Path):
    """(first row, float16 rows) of a ``.npy`` file, ``VECTOR_BLOCK`` rows at a time, read into memory."""
    head = np.load(path, mmap_mode="r")
    n, dim = head.shape
    offset, dtype = head.offset, head.dtype
    del head
    for lo in range(0, n, VECTOR_BLOCK):
        hi = min(lo + VECTOR_BLOCK, n)
        x = np.fromfile(path, dtype=dtype, count=(hi - lo) * dim, offset=offset + lo * dim * dtype.itemsize)
        yield lo, x.reshape(hi - lo, dim)


def _vectors_of_keys(segs: list[tuple[Path, int, np.ndarray]], keys: list[int]) -> np.ndarray:
    out = []
    for key in keys:
        for folder, base, live in segs:
            if base <= key < base + len(live):
                out.append(np.asarray(np.load(folder / "vectors.npy", mmap_mode="r")[key - base], np.float32))
                break
        else:
            raise ValueError(f"key {key} is in no segment of the manifest")
    return np.array(out, np.float32).reshape(len(out), -1)


def served(folder: Path, queries: int) -> dict:
    """``serve`` of ``folder`` in a fresh process, and its recall@10."""
    res = subprocess.run([sys.executable, __file__, "--child", str(folder), "--queries", str(queries)],
                         capture_output=True, text=True, check=False)
    if res.returncode:
        raise SystemExit(f"serving {folder.name} failed:\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["recall@10"] = recall(folder, out.pop("found"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--stores", choices=("faiss,segments", "segments"), default="faiss,segments",
                    help="segments: ours only, built by streaming, against ours at --baseline-chunks (10M chunks)")
    ap.add_argument("--baseline-chunks", type=int, default=1_000_000, help="with --stores segments: the baseline's size")
    ap.add_argument("--rounds", type=int, default=3, help="with --stores segments: adds and deletes of a 10-chunk "
                    "document per index (0: none)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(serve(args.child, args.queries)))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="rag-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.stores == "segments":
        segments_only(args, work)
        return
    n = args.chunks
    rows = {}
    for store in STORES:
        build = ensure_built(n, store, work)
        log(f"serving {store} ({n:,} chunks)")
        rows[store] = build | served(work / f"{store}-{n}", args.queries)
    b, o = rows["faiss"], rows["segments"]
    kb = lambda mib: mib * 1024 * 1024 / n / 1000  # noqa: E731 - MiB over n chunks, in KB per chunk
    lines = [
        ("build, s", b["build_s"], o["build_s"], None),
        ("build peak RSS, GB", b["build_peak_rss_mib"] / 1024, o["build_peak_rss_mib"] / 1024, ("<=", 4.0)),
        ("disk, KB per chunk", b["disk_per_chunk"] / 1000, o["disk_per_chunk"] / 1000, ("<=", 2.5)),
        ("open, s", b["open_s"], o["open_s"], None),
        ("serving RSS, KB per chunk", kb(b["serving_rss_mib"]), kb(o["serving_rss_mib"]), ("<=", 1.5)),
        ("query p50, ms", b["p50_ms"], o["p50_ms"], None),
        ("query p95, ms", b["p95_ms"], o["p95_ms"], ("<=", 20.0)),
        ("question embedding p50, ms", b["embed_p50_ms"], o["embed_p50_ms"], None),
        ("dense recall@10 vs exact", b["recall@10"], o["recall@10"], (">=", 0.95)),
    ]
    print(f"\n{n:,} synthetic chunks ({b['mean_chars']:.0f} characters each on average), {args.queries} questions")
    print("| | today: FAISS snapshot (baseline) | segments (ours) | ours / baseline | target (ours) |")
    print("|---|---|---|---|---|")
    for name, x, y, target in lines:
        print(f"| {name} | {x:,.3f} | {y:,.3f} | {y / x if x else float('nan'):.2f} | {_verdict(y, target)} |")
    (work / f"scale-{n}.json").write_text(json.dumps(rows, indent=1))


def segments_only(args: argparse.Namespace, work: Path) -> None:
    """Ours at ``--chunks`` against ours at ``--baseline-chunks``, both built by streaming, in this run."""
    n, base = args.chunks, args.baseline_chunks
    sizes = [base, n] if n > base else [n]
    builds = {size: ensure_built(size, "segments", work, stream=True) for size in sizes}
    rows = {}
    for size in sizes:
        log(f"serving segments ({size:,} chunks)")
        rows[size] = builds[size] | served(index_folder(size, "segments", work, stream=True), args.queries)
    for size in sizes if args.rounds else []:
        rows[size] |= changes_of(index_folder(size, "segments", work, stream=True), args.rounds)
    t = TARGETS_10M if n > 1_000_000 else TARGETS_1M
    med = lambda r, key: statistics.median(r[key]) if key in r else float("nan")  # noqa: E731
    lines = [
        ("build (generation and writing), s", lambda r: r["build_s"], ("<=", t["build_s"])),
        ("of which generating the corpus, s", lambda r: r["generate_s"], None),
        ("build peak RSS, GB", lambda r: r["build_peak_rss_mib"] / 1024, ("<=", t["peak_gb"])),
        ("segments after the build's commit", lambda r: r["segments"], None),
        ("disk, KB per chunk", lambda r: r["disk_per_chunk"] / 1000, ("<=", t["disk_kb"])),
        ("open, s", lambda r: r["open_s"], None),
        ("serving RSS, KB per chunk", lambda r: r["serving_rss_mib"] * 1024 * 1024 / r["chunks"] / 1000,
         ("<=", t["rss_kb"])),
        ("query p50, ms", lambda r: r["p50_ms"], None),
        ("query p95, ms", lambda r: r["p95_ms"], ("<=", t["p95_ms"])),
        ("question embedding p50, ms", lambda r: r["embed_p50_ms"], None),
        ("dense recall@10 vs exact (float16 stored vectors)", lambda r: r["recall@10"], (">=", t["recall"])),
        (f"add a 10-chunk document, s (median of {args.rounds})", lambda r: med(r, "add_s"),
         ("<=", t["change_s"])),
        ("... slowest add, s", lambda r: max(r.get("add_s") or [float("nan")]), None),
        (f"delete it, s (median of {args.rounds})", lambda r: med(r, "delete_s"), ("<=", t["change_s"])),
        ("... slowest delete, s", lambda r: max(r.get("delete_s") or [float("nan")]), None),
    ]
    ours = rows[n]
    print(f"\n{n:,} synthetic chunks ({ours['mean_chars']:.0f} characters each on average), {args.queries} "
          "questions; the segmented index only, built by streaming (bench/synth_index.py --stream)")
    if len(sizes) == 2:
        print(f"| | ours at {base:,} (baseline) | ours at {n:,} | {n:,} / {base:,} | target at {n:,} |")
        print("|---|---|---|---|---|")
    else:
        print(f"| | ours at {n:,} | target |")
        print("|---|---|---|")
    for name, get, target in lines:
        y = get(ours)
        if len(sizes) == 2:
            x = get(rows[base])
            print(f"| {name} | {x:,.3f} | {y:,.3f} | {y / x if x else float('nan'):.2f} | {_verdict(y, target)} |")
        else:
            print(f"| {name} | {y:,.3f} | {_verdict(y, target)} |")
    (work / f"scale-segments-{n}.json").write_text(json.dumps(rows, indent=1))
    print(f"\n(raw figures: {work / f'scale-segments-{n}.json'})")


def changes_of(folder: Path, rounds: int) -> dict:
    """bench/update.py's ``changes`` on ``folder``'s index, in a fresh process: add_s, delete_s (lists)."""
    docs = folder.parent / f"docs-{folder.name}"
    docs.mkdir(exist_ok=True)
    log(f"adding and deleting a 10-chunk document in {folder.name}, {rounds} rounds")
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "update.py"), "--child", str(folder / "index"),
                          str(rounds), str(docs)], stdout=subprocess.PIPE, text=True, check=False)
    if res.returncode:
        raise SystemExit(f"changes on {folder.name} failed (see above)")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return {"add_s": out["add_s"], "delete_s": out["delete_s"], "change_open_s": out["open_s"],
            "new_chunks": out.get("new_chunks")}


def _verdict(y: float, target: tuple[str, float | None] | None) -> str:
    if not target or target[1] is None:
        return ""
    ok = y <= target[1] if target[0] == "<=" else y >= target[1]
    return f"{target[0]} {target[1]}: {'PASS' if ok else 'FAIL'}"


if __name__ == "__main__":
    main()
