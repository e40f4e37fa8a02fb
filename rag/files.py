"""A file written whole or not at all: a temporary file beside it, then renamed over it.

The small files that caches and exports write (jieba's tables, the quick tokenizer's pieces, the export
cache's digests, a feedback export) go through ``write_atomic``; a killed process leaves the old file or
a hidden temporary one, never half a file. The index's own files have their own writers in
``rag.storage`` (fsynced folders, generations), which this does not replace.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, *, mode: int | None = 0o644, durable: bool = False) -> None:
    """``data`` (``str``: UTF-8) in ``path``. ``mode``: the file's permissions (None: private to the user,
    as ``mkstemp`` makes it; the default suits a cache shared like the model folder); ``durable``: fsynced
    before the rename, so it survives a power cut too. OSError as the file system gives it; the temporary
    file is removed then."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["write_atomic"]
