"""Find and read source documents: encoding detection, binary/empty checks, HTML to text."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

from .errors import LoaderError
from .types import Document

SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"})
_FORMATS_HINT = "pip install 'rag-zh[formats]'"
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
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return _check_text(raw.decode("utf-16"), name), "utf-16"
        except UnicodeDecodeError as exc:
            raise LoaderError(f"{name}: has a UTF-16 byte order mark but is not valid UTF-16") from exc
    if b"\x00" in raw[:8192]:
        raise LoaderError(f"{name}: looks like a binary file (NUL bytes), not text")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        return _check_text(text, name), "utf-8" if enc == "utf-8-sig" else enc
    # UTF-8 with a few damaged bytes (a truncated download, a bad copy): keep the text, mark the damage.
    text = raw.decode("utf-8", errors="replace")
    if text.count("\ufffd") <= max(1, len(text) // 1000):
        return _check_text(text, name), "utf-8 (damaged bytes replaced)"
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

    _SKIP: ClassVar[frozenset[str]] = frozenset({"script", "style", "noscript", "template", "nav", "header", "footer", "svg"})
    _BLOCK: ClassVar[frozenset[str]] = frozenset(
        {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article", "title"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
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


def html_main_text(html: str) -> str:
    """The article text of a web page (trafilatura drops menus, ads and footers), headings kept as Markdown."""
    try:
        import lxml.html  # noqa: PLC0415 - optional, heavy (comes with trafilatura)
        import trafilatura  # noqa: PLC0415
    except ImportError:
        return html_to_text(html)
    try:
        tree = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return html_to_text(html)
    # trafilatura keeps menus of short pages; drop the page furniture before it looks.
    for el in tree.xpath("//nav|//footer|//aside|//header|//script|//style|//form|//noscript|//template"):
        el.drop_tree()
    text = trafilatura.extract(tree, output_format="markdown", include_formatting=True, include_comments=False,
                               include_tables=True, favor_recall=True)
    return text or html_to_text(html)


def pdf_to_text(raw: bytes, name: str) -> str:
    """Text layer of a PDF, pages separated by form feeds so chunks know their page."""
    try:
        from pypdf import PdfReader  # noqa: PLC0415
        from pypdf.errors import PdfReadError  # noqa: PLC0415
    except ImportError as exc:
        raise LoaderError(f"{name}: reading PDF needs pypdf: {_FORMATS_HINT}") from exc
    import io  # noqa: PLC0415

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoaderError(f"{name}: PDF is encrypted")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise LoaderError(f"{name}: damaged or unreadable PDF ({exc})") from exc
    if not any(pages):
        raise LoaderError(f"{name}: PDF has no text layer (scanned images need OCR first)")
    return "\f".join(pages)


def docx_to_text(raw: bytes, name: str) -> str:
    """Paragraphs of a Word file; headings become Markdown headings so they are kept as titles."""
    try:
        import docx  # noqa: PLC0415
    except ImportError as exc:
        raise LoaderError(f"{name}: reading DOCX needs python-docx: {_FORMATS_HINT}") from exc
    import io  # noqa: PLC0415
    import zipfile  # noqa: PLC0415

    try:
        document = docx.Document(io.BytesIO(raw))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoaderError(f"{name}: damaged or unreadable DOCX ({exc})") from exc
    lines = []
    for para in document.paragraphs:
        text = para.text.strip()
        if not text:
            continue
        style = (para.style.name or "") if para.style is not None else ""
        level = _heading_level(style)
        lines.append(("#" * level + " " + text) if level else text)
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n\n".join(lines)


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    if style.startswith("Heading"):
        digits = style.removeprefix("Heading").strip()
        return min(int(digits), 6) if digits.isdigit() else 1
    return 0


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
                f"{name}: file is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:g} MB limit (max_file_mb)"
            )
        raw = src.path.read_bytes()
    except OSError as exc:
        raise LoaderError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    suffix = src.path.suffix.lower()
    if suffix == ".pdf":
        text, encoding = pdf_to_text(raw, name), "pdf"
    elif suffix == ".docx":
        text, encoding = docx_to_text(raw, name), "docx"
    else:
        text, encoding = decode_bytes(raw, name)
        if suffix in {".html", ".htm"}:
            text = html_main_text(text)
    if not text.strip():
        raise LoaderError(f"{name}: no text found in the file")
    return Document(
        doc_id=name, path=str(src.path), text=text,
        sha256=hashlib.sha256(raw).hexdigest(), size=len(raw), encoding=encoding,
    )
