"""Cold start of the command line: wall time of ``rag ask`` as a fresh process, on a built index.

    python bench/coldstart.py [--runs 3] [--question Q] [--distractors N] [--no-compare]

Builds the index first in a temp folder (``rag index seeds --index-dir TMP``; with
``--distractors N`` also N news articles from shared/data), then runs
``rag ask Q --index-dir TMP --json`` ``--runs`` times and prints min and median wall time
(target: <= 3 s), split into the time the answer reports for itself (``timings``) and
the rest: process start, imports, loading the model and the index.

The baseline column, in the same run, is the torch engine (``RAG_EMBED_ENGINE=torch``):
sentence-transformers embeds the question, which means importing torch and transformers.
The default engine, OpenVINO, needs neither on the query path.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import corpus

RAG = ROOT / ".venv" / "bin" / "rag"
QUESTION = "蓝风微短剧基地从签约到试运营用了多少天？"
TARGET_S = 3.0


def run(cmd: list[str], extra_env: dict[str, str] | None = None) -> tuple[float, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **(extra_env or {}))
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return wall, done.stdout


def ask_runs(index: Path, question: str, runs: int, extra_env: dict[str, str] | None) -> dict[str, list[float]]:
    """Seconds per run: wall, the answer's own total, retrieve and generate, and the start-up rest."""
    out: dict[str, list[float]] = {"wall": [], "total": [], "retrieve": [], "generate": [], "start": []}
    for _ in range(runs):
        wall, stdout = run([str(RAG), "ask", question, "--index-dir", str(index), "--json"], extra_env)
        timings = json.loads(stdout)["timings"]
        out["wall"].append(wall)
        for key in ("total", "retrieve", "generate"):
            out[key].append(timings.get(f"{key}_ms", 0.0) / 1000)
        out["start"].append(wall - out["total"][-1])
    out["answer"] = json.loads(stdout)["answer"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--question", default=QUESTION)
    ap.add_argument("--distractors", type=int, default=0, help="news articles indexed beside seeds/")
    ap.add_argument("--index-dir", type=Path, help="use this built index instead of building one")
    ap.add_argument("--no-compare", action="store_true", help="skip the torch-engine baseline column")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rag-coldstart-"))
    try:
        index, build_s = args.index_dir or tmp / "index", float("nan")
        if args.index_dir is None:
            source = corpus.build(tmp / "docs", limit=args.distractors) if args.distractors else ROOT / "seeds"
            build_s, _ = run([str(RAG), "index", str(source), "--index-dir", str(index)])
        cols = {"default": ask_runs(index, args.question, args.runs, None)}
        if not args.no_compare:
            cols["torch engine"] = ask_runs(index, args.question, args.runs, {"RAG_EMBED_ENGINE": "torch"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    what = f"seeds/ + {args.distractors} news articles" if args.distractors else "seeds/"
    what = str(args.index_dir) if args.index_dir else what
    print(f"rag ask as a fresh process, {args.runs} runs each, index of {what} (built in {build_s:.1f} s); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"question: {args.question}")
    print(f"answer:   {cols['default']['answer'][:80]}")
    print()
    print(f"{'seconds':40}" + "".join(f" {name + ' min':>16} {'median':>7}" for name in cols))
    for label, key in (("wall time", "wall"), ("  answer's own timings.total_ms", "total"),
                       ("    retrieve (embeds the question)", "retrieve"), ("    generate", "generate"),
                       ("  start-up: imports, model, index", "start")):
        cells = "".join(f" {min(c[key]):16.2f} {statistics.median(c[key]):7.2f}" for c in cols.values())
        print(f"{label:40}{cells}")
    median = statistics.median(cols["default"]["wall"])
    if "torch engine" in cols:
        base = statistics.median(cols["torch engine"]["wall"])
        print(f"\nmedian wall: OpenVINO {median:.2f} s, torch baseline {base:.2f} s, {base / median:.1f}x faster")
    print(f"\ntarget: median wall <= {TARGET_S:.0f} s (default settings): {'PASS' if median <= TARGET_S else 'FAIL'} "
          f"({median:.2f} s)")


if __name__ == "__main__":
    main()
