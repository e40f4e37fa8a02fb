"""Cold start of the command line: wall time of ``rag ask`` as a fresh process, on a built index.

    python bench/coldstart.py [--runs 5] [--question Q] [--distractors N] [--baseline-ref REF] [--torch]

Builds the index first in a temp folder (``rag index seeds --index-dir TMP``; with
``--distractors N`` also N news articles from shared/data), then runs
``rag ask Q --index-dir TMP --json`` ``--runs`` times per column and prints min and median wall
time (target: median <= 1 s), split into the time the answer reports for itself (``timings``)
and the rest: process start, imports, loading the model and the index. Columns, same run:

- ``baseline``: the code before the cold-start levers (``git archive`` of ``--baseline-ref``,
  default the parent of the commit that added rag/embedding/fast_tokenizer.py), same index;
- ``in-process``: this code, no server: the quick-loading tokenizer (loads beside the rest,
  without holding the GIL) and the lazier imports;
- ``via server``: this code with a ``rag serve`` running on the index (started here, on a free
  loopback port, stopped after): ``rag ask --json`` asks it instead of loading the model;
- ``torch engine`` (``--torch``): ``RAG_EMBED_ENGINE=torch``, sentence-transformers on torch.

The baseline and in-process runs alternate, so a change in the machine's load hits both alike;
each column has one untimed run first. Every column must give the same answer.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import corpus

QUESTION = "蓝风微短剧基地从签约到试运营用了多少天？"
TARGET_S = 1.0
SERVE_FILE = ".rag-serve.json"  # ui.commands.SERVE_FILE (not imported: that would import rag here)


def env_for(code: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(code),
                **(extra or {}))


def program(code: Path) -> str:
    """The module the ``rag`` console script runs in that tree (``ui.launch`` since it exists)."""
    return "ui.launch" if (code / "ui" / "launch.py").is_file() else "ui.cli"


def run(cmd: list[str], code: Path = ROOT, extra_env: dict[str, str] | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", program(code), *cmd], cwd=code, env=env_for(code, extra_env),
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"rag {' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return wall, done.stdout


class Column:
    def __init__(self, name: str, code: Path = ROOT, extra_env: dict[str, str] | None = None) -> None:
        self.name, self.code, self.extra_env = name, code, extra_env
        self.times: dict[str, list[float]] = {"wall": [], "total": [], "retrieve": [], "generate": [], "start": []}
        self.answer = ""

    def ask(self, index: Path, question: str, timed: bool = True) -> None:
        wall, stdout = run(["ask", question, "--index-dir", str(index), "--json"], self.code, self.extra_env)
        out = json.loads(stdout)
        self.answer = out["answer"]
        if not timed:
            return
        timings = out["timings"]
        self.times["wall"].append(wall)
        for key in ("total", "retrieve", "generate"):
            self.times[key].append(timings.get(f"{key}_ms", 0.0) / 1000)
        self.times["start"].append(wall - self.times["total"][-1])

    def median(self) -> float:
        return statistics.median(self.times["wall"])


def baseline_code(ref: str | None, dest: Path) -> tuple[Path, str] | None:
    """The project at ``ref`` (default: before the levers), unpacked into ``dest``; None without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        if ref is None:
            added = git("log", "--diff-filter=A", "--format=%H", "--", "rag/embedding/fast_tokenizer.py").splitlines()
            ref = f"{added[-1]}^" if added else "HEAD"  # not committed yet: HEAD is the code before
        commit = git("rev-parse", "--short", ref)
        dest.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", commit, "rag", "ui"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    except (OSError, subprocess.CalledProcessError, IndexError):
        return None
    return dest, commit


def compile_tree(code: Path) -> None:
    """Bytecode for the tree's modules, as installed code has it (``make setup`` runs compileall, pip
    compiles a wheel); without it each run compiles every module from source (~0.13 s here), which is
    what a process with PYTHONDONTWRITEBYTECODE set, like this sandbox's shell, does every time."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "rag", "ui"], cwd=code, check=True,
                   stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path) -> subprocess.Popen:
    """``rag serve`` on the index, returned once it has announced itself in the index folder."""
    proc = subprocess.Popen([sys.executable, "-m", program(ROOT), "serve", "--index-dir", str(index), "--port",
                             str(free_port())], cwd=ROOT, env=env_for(ROOT), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (index / SERVE_FILE).is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"rag serve did not start: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        time.sleep(0.2)
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--question", default=QUESTION)
    ap.add_argument("--distractors", type=int, default=0, help="news articles indexed beside seeds/")
    ap.add_argument("--index-dir", type=Path, help="use this built index instead of building one")
    ap.add_argument("--baseline-ref", help="git revision of the baseline column (default: before the levers)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the baseline column")
    ap.add_argument("--no-server", action="store_true", help="skip the via-server column")
    ap.add_argument("--torch", action="store_true", help="add the torch-engine column")
    ap.add_argument("--no-compile", action="store_true",
                    help="do not compile the trees' bytecode first (then PYTHONDONTWRITEBYTECODE decides)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rag-coldstart-"))
    load_before = os.getloadavg()[0]
    try:
        index, build_s = args.index_dir or tmp / "index", float("nan")
        if args.index_dir is None:
            source = corpus.build(tmp / "docs", limit=args.distractors) if args.distractors else ROOT / "seeds"
            build_s, _ = run(["index", str(source), "--index-dir", str(index)])
        if (index / SERVE_FILE).exists():
            sys.exit(f"a rag serve is announced in {index}: stop it first (the in-process column would ask it)")
        alternating = []
        baseline = None if args.no_baseline else baseline_code(args.baseline_ref, tmp / "baseline")
        if baseline is not None:
            alternating.append(Column(f"baseline {baseline[1]}", baseline[0]))
        alternating.append(Column("in-process"))
        if args.torch:
            alternating.append(Column("torch engine", extra_env={"RAG_EMBED_ENGINE": "torch"}))
        if not args.no_compile:
            for code in {col.code for col in alternating}:
                compile_tree(code)
        for col in alternating:
            col.ask(index, args.question, timed=False)
        for _ in range(args.runs):
            for col in alternating:
                col.ask(index, args.question)
        cols = list(alternating)
        if not args.no_server:
            server = start_server(index)
            try:
                via = Column("via server")
                via.ask(index, args.question, timed=False)
                for _ in range(args.runs):
                    via.ask(index, args.question)
                cols.append(via)
            finally:
                stop_server(server)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    what = f"seeds/ + {args.distractors} news articles" if args.distractors else "seeds/"
    what = str(args.index_dir) if args.index_dir else what
    print(f"rag ask as a fresh process, {args.runs} runs each, index of {what} (built in {build_s:.1f} s); "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores; "
          + ("modules run from source where PYTHONDONTWRITEBYTECODE is set" if args.no_compile
             else "bytecode compiled first in every tree, as installed code has it"))
    print(f"question: {args.question}")
    print(f"answer:   {cols[0].answer[:80]}")
    if len({c.answer for c in cols}) != 1:
        print("WARNING: the columns' answers differ: " + "; ".join(f"{c.name}: {c.answer[:40]}" for c in cols))
    print()
    print(f"{'seconds':36}" + "".join(f" {c.name + ' min':>22} {'median':>7}" for c in cols))
    for label, key in (("wall time", "wall"), ("  answer's own timings.total_ms", "total"),
                       ("    retrieve (embeds the question)", "retrieve"), ("    generate", "generate"),
                       ("  start-up: imports, model, index", "start")):
        cells = "".join(f" {min(c.times[key]):22.2f} {statistics.median(c.times[key]):7.2f}" for c in cols)
        print(f"{label:36}{cells}")
    print()
    for c in cols:
        verdict = "PASS" if c.median() <= TARGET_S else "FAIL"
        print(f"median wall, {c.name}: {c.median():.2f} s (target <= {TARGET_S:.1f} s: {verdict})")


if __name__ == "__main__":
    main()
