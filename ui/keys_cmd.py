"""``rag keys add|list|revoke``: the named keys of the keys file (``RAG_KEYS_FILE``, ``rag.access``).

A key is printed once, when it is made; the file keeps only its hash. ``--read`` and ``--write`` take base
names separated by commas, or ``*`` for every base (those made later too); writing a base implies reading
it; ``--manage`` lets the key create, rename and delete bases. A running server reads the file again when
it changes, so a revoked key is refused at its next request.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rag.access import KeyRing
from rag.config import Settings
from rag.errors import ConfigError
from ui.kb_cmd import print_rows


def keys_file(args: argparse.Namespace) -> Path:
    """``--file``, else ``RAG_KEYS_FILE``, else an error that says how to name one."""
    path = args.file or Settings.from_env().keys_file
    if not path:
        raise ConfigError("keys.no_file")
    return Path(path)


def cmd_keys(args: argparse.Namespace) -> int:
    ring = KeyRing(keys_file(args))
    return {"add": _add, "list": _list, "revoke": _revoke}[args.keys_command](ring, args)


def _shown(names: list[str]) -> str:
    return ", ".join(names) if names else "-"


def _add(ring: KeyRing, args: argparse.Namespace) -> int:
    key = ring.add(args.name, read=args.read or "", write=args.write or "", manage=args.manage)
    grant = next(r for r in ring.records() if r.name == args.name).grant()
    print(f"key {args.name!r}: read {_shown(sorted(grant.read))}; write {_shown(sorted(grant.write))}"
          f"{'; manages knowledge bases' if grant.manage else ''}")
    print(key)
    print("this key is not shown again: store it now (the keys file keeps only its hash)")
    return 0


def _list(ring: KeyRing, args: argparse.Namespace) -> int:
    def line(r: dict[str, Any], width: int) -> str:
        state = f"revoked {r['revoked']}" if r["revoked"] else f"created {r['created']}"
        return (f"{r['name']:<{width}}  read {_shown(r['read'])}  write {_shown(r['write'])}"
                f"{'  manage' if r['manage'] else ''}  ({state})")

    return print_rows([r.public() for r in ring.records()], args.json,
                      f"no keys in {ring.path} (make one with `rag keys add NAME --read BASES`)", line)


def _revoke(ring: KeyRing, args: argparse.Namespace) -> int:
    record = ring.revoke(args.name)
    print(f"revoked key {record.name!r} ({record.revoked}); a running server refuses it from its next request")
    return 0


def add_keys_parser(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("keys", help="add, list or revoke named keys with per-base scopes (the keys file: RAG_KEYS_FILE)")
    keys = sp.add_subparsers(dest="keys_command", required=True)
    add = keys.add_parser("add", help="a new key, printed once")
    add.add_argument("name", help="the key's name: 1 to 64 letters, digits, _ - . @ (e.g. alice, news-bot)")
    add.add_argument("--read", metavar="BASES", help="bases it may read: a,b or * for all (default: none)")
    add.add_argument("--write", metavar="BASES", help="bases it may change (and read): a,b or * (default: none)")
    add.add_argument("--manage", action="store_true", help="it may also create, rename and delete bases")
    listing = keys.add_parser("list", help="the keys and their scopes (never the keys)")
    listing.add_argument("--json", action="store_true")
    revoke = keys.add_parser("revoke", help="refuse a key from now on (kept in the file, marked revoked)")
    revoke.add_argument("name", help="the key's name")
    for parser in (add, listing, revoke):
        parser.add_argument("--file", metavar="PATH", help="the keys file (default: RAG_KEYS_FILE)")
        parser.set_defaults(func=cmd_keys)


__all__ = ["add_keys_parser", "cmd_keys", "keys_file"]
