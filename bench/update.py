"""Cost of a change to a large index: add a 10-chunk document, then delete it, end to end (the save included).

    python bench/update.py [--chunks 100000,1000000] [--rounds 5] [--baseline-rounds 1] [--work DIR]

For each size, two indexes of the same synthetic chunks (bench/synth_index.py: texts, BM25 terms
and FAKE vectors from bench/synth.py; 10 chunks a document) are built, each in its own process:

- baseline: today's FAISS snapshot (``--store faiss``), where every change rebuilds bm25s's
  matrix (reusing its term cache), rebuilds the FAISS index and rewrites every file;
- ours: the segmented index (``--store segments``, ``rag.storage.segments.index``), where a change
  writes one segment and the manifest.

Then, in a fresh process per index, ``RAG.open`` and ``--rounds`` times ``RAG.add([file])`` of a real
file of seed text that the chunker cuts into 10 chunks (embedded for real by the default model)
and ``RAG.delete`` of it; wall seconds each, median and max. Targets: <= 0.5 s at 100k, <= 2 s at 1M.
``--work DIR`` keeps the indexes there and reuses them on the next run.
"""

from __future__ import annotations

import argparse
import json
import os
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

TARGETS = {100_000: 0.5, 1_000_000: 2.0}
STORES = ("faiss", "segments")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def index_folder(n: int, store: str, work: Path, stream: bool = False) -> Path:
    return work / (f"{store}-{n}-stream" if stream else f"{store}-{n}")


def ensure_built(n: int, store: str, work: Path, stream: bool = False) -> dict:
    """bench/synth_index.py's index of ``n`` chunks in ``index_folder(...)``, built there unless it is already.

    ``stream`` (segments only): ``--stream``, the corpus drawn and written a segment at a time (no
    corpus files); its progress lines are shown as they come."""
    out = index_folder(n, store, work, stream)
    done = out / "build.json"
    if done.is_file():
        return json.loads(done.read_text())
    log(f"building {store} index of {n:,} chunks" + (" (streaming)" if stream else ""))
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "synth_index.py"), "--chunks", str(n), "--store", store,
                          "--out", str(out), *(["--stream"] if stream else [])], stdout=subprocess.PIPE,
                         stderr=None if stream else subprocess.PIPE, text=True, check=False)
    if res.returncode:
        raise SystemExit(f"building {store} {n} failed" + (f":\n{res.stderr[-3000:]}" if res.stderr else " (see above)"))
    info = json.loads(res.stdout.strip().splitlines()[-1])
    done.write_text(json.dumps(info))
    return info


def ten_chunk_text(chunking: dict | None = None) -> str:
    """The shortest prefix of the seed text that the chunker (the index's ``chunking``, else the
    default) cuts into 10 chunks."""
    from rag.config import Settings
    from rag.ingest.chunking import ChunkSettings, chunk_source

    s = Settings.from_env()
    cs = ChunkSettings(**chunking) if chunking else \
        ChunkSettings(chunk_tokens=s.chunk_tokens, overlap_tokens=s.overlap_tokens, headers=s.headers)
    text = (ROOT / "seeds" / "000_e58332798fe41e73.txt").read_text(encoding="utf-8")
    lo, hi = 100, len(text)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(chunk_source("x.txt", text[:mid], cs)) >= 10:
            hi = mid
        else:
            lo = mid + 1
    return text[:lo]


def changes(index_dir: Path, rounds: int, folder: Path) -> dict:
    """Runs in its own process: open the index, then add and delete one 10-chunk file ``rounds`` times."""
    from rag import RAG

    t0 = time.perf_counter()
    rag = RAG.open(index_dir, progress=False)
    out = {"open_s": time.perf_counter() - t0, "chunks": rag.size, "add_s": [], "delete_s": []}
    text = ten_chunk_text(json.loads((index_dir / "manifest.json").read_text(encoding="utf-8")).get("chunking"))
    for r in range(rounds):
        f = folder / f"update-{r}.txt"
        f.write_text(text, encoding="utf-8")
        t0 = time.perf_counter()
        report = rag.add([f])
        out["add_s"].append(time.perf_counter() - t0)
        out["new_chunks"] = report.chunks_embedded
        t0 = time.perf_counter()
        rag.delete(f.name)
        out["delete_s"].append(time.perf_counter() - t0)
        log(f"{index_dir.parent.name} round {r}: add {out['add_s'][-1]:.2f} s, delete {out['delete_s'][-1]:.2f} s")
    assert rag.size == out["chunks"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", default="100000,1000000")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--baseline-rounds", type=int, default=1, help="rounds on the FAISS snapshot (minutes each at 1M)")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--child", nargs=3, metavar=("INDEX", "ROUNDS", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(changes(Path(args.child[0]), int(args.child[1]), Path(args.child[2]))))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="rag-update-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in [int(x) for x in args.chunks.split(",")]:
        for store in STORES:
            build = ensure_built(n, store, work)
            folder = work / f"docs-{store}-{n}"
            folder.mkdir(exist_ok=True)
            res = subprocess.run([sys.executable, __file__, "--child", str(work / f"{store}-{n}" / "index"),
                                  str(args.rounds if store == "segments" else args.baseline_rounds), str(folder)], capture_output=True, text=True, check=False)
            if res.returncode:
                raise SystemExit(f"changes on {store} {n} failed:\n{res.stderr[-3000:]}")
            rows.append((n, store, build, json.loads(res.stdout.strip().splitlines()[-1])))
    print(f"\nA 10-chunk document added, then deleted, end to end including the save; {args.rounds} rounds "
          f"({args.baseline_rounds} on the baseline); "
          f"median (max) seconds")
    print("| chunks | index | open | add | delete | new chunks | target |")
    print("|---|---|---|---|---|---|---|")
    for n, store, _build, r in rows:
        name = "today: FAISS snapshot (baseline)" if store == "faiss" else "segments (ours)"
        med = lambda xs: f"{statistics.median(xs):.2f} ({max(xs):.2f})"  # noqa: E731
        target = TARGETS.get(n)
        verdict = ""
        if store == "segments" and target:
            verdict = f"<= {target} s: " + ("PASS" if max(statistics.median(r["add_s"]), statistics.median(r["delete_s"]))
                                             <= target else "FAIL")
        print(f"| {n:,} | {name} | {r['open_s']:.1f} s | {med(r['add_s'])} | {med(r['delete_s'])} | "
              f"{r['new_chunks']} | {verdict} |")
    (work / "update.json").write_text(json.dumps(rows, indent=1))
    print(f"\n(raw figures: {work / 'update.json'})")


if __name__ == "__main__":
    main()
