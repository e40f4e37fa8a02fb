"""Several knowledge bases: the default index plus one index folder per name under a root (``kbs/<name>/``).

A knowledge base is an ordinary index folder, so ``RAG.open(root / name)`` stays valid and every
command works on one through ``--kb NAME``. ``KnowledgeBases`` is the registry a server keeps: it
validates names (a name is a single path segment of letters, digits, ``_`` and ``-``, so no client
can name a folder outside the root), opens bases lazily and once, and creates and deletes them.
Bases share the process's embedder (``load_embedder`` caches models), so a second base costs its
index's memory, not another model.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import ConfigError, IndexNotFoundError, KnowledgeBaseNotFoundError
from rag.storage.lock import write_lock
from rag.storage.snapshot import MANIFEST, read_manifest

if TYPE_CHECKING:
    from rag.pipeline import RAG

DEFAULT = "default"  # the name of the index a server was started on (its --index-dir)
MAX_NAME = 64
# One path segment: a letter or digit (any script, so 新闻 is a name) then letters, digits, _ and -.
# No dot (no "..", no hidden folders), no separator, no space: safe as a folder and in a URL.
_NAME = re.compile(r"[^\W_][\w-]*")


def check_name(name: Any) -> str:
    """``name`` if it is a valid knowledge-base name, else a ConfigError that says why."""
    if not isinstance(name, str):
        raise ConfigError(f"knowledge base name must be a string. Currently, it is {type(name).__name__}")
    if not name:
        raise ConfigError("knowledge base name is empty")
    if len(name) > MAX_NAME:
        raise ConfigError(f"knowledge base name is {len(name)} characters, over the limit of {MAX_NAME}")
    if not _NAME.fullmatch(name) or not name.isprintable():
        raise ConfigError(
            f"knowledge base name {name[:80]!r} is not allowed: use letters, digits, '_' and '-', "
            "starting with a letter or digit (no dots, slashes or spaces)"
        )
    return name


def base_dir(root: str | Path, name: str) -> Path:
    """The folder of the knowledge base ``name`` under ``root`` (the name is checked first)."""
    return Path(root) / check_name(name)


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
    path = base_dir(root, name)
    if path.is_symlink() or not (path / MANIFEST).is_file():
        raise KnowledgeBaseNotFoundError(f"no knowledge base {name!r} under {root} (create one with `rag kb create NAME`)")
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
        raise ConfigError(f"{DEFAULT!r} is the name of the server's own index; choose another name")
    path = base_dir(root, name)
    if (path / MANIFEST).is_file():
        raise ConfigError(f"knowledge base {name!r} already exists ({path})")
    rag = opener(path, create=True, **settings)
    rag.index([])  # writes the empty index's manifest
    return rag


def delete_base(root: str | Path, name: str) -> Path:
    """Remove the knowledge base ``root/name`` and everything in its folder (uploads, feedback)."""
    if name == DEFAULT:
        raise ConfigError("the default knowledge base cannot be deleted (it is the server's --index-dir)")
    path = existing_base(root, name)
    with write_lock(path):  # not while a writer is saving into it
        trash = path.with_name(f".{name}.deleting")
        shutil.rmtree(trash, ignore_errors=True)
        path.rename(trash)  # gone from listings at once; a crash below leaves only a hidden folder
    shutil.rmtree(trash, ignore_errors=True)
    return path


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
                raise KnowledgeBaseNotFoundError(
                    f"no knowledge base {name!r}; the bases are: {', '.join(self.names())} "
                    "(create one with `rag kb create NAME`)") from None
            rag = self._bases.get(name)
            if rag is not None:
                return rag
            rag = self._open(path)
            self._bases[name] = rag
            return rag

    def get_many(self, names: str | list[str] | None) -> list[tuple[str, RAG]]:
        """Named bases for one question, in the order given, without repeats (None: the default)."""
        if names is None or names == []:
            return [(DEFAULT, self.default)]
        wanted = [names] if isinstance(names, str) else list(names)
        if len(wanted) > 20:
            raise ConfigError(f"{len(wanted)} knowledge bases asked at once, over the limit of 20")
        seen: dict[str, RAG] = {}
        for name in wanted:
            seen.setdefault(name, self.get(name))
        return list(seen.items())

    @classmethod
    def open(cls, root: str | Path = "kbs", default: str | Path = "index", **settings: Any) -> KnowledgeBases:
        """The bases under ``root`` with the index ``default`` as ``default`` (``settings`` as for ``RAG.open``)."""
        from rag.pipeline import RAG  # noqa: PLC0415 - the pipeline imports this module

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

    def create(self, name: str, **settings: Any) -> RAG:
        with self._lock:
            rag = create_base(self.root, name, self._open, **settings)
            self._bases[name] = rag
            return rag

    def delete(self, name: str) -> None:
        with self._lock:
            delete_base(self.root, name)
            self._bases.pop(name, None)


__all__ = ["DEFAULT", "KnowledgeBases", "base_dir", "check_name", "create_base", "delete_base", "existing_base",
           "list_bases", "model_id", "name_of_model", "summary"]
