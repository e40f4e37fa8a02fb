"""Several knowledge bases: the default index plus one index folder per name under a root (``kbs/<name>/``).

A knowledge base is an ordinary index folder, so ``RAG.open(root / name)`` stays valid and every
command works on one through ``--kb NAME``. ``KnowledgeBases`` is the registry a server keeps: it
validates names (a name is a single path segment of letters, digits, ``_`` and ``-``, so no client
can name a folder outside the root, short enough in bytes for every folder name made from it), opens
bases lazily and once, and creates and deletes them.
Bases share the process's embedder (``load_embedder`` caches models), so a second base costs its
index's memory, not another model.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, IndexCorruptError, IndexNotFoundError, KnowledgeBaseNotFoundError
from rag.pipeline import RAG
from rag.storage.lock import write_lock
from rag.storage.manifest import MANIFEST, read_manifest

DEFAULT = "default"  # the name of the index a server was started on (its --index-dir)
MAX_NAME = 64
NAME_MAX_BYTES = 255  # a file name's limit on Linux and macOS file systems (NAME_MAX), in bytes
_TRASH = ".{}.deleting"  # what a base is renamed to while it is deleted (see delete_base)
# The longest name whose every file-system name fits: the folder and its trash (".NAME.deleting").
MAX_NAME_BYTES = NAME_MAX_BYTES - len(_TRASH.format("").encode())
# One path segment: a letter or digit (any script, so 新闻 is a name) then letters, digits, _ and -.
# No dot (no "..", no hidden folders), no separator, no space: safe as a folder and in a URL.
_NAME = re.compile(r"[^\W_][\w-]*")


def check_name(name: Any, *, existing: bool = False) -> str:
    """``name`` if it is a valid knowledge-base name, else a ConfigError that says why.

    A new base's name must leave room for the names derived from it (``MAX_NAME_BYTES`` of UTF-8:
    a CJK letter takes 3, some letters 4); ``existing`` accepts any name a folder can have, so a base
    made before that limit can still be opened and deleted."""
    if not isinstance(name, str):
        raise ConfigError(f"knowledge base name must be a string. Currently, it is {type(name).__name__}")
    if not name:
        raise ConfigError("kb.name_empty")
    if len(name) > MAX_NAME:
        raise ConfigError("kb.name_too_long", n=len(name), limit=MAX_NAME)
    size, limit = len(name.encode("utf-8", "surrogatepass")), NAME_MAX_BYTES if existing else MAX_NAME_BYTES
    if size > limit:
        raise ConfigError("kb.name_too_many_bytes", n=size, limit=limit, trash=_TRASH.format("NAME"),
                          fs_limit=NAME_MAX_BYTES)
    if not _NAME.fullmatch(name) or not name.isprintable():
        raise ConfigError("kb.bad_name", name=name[:80])
    return name


def base_dir(root: str | Path, name: str, *, existing: bool = False) -> Path:
    """The folder of the knowledge base ``name`` under ``root`` (the name is checked first: see ``check_name``)."""
    return Path(root) / check_name(name, existing=existing)


def model_id(name: str) -> str:
    """The OpenAI-API model id of a base: ``rag`` for the default, ``kb:<name>`` for the others."""
    return "rag" if name == DEFAULT else f"kb:{name}"


def name_of_model(model: str) -> str | None:
    """The base a model id names (``rag`` → the default), or None when it names none."""
    if model == "rag":
        return DEFAULT
    return model[3:] if model.startswith("kb:") and len(model) > 3 else None


def existing_base(root: str | Path, name: str) -> Path:
    """The folder of the knowledge base ``name`` (checked), or KnowledgeBaseNotFoundError: a link or a folder
    without a manifest is no base."""
    path = base_dir(root, name, existing=True)
    if path.is_symlink() or not (path / MANIFEST).is_file():
        raise KnowledgeBaseNotFoundError("kb.not_found", name=name, root=root)
    return path


def summary(name: str, index_dir: Path) -> dict[str, Any]:
    """What ``rag kb list`` and ``GET /api/kbs`` show of a base, read from its manifest only."""
    manifest = read_manifest(index_dir)
    counts = manifest.get("counts") or {}
    return {
        "name": name, "model": model_id(name), "default": name == DEFAULT,
        "documents": int(counts.get("documents", len(manifest.get("documents") or {}))),
        "chunks": int(counts.get("chunks", 0)),
        "embedder": (manifest.get("embedder") or {}).get("name"),
    }


def list_bases(root: str | Path) -> list[str]:
    """The names of the knowledge bases under ``root`` (folders with a manifest), sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.is_symlink() and _NAME.fullmatch(p.name) and (p / MANIFEST).is_file())


def create_base(root: str | Path, name: str, opener: Callable[..., RAG], **settings: Any) -> RAG:
    """A new, empty knowledge base ``root/name`` (its manifest written, so it is listed at once)."""
    if name == DEFAULT:
        raise ConfigError("kb.reserved", name=DEFAULT)
    path = base_dir(root, name)
    if (path / MANIFEST).is_file():  # (no path in the message: it also goes to HTTP clients)
        raise ConfigError("kb.exists", name=name)
    rag = opener(path, create=True, **settings)
    rag.index([])  # writes the empty index's manifest
    return rag


def delete_base(root: str | Path, name: str) -> Path:
    """Remove the knowledge base ``root/name`` and everything in its folder (uploads, feedback)."""
    if name == DEFAULT:
        raise ConfigError("kb.default_undeletable")
    path = existing_base(root, name)
    with write_lock(path):  # not while a writer is saving into it
        trash = path.with_name(trash_name(name))
        shutil.rmtree(trash, ignore_errors=True)
        path.rename(trash)  # gone from listings at once; a crash below leaves only a hidden folder
    shutil.rmtree(trash, ignore_errors=True)
    return path


def rename_base(root: str | Path, old: str, new: str) -> Path:
    """Rename the knowledge base ``root/old`` to ``root/new`` (one folder rename, under the old base's write
    lock, so no writer is saving into it); its documents, uploads and feedback go with it."""
    if DEFAULT in (old, new):
        raise ConfigError("kb.default_unrenamable" if old == DEFAULT else "kb.reserved", name=DEFAULT)
    path = existing_base(root, old)
    target = base_dir(root, new)
    with write_lock(path):
        if target.exists() or target.is_symlink():  # checked under the lock: two renames to one name
            raise ConfigError("kb.exists", name=new)
        path.rename(target)
    return target


def trash_name(name: str) -> str:
    """The hidden name a base is renamed to while it is deleted: ``.NAME.deleting``, or for a name too long
    for that (a base made before ``MAX_NAME_BYTES``) one made from its hash, which always fits."""
    trash = _TRASH.format(name)
    if len(trash.encode("utf-8", "surrogatepass")) <= NAME_MAX_BYTES:
        return trash
    return _TRASH.format(hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32])


class KnowledgeBases:
    """The knowledge bases one server answers: ``default`` (the RAG it was started with) and those under ``root``."""

    def __init__(self, default: RAG, root: str | Path, opener: Callable[..., RAG]) -> None:
        self.default = default
        self.root = Path(root)
        self._open = opener  # RAG.open: passed in, as the pipeline imports this module
        self._bases: dict[str, RAG] = {DEFAULT: default}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return [DEFAULT, *(n for n in list_bases(self.root) if n != DEFAULT)]

    def usable_names(self) -> list[str]:
        """The names of the bases that can be asked: the default and those whose manifest reads (a
        damaged one is listed by ``describe`` with its error, not offered as usable)."""
        names = [DEFAULT]
        for name in self.names()[1:]:
            try:
                read_manifest(self.root / name)
            except Exception:  # damaged in any way: not usable (describe says why)
                continue
            names.append(name)
        return names

    def describe(self) -> list[dict[str, Any]]:
        rows = [{**summary(DEFAULT, self.default.index_dir), "documents": len(self.default.documents()),
                 "chunks": self.default.size}]
        for name in self.names()[1:]:
            try:
                rows.append(summary(name, self.root / name))
            except (IndexNotFoundError, KnowledgeBaseNotFoundError):
                continue  # deleted meanwhile
            except Exception as exc:  # a damaged base is listed as such, not hidden
                rows.append({"name": name, "model": model_id(name), "default": False, "error": str(exc)})
        return rows

    def get(self, name: str | None = None) -> RAG:
        """The base ``name`` (None or ``default``: the server's own), opened on first use."""
        if name is None or name == DEFAULT:
            return self.default
        with self._lock:
            try:
                path = existing_base(self.root, name)
            except KnowledgeBaseNotFoundError:
                self._bases.pop(name, None)  # deleted, perhaps by another process
                raise KnowledgeBaseNotFoundError("kb.unknown_hint", name=name, names=", ".join(self.names())) from None
            rag = self._bases.get(name)
            if rag is not None:
                return rag
            try:
                rag = self._open(path)
            except IndexCorruptError as exc:  # which base: a client may have asked several
                raise IndexCorruptError("kb.damaged", name=name, reason=str(exc)) from exc
            self._bases[name] = rag
            return rag

    def get_many(self, names: str | list[str] | None) -> list[tuple[str, RAG]]:
        """Named bases for one question, in the order given, without repeats (None: the default)."""
        if names is None or names == []:
            return [(DEFAULT, self.default)]
        wanted = [names] if isinstance(names, str) else list(names)
        if len(wanted) > 20:
            raise ConfigError("kb.too_many_asked", n=len(wanted), limit=20)
        seen: dict[str, RAG] = {}
        for name in wanted:
            seen.setdefault(name, self.get(name))
        return list(seen.items())

    @classmethod
    def open(cls, root: str | Path = "kbs", default: str | Path = "index", **settings: Any) -> KnowledgeBases:
        """The bases under ``root`` with the index ``default`` as ``default`` (``settings`` as for ``RAG.open``)."""
        return cls(RAG.open(default, **settings), root, lambda path, **more: RAG.open(path, **{**settings, **more}))

    def target(self, kb: str | list[str] | None) -> tuple[RAG, list[tuple[str, RAG]] | None]:
        """The RAG that answers a question for ``kb`` and the named bases it asks (the ``bases`` argument of
        ``RAG.ask``): None asks the default alone, as ``RAG.ask`` does, so its passages carry no base name."""
        if kb is None:
            return self.default, None
        named = self.get_many(kb)
        return named[0][1], named

    def ask(self, question: str, kb: str | list[str] | None = None, **options: Any) -> Any:
        """``RAG.ask`` over the base(s) ``kb``: ``bases.ask("…", kb=["default", "news"])``."""
        rag, named = self.target(kb)
        return rag.ask(question, bases=named, **options)

    def search(self, question: str, kb: str | list[str] | None = None, **options: Any) -> Any:
        """``RAG.search`` over the base(s) ``kb``."""
        rag, named = self.target(kb)
        return rag.search(question, bases=named, **options)

    def as_retriever(self, kb: str | list[str] | None = None, *, top_k: int = 5, filters: dict[str, str] | None = None,
                     retrieval: str | None = None) -> Any:
        """The base(s) ``kb`` as one LangChain retriever (``RAG.as_retriever``); each Document's ``kb`` says
        which base it came from. The names are checked here, not at the chain's first question."""
        from rag.retrieval.langchain import retriever  # noqa: PLC0415 - langchain_core only for LangChain users

        self.get_many(kb)
        self.default.as_retriever(top_k=top_k, filters=filters, retrieval=retrieval)  # the same checks
        return retriever(self.search, top_k=top_k, filters=filters, retrieval=retrieval, kb=kb)

    def create(self, name: str, **settings: Any) -> RAG:
        with self._lock:
            rag = create_base(self.root, name, self._open, **settings)
            self._bases[name] = rag
            return rag

    def delete(self, name: str) -> None:
        with self._lock:
            try:
                delete_base(self.root, name)
            except KnowledgeBaseNotFoundError:  # its message names the root folder: not for a client
                raise KnowledgeBaseNotFoundError("kb.unknown", name=name, names=", ".join(self.names())) from None
            self._bases.pop(name, None)

    def rename(self, old: str, new: str) -> RAG:
        """Rename the base ``old`` to ``new`` and open it under its new name (requests that held the old
        one finish on it; the next ones open the new folder)."""
        with self._lock:
            try:
                rename_base(self.root, old, new)
            except KnowledgeBaseNotFoundError:  # its message names the root folder: not for a client
                raise KnowledgeBaseNotFoundError("kb.unknown", name=old, names=", ".join(self.names())) from None
            self._bases.pop(old, None)
        return self.get(new)

    def folders(self) -> list[Path]:
        """The server folders a message may name (the default index, the root of the bases), as given
        and resolved: ``rag.http.redact`` shows clients names instead."""
        given = [Path(self.default.index_dir), self.root]
        return [*given, *(p.resolve() for p in given)]


__all__ = ["DEFAULT", "KnowledgeBases", "base_dir", "check_name", "create_base", "delete_base", "existing_base",
           "list_bases", "model_id", "name_of_model", "rename_base", "summary"]
