"""DOCX to text, streamed: paragraphs and tables in document order, headings as Markdown headings;
a body-level table's rows become units (``docx_units``: merged cells from ``w:gridSpan`` and
``w:vMerge`` into ``rag.ingest.tables.Grid``, titled by its caption or the paragraph before it).

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

from rag.errors import LoaderError
from rag.ingest.archive import find_member, member_blocks, open_archive, read_member
from rag.ingest.limits import MAX_PARAGRAPHS, TextBudget, check_paragraphs
from rag.ingest.tables import Grid, Merge, add_rows, cell_text, table_title
from rag.ingest.units import Extracted, UnitText
from rag.ingest.xml_stream import parse_xml

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
_MAX_SPAN = 1000  # grid columns one cell may span (Word allows 63): a hostile value cannot blow a row up


def docx_text(raw: bytes, name: str, max_paragraphs: int = MAX_PARAGRAPHS, budget: TextBudget | None = None) -> str:
    """The text of a DOCX: body paragraphs and table rows (cells joined by `` | ``) in document order,
    separated by blank lines; ``LoaderError`` naming ``name`` when it is damaged or over a bound."""
    return "\n\n".join(_read(raw, name, max_paragraphs, budget or TextBudget(name, KIND)).lines)


def docx_units(raw: bytes, name: str, max_paragraphs: int = MAX_PARAGRAPHS) -> Extracted:
    """The text of a DOCX with each row of a body-level table as a unit (``table`` = the table's number
    in the document, ``row`` = the row's, the header being row 1), titled by the table's caption (a
    paragraph of style Caption right before it, or right after it) or else the short paragraph before it."""
    body = _read(raw, name, max_paragraphs, TextBudget(name, KIND))
    out = UnitText(TextBudget(name, KIND))  # what is read and what it becomes (headers repeat) are each bounded
    items = body.items
    for i, item in enumerate(items):
        if isinstance(item, _Paragraph):
            out.text(item.text)
            continue
        before = items[i - 1] if i and isinstance(items[i - 1], _Paragraph) else None
        after = items[i + 1] if i + 1 < len(items) and isinstance(items[i + 1], _Paragraph) else None
        if after is not None and (not after.caption or (i + 2 < len(items) and isinstance(items[i + 2], Grid))):
            after = None  # a caption under this table, unless it is the one over the next
        caption = before if before is not None and before.caption else after
        title = table_title((caption or before).text if caption or before else None)
        add_rows(out, item, title, table=sum(isinstance(t, Grid) for t in items[:i]) + 1)
    return out.result()


def _read(raw: bytes, name: str, max_paragraphs: int, budget: TextBudget) -> _Body:
    with open_archive(raw, name, KIND) as archive:
        main = _main_part(archive, name)
        styles = _styles(archive, main, name)
        body = _Body(name, styles, max_paragraphs, budget)
        _parse(member_blocks(archive, main, name, KIND, limit=archive.getinfo(main).file_size),
               main, name, body.start, body.end, body.data)
    return body


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
    parse_xml(blocks, part, name, KIND, start, end, data, doctype="declares a DTD, which Office files never do")


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


def _is_caption(styles: dict[str, _Style], style_id: str | None) -> bool:
    """A paragraph of Word's Caption style (题注), or of a style based on it."""
    for _ in range(16):
        if style_id is None:
            return False
        style = styles.get(style_id)
        if (style.name if style is not None else style_id).casefold().replace(" ", "") == "caption":
            return True
        if style is None:
            return False
        style_id = style.based_on
    return False


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


@dataclass(frozen=True)
class _Paragraph:
    """A body-level paragraph's line, and whether it is a caption."""

    text: str
    caption: bool = False


@dataclass
class _Cell:
    span: int = 1  # w:gridSpan: grid columns it covers
    vmerge: str | None = None  # w:vMerge: "restart" opens a vertical merge, "continue" goes on with it


@dataclass
class _Table:
    """A table's cells as read (text, span, vertical merge) row by row."""

    rows: list[list[tuple[str, _Cell]]] = field(default_factory=list)
    skip: list[int] = field(default_factory=list)  # w:gridBefore of each row: grid columns left empty

    def grid(self) -> Grid:
        """The cells on the table's grid with their merged ranges."""
        rows: list[list[str]] = []
        merges: list[Merge] = []
        down: dict[int, list[int]] = {}  # column -> [top, left, right, bottom] of an open vertical merge
        for r, cells in enumerate(self.rows):
            row = [""] * (self.skip[r] if r < len(self.skip) else 0)
            for text, cell in cells:
                col, span = len(row), max(cell.span, 1)
                row.extend([cell_text(text)] + [""] * (span - 1))  # a cell's paragraphs on one line
                if cell.vmerge == "continue" and col in down:
                    down[col][3] = r
                    row[col] = ""
                    continue
                if col in down:
                    merges.append(Merge(*_ordered(down.pop(col))))
                if cell.vmerge == "restart":
                    down[col] = [r, col, col + span - 1, r]
                elif span > 1:
                    merges.append(Merge(r, col, r, col + span - 1))
            rows.append(row)
        merges.extend(Merge(*_ordered(m)) for m in down.values())
        return Grid(rows, merges)


def _ordered(m: list[int]) -> tuple[int, int, int, int]:
    top, left, right, bottom = m
    return top, left, bottom, right


class _Body:
    """Expat handlers that turn a document part into lines: a paragraph ends in a line (a Markdown
    heading at body level when its style is one); a table row is its cells joined by `` | ``; a
    table inside a cell, or a text box inside a paragraph, adds its lines to its container's."""

    def __init__(self, name: str, styles: dict[str, _Style], max_paragraphs: int, budget: TextBudget) -> None:
        self.lines: list[str] = []
        self.items: list[_Paragraph | Grid] = []  # the body's paragraphs and tables, in order
        self._name, self._styles, self._max, self._budget = name, styles, max_paragraphs, budget
        self._sinks: list[list[str]] = [self.lines]  # where a finished paragraph goes: the body, or a cell
        self._rows: list[list[tuple[str, _Cell]]] = []  # the cells of each open table row
        self._cells: list[_Cell] = []  # the open cells' spans and merges
        self._tables: list[_Table] = []  # open tables (a table in a cell nests)
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
            self._cells.append(_Cell())
        elif local == "tr":
            self._rows.append([])
        elif local == "tbl":
            self._tables.append(_Table())
        elif local == "gridSpan" and self._cells:
            self._cells[-1].span = min(_int(attrs.get(f"{uri} val")) or 1, _MAX_SPAN)
        elif local == "vMerge" and self._cells:
            self._cells[-1].vmerge = "restart" if attrs.get(f"{uri} val") == "restart" else "continue"
        elif local == "gridBefore" and self._tables and self._rows:
            table = self._tables[-1]
            table.skip.extend([0] * (len(table.rows) + 1 - len(table.skip)))
            table.skip[len(table.rows)] = min(_int(attrs.get(f"{uri} val")) or 0, _MAX_SPAN)
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
            props = self._cells.pop() if self._cells else _Cell()
            if self._rows:
                self._rows[-1].append(("\n".join(cell), props))
        elif local == "tr" and self._rows:
            cells = self._rows.pop()
            if self._tables:
                self._tables[-1].rows.append(cells)
            if any(text for text, _ in cells):
                self._sinks[-1].append(" | ".join(text for text, _ in cells))
        elif local == "tbl" and self._tables:
            table = self._tables.pop()
            if not self._tables and len(self._sinks) == 1:
                self.items.append(table.grid())

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
        line = f"{'#' * level} {text}" if level else text
        self._sinks[-1].append(line)
        if len(self._sinks) == 1:  # not in a table's cell (a text box's paragraph is the body's)
            self.items.append(_Paragraph(line, _is_caption(self._styles, para.style)))
