"""Loading a file the test wrote and listing its units: what the tests of formats made of units share."""

from __future__ import annotations

from rag.ingest.files import SourceFile, load_file
from rag.types import Document


def load(tmp_path, name: str, raw: bytes) -> Document:
    """``raw`` written as ``tmp_path/name`` and loaded as indexing loads it."""
    path = tmp_path / name
    path.write_bytes(raw)
    return load_file(SourceFile(path, name))


def unit_rows(doc: Document) -> list[tuple[str, str | None, dict]]:
    """Each unit's text, title and meta."""
    return [(doc.text[u.start:u.end], u.title, u.meta) for u in doc.units]
