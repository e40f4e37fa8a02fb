"""Find and read source documents: encoding detection, binary/empty checks, HTML to text."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from .errors import LoaderError
from .types import Document

SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm"})
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    doc_id: str  # relative to its root, "/"-separated


def find_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[SourceFile], dict[str, str]]:
    """Expand files and directory trees into supported source files.

    Returns the files and, for paths that cannot be used, the reason by path.
    Symlinked directories are not followed, so a symlink loop cannot trap the walk.
    """
    found: dict[str, SourceFile] = {}
    skipped: dict[str, str] = {}
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            skipped[str(raw)] = "no such file or directory"
            continue
        p = p.resolve()
        if p.is_file():
            if p.suffix.lower() in SUPPORTED_SUFFIXES:
                found.setdefault(p.name, SourceFile(p, p.name))
            else:
                skipped[str(p)] = f"unsupported file type {p.suffix or '(none)'}"
            continue
        for f in _walk(p, skipped):
            doc_id = f.relative_to(p).as_posix()
            found.setdefault(doc_id, SourceFile(f, doc_id))
    return sorted(found.values(), key=lambda s: s.doc_id), skipped


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


def decode_bytes(raw: bytes, name: str) -> tuple[str, str]:
    """Decode text bytes: UTF-8 (with or without BOM), then GB18030, then a detector's guess."""
    if not raw.strip():
        raise LoaderError(f"{name}: file is empty")
    if b"\x00" in raw[:8192] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoaderError(f"{name}: looks like a binary file (NUL bytes), not text")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        return _check_text(text, name), "utf-8" if enc == "utf-8-sig" else enc
    from charset_normalizer import from_bytes  # noqa: PLC0415 - only for unusual encodings

    best = from_bytes(raw).best()
    if best is None:
        raise LoaderError(f"{name}: cannot detect the text encoding (not UTF-8 or GB18030)")
    return _check_text(str(best), name), best.encoding


def _check_text(text: str, name: str) -> str:
    sample = text[:20000]
    control = sum(1 for c in sample if ord(c) < 32 and c not in "\n\r\t\f")
    if control > max(8, len(sample) // 100):
        raise LoaderError(f"{name}: looks like a binary file ({control} control characters), not text")
    if not text.strip():
        raise LoaderError(f"{name}: file holds only whitespace")
    return text


class _HTMLText(HTMLParser):
    """Visible text of an HTML page: scripts, styles and navigation dropped, blocks on new lines."""

    _SKIP = {"script", "style", "noscript", "template", "nav", "header", "footer", "svg"}
    _BLOCK = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:  # noqa: ANN001 - HTMLParser's signature
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def load_file(src: SourceFile, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """Read one file; raises ``LoaderError`` naming the file and what is wrong with it."""
    name = src.doc_id
    try:
        size = src.path.stat().st_size
        if size > max_bytes:
            raise LoaderError(
                f"{name}: file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit (max_file_mb)"
            )
        raw = src.path.read_bytes()
    except OSError as exc:
        raise LoaderError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    text, encoding = decode_bytes(raw, name)
    if src.path.suffix.lower() in {".html", ".htm"}:
        text = html_to_text(text)
        if not text.strip():
            raise LoaderError(f"{name}: HTML page has no visible text")
    return Document(
        doc_id=name, path=str(src.path), text=text,
        sha256=hashlib.sha256(raw).hexdigest(), size=len(raw), encoding=encoding,
    )
