"""The text each indexed document was read as, kept beside the index for the source viewer.

A citation's offsets point into the text the loaders made of the file (a PDF's pages joined by
form feeds: the page map). The viewer shows that text; reading it back from the file would parse
the file again on every view (seconds for a large PDF, asked for by anyone, no key needed), and
the file may be gone or changed. So indexing keeps it: one gzip file per document under
``<index>/sources/``, named by a hash of the document id and the SHA-256 of the bytes it was read
from, so a name never comes from a client and a name always means one content.

How it stays in step with the index, whatever the store (FAISS snapshot, segments, Milvus):

- the text is written (to a temporary name, then renamed) while the file is scanned, before the
  manifest names the document: a manifest never names a document whose text was not written;
- the viewer asks for the (id, sha256) pair the manifest in force names, so an updated document's
  old text is never shown for its new chunks, and a text written by a writer killed before its
  commit is simply not asked for;
- after a commit that deleted or replaced documents ``forget`` removes their texts; a rebuild
  ``sweep``s every text (and temporary file) no document in force names, such as the text a writer
  killed before its commit left.

A text that is missing or damaged (gzip's CRC, the recorded length) reads as None: the viewer then
rebuilds the text from the chunks, and ``rag verify`` says so. Nothing here parses a source file.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import uuid
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rag.types import Document

SOURCES_DIR = "sources"
_SUFFIX = ".txt.gz"
_log = logging.getLogger(__name__)


def text_name(doc_id: str, sha256: str) -> str:
    """The file name of a document's text: a hash of its id and content, never a client's string."""
    return hashlib.sha256(f"{doc_id}\0{sha256}".encode("utf-8", "surrogatepass")).hexdigest() + _SUFFIX


def text_path(index_dir: Path, doc_id: str, sha256: str) -> Path:
    name = text_name(doc_id, sha256)
    return Path(index_dir) / SOURCES_DIR / name[:2] / name  # 256 folders: no folder of 100k files


def keep_text(index_dir: Path, doc: Document) -> None:
    """Write ``doc``'s text (compressed; fsynced, then renamed into place, so a reader sees all of it or none)."""
    path = text_path(index_dir, doc.doc_id, doc.sha256)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("wb") as f:
            # surrogatepass: a decoded text may hold lone surrogates, and its offsets count them
            f.write(gzip.compress(doc.text.encode("utf-8", "surrogatepass"), compresslevel=6, mtime=0))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def has_text(index_dir: Path, doc_id: str, sha256: str) -> bool:
    return text_path(index_dir, doc_id, sha256).is_file()


def read_text(index_dir: Path, doc_id: str, sha256: str, chars: Any) -> str | None:
    """The kept text of the document the manifest records as (``doc_id``, ``sha256``, ``chars``), or
    None when there is none (an index built before texts were kept) or it is damaged."""
    if not isinstance(chars, int) or chars < 0:
        return None
    path = text_path(index_dir, doc_id, sha256)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read(4 * chars + 1)  # at most 4 UTF-8 bytes a character: more is not this text
    except FileNotFoundError:
        return None
    except (OSError, EOFError, zlib.error) as exc:  # truncated, or fails gzip's CRC
        _log.warning("the kept text of %r cannot be read (%s); the viewer rebuilds it from the chunks", doc_id, exc)
        return None
    try:
        text = raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None
    return text if len(text) == chars else None


def forget(index_dir: Path, before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]) -> int:
    """Remove the texts of the documents in ``before`` that ``after`` (the manifest just committed)
    no longer names with the same content: deleted or replaced ones. Costs what changed, not the
    corpus (``sweep`` lists every text: 0.7 s at 100k documents); returns how many files went."""
    removed = 0
    for doc_id, meta in before.items():
        sha = str(meta.get("sha256", ""))
        if str((after.get(doc_id) or {}).get("sha256", "")) != sha:
            with contextlib.suppress(FileNotFoundError):
                text_path(index_dir, doc_id, sha).unlink()
                removed += 1
    return removed


def sweep(index_dir: Path, documents: Mapping[str, Mapping[str, Any]]) -> int:
    """Remove every kept text no document in ``documents`` (the manifest in force) names, and
    temporary files a killed writer left; returns how many files went. Call it under the write lock."""
    root = Path(index_dir) / SOURCES_DIR
    if not root.is_dir():
        return 0
    wanted = {text_name(doc_id, str(meta.get("sha256", ""))) for doc_id, meta in documents.items()}
    removed = 0
    for folder in root.iterdir():
        if not folder.is_dir() or folder.is_symlink():
            continue
        for entry in os.scandir(folder):
            if entry.name not in wanted:
                with contextlib.suppress(OSError):  # gone already, or not ours to remove (a folder)
                    os.unlink(entry.path)
                    removed += 1
    return removed


class SourceTexts:
    """What a scan calls to keep the texts of one index folder."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)

    def keep(self, doc: Document) -> None:
        """A new or updated document's text."""
        keep_text(self.index_dir, doc)

    def keep_missing(self, doc: Document, known: Mapping[str, Any]) -> None:
        """An unchanged document's text, when the index has none for it (built before texts were kept):
        only if the text read now has the length recorded at indexing, so its chunks' offsets still fit."""
        if len(doc.text) != known.get("chars") or has_text(self.index_dir, doc.doc_id, doc.sha256):
            return
        try:
            keep_text(self.index_dir, doc)
        except OSError as exc:  # a catch-up only: an index that changes nothing must not fail on it
            _log.warning("could not keep the text of %r for the viewer: %s", doc.doc_id, exc)


def check_texts(index_dir: Path, documents: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``rag verify``'s warnings: documents whose kept text is missing or damaged."""
    missing = [d for d, meta in sorted(documents.items())
               if read_text(index_dir, d, str(meta.get("sha256", "")), meta.get("chars")) is None]
    if not missing:
        return []
    shown = ", ".join(repr(d) for d in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    return [f"{len(missing)} document(s) have no kept text for the source viewer, which shows them rebuilt from "
            f"their chunks (without the line breaks and page markers cleaning removed): {shown}; `rag index` their "
            "folder again (uploads: restart the server) to keep it"]


__all__ = ["SOURCES_DIR", "SourceTexts", "check_texts", "forget", "has_text", "keep_text", "read_text", "sweep", "text_name",
           "text_path"]
