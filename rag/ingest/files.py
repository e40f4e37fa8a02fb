"""Find and read source files: walking folders, distinct document ids, size limits, one `Document` per file."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.errors import LoaderError
from rag.ingest.decoding import decode_bytes
from rag.ingest.formats import read_pdf
from rag.ingest.readers import KINDS, UNIT_SUFFIXES, read_units
from rag.ingest.scans import IMAGE_KINDS, IMAGE_SUFFIXES, Box, image_to_text
from rag.types import Document, Unit

SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}) | UNIT_SUFFIXES | IMAGE_SUFFIXES
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    doc_id: str  # relative to its root, "/"-separated


def find_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[SourceFile], dict[str, str]]:
    """Expand files and directory trees into supported source files.

    Returns the files and, for paths that cannot be used, the reason by path.  A file given
    directly is named by its base name, a folder's files by their path inside it; where two files
    would get the same id (two notes.md, two folders with the same layout) both are named by as
    many parent folders as tell them apart, whatever the order of ``paths``.  Symlinked
    directories are not followed, so a symlink loop cannot trap the walk.
    """
    depths: dict[Path, int] = {}  # file -> how many trailing parts of its path name it
    skipped: dict[str, str] = {}
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            skipped[str(raw)] = "no such file or directory"
            continue
        p = p.resolve()
        if p.is_file():
            if p.suffix.lower() in SUPPORTED_SUFFIXES:
                depths[p] = max(depths.get(p, 0), 1)
            else:
                skipped[str(p)] = f"unsupported file type {p.suffix or '(none)'}"
            continue
        for f in _walk(p, skipped):  # a file also given directly keeps the longer, folder-relative id
            depths[f] = max(depths.get(f, 0), len(f.relative_to(p).parts))
    ids = _distinct_ids(depths)
    return sorted((SourceFile(f, doc_id) for f, doc_id in ids.items()), key=lambda s: s.doc_id), skipped


def _distinct_ids(depths: dict[Path, int]) -> dict[Path, str]:
    """Doc ids from the trailing ``depths[f]`` parts of each path, lengthened where they collide until all differ."""
    depths = dict(depths)
    while True:
        by_id: dict[str, list[Path]] = {}
        for f, depth in depths.items():
            by_id.setdefault(_tail(f, depth), []).append(f)
        clashing = [f for same in by_id.values() if len(same) > 1 for f in same]
        if not clashing:
            return {f: _tail(f, depth) for f, depth in depths.items()}
        # distinct absolute paths differ somewhere, so lengthening ends
        for f in clashing:
            depths[f] = min(depths[f] + 1, len(f.parts) - 1)


def _tail(path: Path, depth: int) -> str:
    return "/".join(path.parts[-depth:])


def _walk(root: Path, skipped: dict[str, str]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            f = Path(dirpath) / name
            if f.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            if not f.is_file():  # dangling symlink, socket ...
                skipped[str(f)] = "not a regular file"
                continue
            yield f



_KINDS = {".pdf": "PDF", **KINDS, **IMAGE_KINDS}  # KINDS: DOCX, HTML, Markdown and the other readers' formats
_DETAIL_CHARS = 300  # of a parser's message: enough to say what is wrong, not a dump of the file


def _extract(raw: bytes, suffix: str, name: str) -> tuple[str, str, tuple[Unit, ...], tuple[Box, ...]]:
    """The text of a file's bytes by its suffix, its encoding (``pdf``, ``docx`` for packed formats),
    its units (rows, slides ...: ``rag.ingest.readers``) and its OCR'd lines' boxes (``rag.ingest.scans``)."""
    if suffix in UNIT_SUFFIXES:
        extracted, encoding = read_units(raw, suffix, name)
        return extracted.text, encoding, extracted.units, ()
    if suffix == ".pdf":
        text, boxes, units = read_pdf(raw, name)
        return text, "pdf", units, boxes
    if suffix in IMAGE_SUFFIXES:
        text, boxes = image_to_text(raw, name, suffix)
        return text, IMAGE_KINDS[suffix].lower(), (), boxes
    text, encoding = decode_bytes(raw, name)  # plain text
    return text, encoding, (), ()


def document_entry(doc: Document) -> dict[str, object]:
    """What the manifest records of a loaded file before its chunk count and time (in the manifest's key order)."""
    return {"path": doc.path, "sha256": doc.sha256, "size": doc.size, "encoding": doc.encoding, "chars": len(doc.text)}


def load_file(src: SourceFile, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """Read one file; raises ``LoaderError`` naming the file and what is wrong with it."""
    name = src.doc_id
    try:
        size = src.path.stat().st_size
        if size > max_bytes:
            raise LoaderError("file.too_large", name=name, mb=size / 2**20, limit=max_bytes / 2**20)
        raw = src.path.read_bytes()
    except OSError as exc:
        raise LoaderError("file.unreadable", name=name, reason=str(exc.strerror or exc)) from exc
    suffix = src.path.suffix.lower()
    try:
        text, encoding, units, boxes = _extract(raw, suffix, name)
    except LoaderError:
        raise
    except Exception as exc:  # any parser's own error (lxml, zipfile, zlib, pypdf, charset, trafilatura, ...)
        # means this file is bad, not the server: it is refused by name like any other unreadable file
        detail = f"{type(exc).__name__}: {exc}"
        raise LoaderError("file.damaged", name=name, kind=_KINDS.get(suffix, "text file"),
                          detail=detail[:_DETAIL_CHARS]) from exc
    if not text.strip():
        raise LoaderError("file.no_text", name=name)
    return Document(
        doc_id=name, path=str(src.path), text=text,
        sha256=hashlib.sha256(raw).hexdigest(), size=len(raw), encoding=encoding, units=units, boxes=boxes,
    )
