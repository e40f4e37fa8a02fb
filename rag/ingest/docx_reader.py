"""DOCX to text, streamed: paragraphs and tables in document order, headings as Markdown headings.

Read with the standard library's expat parser over ``rag.ingest.archive``'s bounded member streams
rather than python-docx, which loads every part of the package (media included) into memory and
builds the whole XML tree before a paragraph can be counted: a 1 MB DOCX of zeros cost 1.9 GB, one of
500,000 empty paragraphs 110 s. Here only the relationships, the styles and the document part are
read, as a stream; paragraphs and characters are counted as they are met (``rag.ingest.limits``), so
the work stops at the bound; memory is the text extracted. A DTD is refused (Office never writes one),
which also rules out entity expansion.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from xml.parsers import expat

from rag.errors import LoaderError
from rag.ingest.archive import find_member, member_blocks, open_archive, read_member
from rag.ingest.limits import MAX_PARAGRAPHS, TextBudget, check_paragraphs

KIND = "DOCX"
_W = frozenset({
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",  # transitional (what Word writes)
    "http://purl.oclc.org/ooxml/wordprocessingml/main",  # strict
})
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
# Subtrees whose runs are not the document's text: deleted or moved-away revisions, earlier
# formatting, tab stops (w:tab there is a stop, not a tab character).
_IGNORED = frozenset({"del", "moveFrom", "pPrChange", "rPrChange", "tabs"})
_SMALL_PART = 16 * 2**20  # relationships and styles: a few KB in real files
_DEFAULT_MAIN = "word/document.xml"


def docx_text(raw: bytes, name: str, max_paragraphs: int = MAX_PARAGRAPHS, budget: TextBudget | None = None) -> str:
    """The text of a DOCX: body paragraphs and table rows (cells joined by `` | ``) in document order,
    separated by blank lines; ``LoaderError`` naming ``name`` when it is damaged or over a bound."""
    budget = budget or TextBudget(name, KIND)
    with open_archive(raw, name, KIND) as archive:
        main = _main_part(archive, name)
        styles = _styles(archive, main, name)
        body = _Body(name, styles, max_paragraphs, budget)
        _parse(member_blocks(archive, main, name, KIND, limit=archive.getinfo(main).file_size),
               main, name, body.start, body.end, body.data)
    return "\n\n".join(body.lines)


# ---- the package: which part is the document, which its styles ----------------------------------
def _main_part(archive: zipfile.ZipFile, name: str) -> str:
    for kind, target in _relationships(archive, "_rels/.rels", name):
        if kind.endswith("/officeDocument"):
            found = find_member(archive, _resolve("", target))
            if found is not None:
                return found
    found = find_member(archive, _DEFAULT_MAIN)
    if found is None:
        raise LoaderError("file.damaged", name=name, kind=KIND, detail=f"it has no document part, {_DEFAULT_MAIN}")
    return found


def _styles(archive: zipfile.ZipFile, main: str, name: str) -> dict[str, _Style]:
    folder, base = posixpath.split(main)
    for kind, target in _relationships(archive, posixpath.join(folder, "_rels", f"{base}.rels"), name):
        if kind.endswith("/styles") and (part := find_member(archive, _resolve(folder, target))) is not None:
            table = _StyleTable()
            _parse([read_member(archive, part, name, KIND, _SMALL_PART)], part, name, table.start, table.end, None)
            return table.styles
    return {}


def _relationships(archive: zipfile.ZipFile, part: str, name: str) -> list[tuple[str, str]]:
    found = find_member(archive, part)
    if found is None:
        return []
    out: list[tuple[str, str]] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag.rpartition(" ")[2] == "Relationship" and attrs.get("TargetMode") != "External":
            out.append((attrs.get("Type", ""), attrs.get("Target", "")))

    _parse([read_member(archive, found, name, KIND, _SMALL_PART)], found, name, start, None, None)
    return out


def _resolve(folder: str, target: str) -> str:
    path = target[1:] if target.startswith("/") else posixpath.join(folder, target)
    return posixpath.normpath(path).lstrip("/")


def _parse(blocks: Iterable[bytes], part: str, name: str, start: Callable[[str, dict[str, str]], None],
           end: Callable[[str], None] | None, data: Callable[[str], None] | None) -> None:
    """Stream ``blocks`` of XML through expat with the given handlers (element names are ``"URI local"``)."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True

    def no_dtd(*_: object) -> None:
        raise LoaderError("file.damaged", name=name, kind=KIND,
                          detail=f"its part {part!r} declares a DTD, which Office files never do")

    parser.StartDoctypeDeclHandler = no_dtd
    parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    if data is not None:
        parser.CharacterDataHandler = data
    try:
        for block in blocks:
            parser.Parse(block, False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise LoaderError("file.damaged", name=name, kind=KIND,
                          detail=f"its part {part!r} is not well-formed XML: {expat.ErrorString(exc.code)}, "
                                 f"line {exc.lineno}, column {exc.offset}") from exc


# ---- styles: which paragraph styles are headings ---------------------------------------------------
@dataclass
class _Style:
    name: str = ""
    based_on: str | None = None
    outline: int | None = None  # w:outlineLvl, 0 for a level-1 heading, 9 for body text


class _StyleTable:
    def __init__(self) -> None:
        self.styles: dict[str, _Style] = {}
        self._current: _Style | None = None

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        uri, _, local = tag.rpartition(" ")
        if uri not in _W:
            return
        val = attrs.get(f"{uri} val")
        if local == "style":
            self._current = None
            if attrs.get(f"{uri} type", "paragraph") == "paragraph" and (sid := attrs.get(f"{uri} styleId")):
                self._current = self.styles[sid] = _Style()
        elif self._current is None or val is None:
            return
        elif local == "name":
            self._current.name = val
        elif local == "basedOn":
            self._current.based_on = val
        elif local == "outlineLvl":
            self._current.outline = _int(val)

    def end(self, tag: str) -> None:
        if tag.rpartition(" ")[2] == "style":
            self._current = None


def _heading_level(styles: dict[str, _Style], style_id: str | None, outline: int | None) -> int:
    """Markdown heading level (0: body text) of a paragraph of style ``style_id`` and own outline level:
    Word's Title and Heading N styles, or any style (or paragraph) given an outline level, as Word's
    navigation pane shows them; a style inherits from the one it is based on."""
    if outline is not None:
        return min(outline + 1, 6) if 0 <= outline < 9 else 0
    for _ in range(16):  # a basedOn chain is short; a cycle ends here
        if style_id is None:
            return 0
        style = styles.get(style_id)
        level = _name_level(style.name if style is not None else style_id)
        if level or style is None:
            return level
        if style.outline is not None:
            return min(style.outline + 1, 6) if 0 <= style.outline < 9 else 0
        style_id = style.based_on
    return 0


def _name_level(style_name: str) -> int:
    folded = style_name.casefold().replace(" ", "")
    if folded == "title":
        return 1
    if folded.startswith("heading"):
        digits = folded.removeprefix("heading")
        return min(int(digits), 6) if digits.isdigit() and int(digits) > 0 else (0 if digits else 1)
    return 0


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# ---- the body ------------------------------------------------------------------------------------
@dataclass
class _Para:
    parts: list[str] = field(default_factory=list)
    style: str | None = None
    outline: int | None = None


class _Body:
    """Expat handlers that turn a document part into lines: a paragraph ends in a line (a Markdown
    heading at body level when its style is one); a table row is its cells joined by `` | ``; a
    table inside a cell, or a text box inside a paragraph, adds its lines to its container's."""

    def __init__(self, name: str, styles: dict[str, _Style], max_paragraphs: int, budget: TextBudget) -> None:
        self.lines: list[str] = []
        self._name, self._styles, self._max, self._budget = name, styles, max_paragraphs, budget
        self._sinks: list[list[str]] = [self.lines]  # where a finished paragraph goes: the body, or a cell
        self._rows: list[list[str]] = []  # the cells of each open table row
        self._paras: list[_Para] = []  # open paragraphs (a text box's paragraphs nest inside one)
        self._skip = 0  # depth inside an ignored subtree
        self._in_text = False
        self._count = 0

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        uri, _, local = tag.rpartition(" ")
        if self._skip or (uri == _MC and local == "Fallback") or (uri in _W and local in _IGNORED):
            self._skip += 1  # mc:Fallback repeats the mc:Choice before it (a text box drawn twice)
            return
        if uri not in _W:
            return
        if local == "p":
            self._count += 1
            check_paragraphs(self._count, self._name, KIND, self._max)
            self._paras.append(_Para())
        elif local == "tc":
            self._sinks.append([])
        elif local == "tr":
            self._rows.append([])
        elif not self._paras:
            return
        elif local == "t":
            self._in_text = True
        elif local in ("tab", "ptab"):
            self._text("\t")
        elif local in ("br", "cr"):
            self._text("\n")
        elif local == "noBreakHyphen":
            self._text("-")
        elif local == "pStyle":
            self._paras[-1].style = attrs.get(f"{uri} val")
        elif local == "outlineLvl":
            self._paras[-1].outline = _int(attrs.get(f"{uri} val"))

    def end(self, tag: str) -> None:
        if self._skip:
            self._skip -= 1
            return
        uri, _, local = tag.rpartition(" ")
        if uri not in _W:
            return
        if local == "t":
            self._in_text = False
        elif local == "p" and self._paras:
            self._finish(self._paras.pop())
        elif local == "tc" and len(self._sinks) > 1:
            cell = self._sinks.pop()
            if self._rows:
                self._rows[-1].append("\n".join(cell))
        elif local == "tr" and self._rows:
            cells = self._rows.pop()
            if any(cells):
                self._sinks[-1].append(" | ".join(cells))

    def data(self, text: str) -> None:
        if self._in_text and not self._skip and self._paras:
            self._text(text)

    def _text(self, text: str) -> None:
        self._budget.spend(len(text))
        self._paras[-1].parts.append(text)

    def _finish(self, para: _Para) -> None:
        text = "".join(para.parts).strip()
        if not text:
            return
        at_body = len(self._sinks) == 1 and not self._paras
        level = _heading_level(self._styles, para.style, para.outline) if at_body else 0
        self._sinks[-1].append(f"{'#' * level} {text}" if level else text)
