"""Load check of the HTTP API: N concurrent clients calling POST /api/ask over loopback for S seconds.

    python bench/load_api.py [--clients 20] [--seconds 30] [--url http://127.0.0.1:7860]
                             [--mix] [--distractors N] [--questions FILE.jsonl]

Without ``--url`` it starts ``rag serve`` itself (in its own process, on a free 127.0.0.1 port,
over an index built from seeds/ in a temporary folder, with ``--distractors N`` also N news articles
of shared/data: bench/corpus.py) and stops it afterwards. Every request asks one of the example
questions (or, with ``--questions``, the ``question`` of each line of a JSONL file, e.g.
shared/data/seed-dev.jsonl: fewer repeats, so less that a server can remember) with the extractive
generator. ``--mix`` cycles each client through POST /api/ask, /api/ask/stream (SSE),
/v1/chat/completions (OpenAI) and /api/search. Prints requests served, errors, throughput and latency
percentiles (p50/p95/max, in seconds); answers/s counts the requests that answered (search does not).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import corpus

QUESTIONS = [
    "蓝风微短剧基地从签约到试运营用了多少天？",
    "天心经开区有多少家高新技术企业？",
    "福建福州市军门社区的老党员叫什么名字？",
    "How many drama shoots per year can the Lanfeng micro-drama base handle?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index_dir: Path, log_path: Path, source: Path = ROOT / "seeds") -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", RAG_PROGRESS="false")
    env.pop("RAG_API_KEY", None)
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "serve", "--index-dir", str(index_dir), "--port", str(port), str(source)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"rag serve exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"rag serve did not start within 300 s:\n{log_path.read_text()}")


def writer(url: str, stop_at: list[float], counts: dict, errors: list[str], lock: threading.Lock) -> None:
    """Adds and deletes a document over and over while the clients ask (issue: many readers, one writer)."""
    with httpx.Client(base_url=url, timeout=300) as c:
        n = 0
        while time.monotonic() < stop_at[0]:
            name = f"load-writer-{n % 3}.txt"
            body = f"第{n}号测试文档：湘江新区今天新增企业{n}家。".encode() * 20
            for method, call in (("add", lambda: c.post("/api/documents", files={"files": (name, body, "text/plain")})),
                                 ("delete", lambda: c.delete(f"/api/documents/{name}"))):
                try:
                    r = call()
                    problem = None if r.status_code == 200 else f"{method} HTTP {r.status_code}: {r.text[:200]}"
                except Exception as exc:
                    problem = f"{method} {type(exc).__name__}: {exc}"
                with lock:
                    counts[method] = counts.get(method, 0) + (problem is None)
                    if problem:
                        errors.append(problem)
            n += 1


def ask(c: httpx.Client, kind: str, q: str) -> str | None:
    """One request of ``kind``; None when it answered (or, for search, found passages), else the problem."""
    if kind == "ask":
        r = c.post("/api/ask", json={"question": q, "generator": "extractive"})
        ok = r.status_code == 200 and bool(r.json().get("answer"))
    elif kind == "stream":
        r = c.post("/api/ask/stream", json={"question": q, "generator": "extractive"})
        ok = r.status_code == 200 and '"type": "answer"' in r.text.replace('"type":"answer"', '"type": "answer"')
    elif kind == "v1":
        r = c.post("/v1/chat/completions", json={"model": "rag", "messages": [{"role": "user", "content": q}]})
        ok = r.status_code == 200 and bool(r.json()["choices"][0]["message"]["content"])
    else:
        r = c.post("/api/search", json={"question": q})
        ok = r.status_code == 200 and isinstance(r.json(), list)
    return None if ok else f"{kind} HTTP {r.status_code}: {r.text[:200]}"


def run(url: str, clients: int, seconds: float, with_writer: bool = False, mix: bool = False,
        questions: list[str] = QUESTIONS) -> dict:
    kinds = ("ask", "stream", "v1", "search") if mix else ("ask",)
    latencies: list[float] = []
    answered = [0]
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=300) as c:
            start.wait()
            k = 0
            while time.monotonic() < stop_at[0]:
                # client i asks questions i, i + clients, i + 2 * clients, …: no two clients ask the same
                # question until the list runs out; each client cycles through the kinds
                q, kind = questions[(i + k * clients) % len(questions)], kinds[(i + k) % len(kinds)]
                k += 1
                t0 = time.monotonic()
                try:
                    problem = ask(c, kind, q)
                except Exception as exc:
                    problem = f"{kind} {type(exc).__name__}: {exc}"
                dt = time.monotonic() - t0
                with lock:
                    if problem is None:
                        latencies.append(dt)
                        answered[0] += kind != "search"
                    else:
                        errors.append(problem)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.monotonic() + seconds
    t_start = time.monotonic()
    start.wait()
    writes: dict[str, int] = {}
    write_errors: list[str] = []
    if with_writer:
        w = threading.Thread(target=writer, args=(url, stop_at, writes, write_errors, lock), daemon=True)
        w.start()
        threads.append(w)
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t_start
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, round(p / 100 * (len(lat) - 1)))] if lat else float("nan")

    return {
        "clients": clients, "seconds": round(elapsed, 1), "served": len(lat), "errors": len(errors),
        "throughput_rps": round(len(lat) / elapsed, 2) if elapsed else 0.0,
        "answers_per_s": round(answered[0] / elapsed, 2) if elapsed else 0.0,
        "p50_s": round(pct(50), 2), "p95_s": round(pct(95), 2), "max_s": round(lat[-1], 2) if lat else None,
        "mean_s": round(statistics.fmean(lat), 2) if lat else None, "first_errors": errors[:5],
        "writes": writes, "write_errors": len(write_errors), "first_write_errors": write_errors[:5],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--url", help="an already running server (default: start `rag serve` on a free port)")
    ap.add_argument("--writer", action="store_true", help="add and delete documents during the run")
    ap.add_argument("--mix", action="store_true", help="cycle through ask, stream, /v1 and search")
    ap.add_argument("--distractors", type=int, default=0, help="news articles indexed beside seeds/")
    ap.add_argument("--questions", type=Path, help="a JSONL file whose lines have a question")
    args = ap.parse_args()
    questions = QUESTIONS
    if args.questions:
        lines = args.questions.read_text(encoding="utf-8").splitlines()
        questions = [json.loads(line)["question"] for line in lines if line.strip()]

    proc, tmp = None, None
    url = args.url
    if not url:
        tmp = Path(tempfile.mkdtemp(prefix="rag-load-"))
        print("starting rag serve (builds an index of seeds/ first) …", flush=True)
        source = corpus.build(tmp / "docs", limit=args.distractors) if args.distractors else ROOT / "seeds"
        proc, url = start_server(tmp / "index", tmp / "serve.log", source)
    try:
        health = httpx.get(f"{url}/health", timeout=30).json()
        print(f"server {url}: {health['documents']} documents, {health['chunks']} passages; "
              f"{os.cpu_count()} CPU cores; {args.clients} clients for {args.seconds:g} s …", flush=True)
        httpx.post(f"{url}/api/ask", json={"question": QUESTIONS[0]}, timeout=300)  # warm-up
        r = run(url, args.clients, args.seconds, with_writer=args.writer, mix=args.mix, questions=questions)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"requests served {r['served']}  errors {r['errors']}  in {r['seconds']} s "
          f"({r['throughput_rps']} req/s, {r['answers_per_s']} answers/s); "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"latency p50 {r['p50_s']} s  p95 {r['p95_s']} s  mean {r['mean_s']} s  max {r['max_s']} s")
    if args.writer:
        print(f"writer: {r['writes'].get('add', 0)} adds, {r['writes'].get('delete', 0)} deletes, "
              f"{r['write_errors']} errors")
    for e in r["first_errors"] + r["first_write_errors"]:
        print(f"error: {e}")


if __name__ == "__main__":
    main()
