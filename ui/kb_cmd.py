"""``rag kb create|list|delete``: the knowledge bases under ``RAG_KB_ROOT`` (``rag.bases``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.bases import DEFAULT, create_base, delete_base, existing_base, list_bases, summary
from rag.config import Settings
from rag.errors import ConfigError
from rag.pipeline import RAG
from rag.storage.manifest import read_manifest


def _root(args: argparse.Namespace) -> Path:
    return Path(args.root or Settings.from_env().kb_root)


def cmd_kb(args: argparse.Namespace) -> int:
    return {"create": _create, "list": _list, "delete": _delete}[args.kb_command](args)


def _create(args: argparse.Namespace) -> int:
    settings = {"embedder": args.embedder, "chunk_tokens": args.chunk_tokens, "overlap_tokens": args.overlap_tokens}
    rag = create_base(_root(args), args.name, RAG.open, progress=False, **settings)
    print(f"created knowledge base {args.name!r} in {rag.index_dir} (embedder {rag.embedder.name}); "
          f"add documents with `rag index PATHS --kb {args.name}`")
    return 0


def _list(args: argparse.Namespace) -> int:
    root = _root(args)
    rows = []
    for name in list_bases(root):
        row = summary(name, root / name)
        rows.append({"name": name, "model": row["model"], "path": str(root / name), "documents": row["documents"],
                     "chunks": row["chunks"], "embedder": row["embedder"]})
    return print_rows(rows, args.json, f"no knowledge bases under {root} (create one with `rag kb create NAME`)",
                      lambda r, width: f"{r['name']:<{width}}  {r['documents']:>6} documents  {r['chunks']:>8} chunks  "
                                       f"{r['embedder']}")


def print_rows(rows: list[dict[str, Any]], as_json: bool, empty: str, line: Callable[[dict[str, Any], int], str]) -> int:
    """A listing: the rows as JSON (``--json``), else ``empty`` for none, else ``line(row, width)`` for each (``width``:
    the longest ``name``, to line the columns up)."""
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print(empty)
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(line(r, width))
    return 0


def _delete(args: argparse.Namespace) -> int:
    root = _root(args)
    if args.name == DEFAULT:
        raise ConfigError(f"{DEFAULT!r} is the name of a server's own index (--index-dir), not a base under {root}")
    path = existing_base(root, args.name)
    if not args.yes:
        documents = (read_manifest(path).get("counts") or {}).get("documents", 0)
        raise ConfigError(f"this deletes knowledge base {args.name!r} ({documents} documents, its uploads and "
                          f"feedback) from {path}; add --yes to confirm")
    delete_base(root, args.name)
    print(f"deleted knowledge base {args.name!r} ({path})")
    return 0


def add_kb_parser(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("kb", help="create, list or delete knowledge bases (one index folder each, under RAG_KB_ROOT)")
    kb = sp.add_subparsers(dest="kb_command", required=True)
    for name, text in (("create", "a new, empty knowledge base"), ("list", "the knowledge bases"),
                       ("delete", "remove a knowledge base and everything in its folder")):
        p = kb.add_parser(name, help=text)
        p.add_argument("--root", help="the folder of the knowledge bases (default: RAG_KB_ROOT, else kbs)")
        if name != "list":
            p.add_argument("name", help="letters, digits, _ and - (e.g. news, 新闻-2024)")
        if name == "create":
            p.add_argument("--embedder", help="embedding model (default: multilingual-e5-small)")
            p.add_argument("--chunk-tokens", type=int)
            p.add_argument("--overlap-tokens", type=int)
        if name == "list":
            p.add_argument("--json", action="store_true")
        if name == "delete":
            p.add_argument("--yes", action="store_true", help="confirm: the folder is removed")
        p.set_defaults(func=cmd_kb)


__all__ = ["add_kb_parser", "cmd_kb", "print_rows"]
