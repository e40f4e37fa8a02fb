"""Crash safety of writes through the HTTP API: SIGKILL `rag serve` during uploads and deletes.

    python bench/kill_api.py [--trials 10] [--seed 11]

Each trial starts `rag serve` on a copy of an index (the seed page plus `victim.txt`),
uploads three news articles and deletes `victim.txt` through the API, and kills the
server with SIGKILL after a random delay.  It then checks that the index verifies and
opens, that every write the server acknowledged (HTTP 200 before the kill) is in it,
restarts the server and checks that every upload stored under `documents/` is indexed
(a failed or interrupted embedding loses no upload) and that an acknowledged delete
stayed deleted.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.corpus import DEFAULT_DISTRACTORS
from bench.load_api import start_server as start


def articles(n: int) -> list[tuple[str, bytes]]:
    with DEFAULT_DISTRACTORS.open(encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(n), f)]
    return [(f"{r['id']}.txt", r["text"].encode()) for r in rows]


def writes(url: str, uploads: list[tuple[str, bytes]], acked: dict[str, bool]) -> None:
    with httpx.Client(base_url=url, timeout=600) as c:
        try:
            r = c.post("/api/documents", files=[("files", (n, b, "text/plain")) for n, b in uploads])
            acked["upload"] = r.status_code == 200
            r = c.delete("/api/documents/victim.txt")
            acked["delete"] = r.status_code == 200
        except httpx.HTTPError:
            pass  # the server was killed mid-request: nothing was acknowledged


def indexed(index: Path) -> set[str]:
    from rag import RAG
    from rag.storage.verify import verify

    report = verify(index, check_embedder=False)
    if not report.ok:
        raise AssertionError("; ".join(report.errors))
    return {d["doc_id"] for d in RAG.open(index, progress=False).documents()}


def trial(base: Path, work: Path, delay: float, uploads: list[tuple[str, bytes]]) -> str:
    index = work / "index"
    shutil.rmtree(index, ignore_errors=True)
    shutil.copytree(base, index)
    proc, url = start(index, work / "serve.log")
    acked: dict[str, bool] = {}
    t = threading.Thread(target=writes, args=(url, uploads, acked), daemon=True)
    t.start()
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    t.join(30)
    docs = indexed(index)
    names = {n for n, _ in uploads}
    if acked.get("upload") and not names <= docs:
        raise AssertionError(f"acknowledged uploads missing after the kill: {sorted(names - docs)}")
    if acked.get("delete") and "victim.txt" in docs:
        raise AssertionError("acknowledged delete undone by the kill")
    stored = {p.name for p in (index / "documents").iterdir()} if (index / "documents").is_dir() else set()
    proc, url = start(index, work / "serve2.log")  # the restart indexes stored uploads
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    after = indexed(index)
    if not (stored & names) <= after:
        raise AssertionError(f"stored uploads not indexed after the restart: {sorted((stored & names) - after)}")
    if acked.get("delete") and "victim.txt" in after:
        raise AssertionError("acknowledged delete undone after the restart")
    state = ("uploaded" if names <= docs else "not uploaded") + ", " + ("deleted" if "victim.txt" not in docs else "not deleted")
    return f"{state}; acknowledged {sorted(k for k, v in acked.items() if v) or 'nothing'}; stored uploads kept: {len(stored & names)}"


def prepare(work: Path) -> Path:
    from rag import RAG

    base = work / "base"
    rag = RAG.open(base, create=True, progress=False)
    rag.index([ROOT / "seeds"])
    folder = base / "documents"
    folder.mkdir()
    (folder / "victim.txt").write_text("这份文件将被删除：岳麓山位于湘江西岸。", encoding="utf-8")
    rag.add(folder / "victim.txt")
    return base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--max-delay", type=float, default=8.0, help="longest wait before the kill, seconds")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    uploads = articles(3)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        base = prepare(Path(tmp))
        for i in range(args.trials):
            delay = rng.uniform(0.05, args.max_delay)
            try:
                outcome = trial(base, Path(tmp), delay, uploads)
            except AssertionError as exc:
                failures += 1
                outcome = f"FAILED: {exc}"
            print(f"trial {i + 1:2d}: killed after {delay:4.1f} s -> {outcome}", flush=True)
    print(f"{args.trials - failures} of {args.trials} trials left a sound index with every acknowledged write kept")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
