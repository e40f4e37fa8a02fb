"""The Milvus collection's schema, a chunk as a row and back, and the journal of hidden rows."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexCorruptError, RagError
from rag.types import Chunk

# VARCHAR limits in bytes (Milvus counts UTF-8 bytes; 65535 is its maximum): a longer value is refused
# by name here rather than by the server with a generic message
LIMITS = {"chunk_id": 1024, "doc_id": 4096, "sha": 64, "text": 65535, "article": 4096, "date": 32}
FIELDS = ("pk", "chunk_id", "doc_id", "sha", "text", "start", "end", "meta", "article", "date",
          "dl", "avgdl", "dense", "sparse")


def schema(dim: int) -> Any:
    from pymilvus import DataType, MilvusClient  # noqa: PLC0415 - an optional dependency

    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("pk", DataType.INT64, is_primary=True)  # our key, from the store's counter
    for name, limit in LIMITS.items():
        s.add_field(name, DataType.VARCHAR, max_length=limit)
    s.add_field("start", DataType.INT64)
    s.add_field("end", DataType.INT64)
    s.add_field("meta", DataType.JSON)  # Chunk.meta as it is (offset_runs, page_breaks ...)
    s.add_field("dl", DataType.INT64)  # BM25 length: what the state's total counts, rebuilt from rows
    s.add_field("avgdl", DataType.DOUBLE)  # the avgdl in this row's weights (see sparse_bm25)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    return s


def to_row(pk: int, chunk: Chunk, sha: str, vector: np.ndarray, weights: dict[int, float], dl: int,
           avgdl: float) -> dict[str, Any]:
    row = {
        "pk": pk, "chunk_id": chunk.chunk_id, "doc_id": chunk.doc_id, "sha": sha, "text": chunk.text,
        "start": chunk.start, "end": chunk.end, "meta": chunk.meta,
        "article": chunk.meta.get("article") or "", "date": chunk.meta.get("date") or "",  # "" when unknown
        "dl": dl, "avgdl": avgdl, "dense": np.asarray(vector, np.float32).tolist(), "sparse": weights,
    }
    for name, limit in LIMITS.items():
        size = len(str(row[name]).encode("utf-8"))
        if size > limit:
            raise RagError(f"chunk {chunk.chunk_id}: its {name} is {size} bytes, over the Milvus store's "
                           f"limit of {limit}; use smaller chunks")
    return row


def from_row(row: Mapping[str, Any]) -> Chunk:
    return Chunk.from_dict(dict(row))


def journal_path(state_dir: Path, collection: str) -> Path:
    """Where a collection's journal lives: in the state folder, one per collection (folders may be shared)."""
    return state_dir / f"milvus-{collection}-journal.json"


class Journal:
    """(doc_id, sha256) pairs whose rows readers must not see: a document being written, or the version
    being replaced.  One small JSON file, replaced atomically; re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._hidden: list[tuple[str, str]] = []

    def hide(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(sorted(set(pairs)), f, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def hidden(self) -> list[tuple[str, str]]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        if self._seen != (st.st_mtime_ns, st.st_size):
            try:
                self._hidden = [(d, s) for d, s in json.loads(self.path.read_text(encoding="utf-8"))]
            except (OSError, ValueError) as exc:
                raise IndexCorruptError(f"{self.path} is damaged ({exc}); reopen the store with the "
                                        "manifest's documents (live=) to repair it") from exc
            self._seen = (st.st_mtime_ns, st.st_size)
        return self._hidden

    def visible(self, where: str | None) -> str:
        """``where`` and "not a hidden row", as one Milvus expression ("" for every row)."""
        pairs = self.hidden()
        parts = [f"({where})"] if where else []
        if pairs:
            # "not (...)" over these pairs fails in Milvus Lite 2.5.1 ("unsupported expr proto node"): De Morgan's
            parts.extend(f"(doc_id != {lit(d)} or sha != {lit(s)})" for d, s in pairs)
        return " and ".join(parts)


def pairs_expr(pairs: Iterable[tuple[str, str]]) -> str:
    """The rows of these (doc_id, sha) pairs, as a Milvus expression."""
    return " or ".join(f"(doc_id == {lit(d)} and sha == {lit(s)})" for d, s in pairs)


def lit(text: str) -> str:
    """A Milvus string literal (its escapes are JSON's)."""
    return json.dumps(text, ensure_ascii=False)
