"""Checksums of a generation's files: every data file is covered by a SHA-256 in the manifest,
keyed by its path inside the generation (``chunks.jsonl``, ``bm25/params.index.json``).

Opening checks them all except the BM25 term cache, which only a change reads: it is checked
then, and a damaged cache is dropped (the terms are segmented again), never a reason to refuse
the index.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.storage.lexical import CACHE_FILES
from rag.storage.manifest import REBUILD

REQUIRED_FILES = ("vectors.faiss", "chunks.jsonl", "documents.json")  # bm25/ is empty in an empty index
LEXICAL_DIR = "bm25"


def file_checksum(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (a million chunks make GB-sized arrays)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_PARALLEL_HASH_BYTES = 64 << 20  # below this, starting threads costs more than it saves (seeds/: 0.3 vs 2.9 ms)


def file_checksums(gen_dir: Path, names: Iterable[str]) -> dict[str, str]:
    """``file_checksum`` of each named file of a generation.  A large index hashes several at once:
    hashlib releases the GIL, so the BM25 arrays are hashed while the (larger) FAISS file is."""
    paths = {n: gen_dir / n for n in names}
    workers = min(len(paths), os.cpu_count() or 1)
    if workers < 2 or sum(p.stat().st_size for p in paths.values()) < _PARALLEL_HASH_BYTES:
        return {n: file_checksum(p) for n, p in paths.items()}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(paths, pool.map(file_checksum, paths.values()), strict=True))


def data_files(gen_dir: Path) -> list[str]:
    """Every data file of a generation, as its ``/``-separated path inside it: what the manifest covers."""
    return sorted(p.relative_to(gen_dir).as_posix() for p in gen_dir.rglob("*") if p.is_file())


def is_cache_file(name: str) -> bool:
    """Whether ``name`` (a path inside a generation) is the BM25 term cache: an optimisation that
    costs time, never answers, when it is lost."""
    folder, _, base = name.rpartition("/")
    return folder == LEXICAL_DIR and base in CACHE_FILES


@dataclass(frozen=True)
class FileProblem:
    """A data file of a generation that is missing or does not match its checksum."""

    name: str  # its path inside the generation, as in the manifest
    path: Path
    missing: bool  # else: present but fails its checksum

    @property
    def cache(self) -> bool:
        return is_cache_file(self.name)

    def message(self) -> str:
        what = "is missing" if self.missing else "fails its checksum"
        if self.cache:
            return f"BM25 term cache {self.path} {what}; the next change segments every chunk once and rewrites it"
        return f"index file {self.path} {what}; {REBUILD}"


def check_files(gen_dir: Path, manifest: dict[str, Any], *, cache: bool = False, verify: bool = True) -> list[FileProblem]:
    """The required files and those the manifest has a checksum for that are missing or, with ``verify``,
    damaged, in name order; the term cache only with ``cache`` (it is checked when it is read)."""
    expected = manifest["checksums"]
    names = sorted(n for n in set(REQUIRED_FILES) | set(expected) if cache or not is_cache_file(n))
    missing = {n for n in names if not (gen_dir / n).is_file()}
    present = [n for n in names if n in expected and n not in missing] if verify else []
    actual = file_checksums(gen_dir, present)
    damaged = {n for n in present if actual[n] != expected[n]}
    return [FileProblem(n, gen_dir / n, n in missing) for n in names if n in missing | damaged]


def cache_check(gen_dir: Path, manifest: dict[str, Any]) -> Callable[[str], bool]:
    """For ``LexicalIndex``: whether a term cache file still has the checksum recorded for it
    (true when none was recorded: an index saved before the cache was covered)."""
    expected = manifest["checksums"]

    def intact(name: str) -> bool:
        want = expected.get(f"{LEXICAL_DIR}/{name}")
        return want is None or file_checksum(gen_dir / LEXICAL_DIR / name) == want

    return intact
