"""Document structure: articles, headlines, sections, bylines, dates and pages, found in cleaned text.

A newspaper page holds several articles; a continued piece (opened by a page
marker such as 《上接1版》) has no headline on the page, so it is named by its
dateline or first sentence.  Everything here works on clean-text offsets; the
chunker uses it so chunks never straddle two articles and carry their titles.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.ingest.cleaning import CleanText
from rag.types import Unit

_SENTENCE_END = re.compile(r"[。！？!?；;…][”’」』）)]*$")
_BYLINE = re.compile(r"^(?:[●■◆▲★]\s*\S.{0,40}|[（(]?(?:本报)?记者\s*\S.{0,40}|本报讯.{0,30}|通讯员\s*\S.{0,30})$")
_BYLINE_END = re.compile(r"[（(]记者\s*([^）)]{2,40})[）)]")
_DATELINE = re.compile(r"(新华社|中新社|本报)([\u4e00-\u9fff]{2,6}?)(\d{1,2}月\d{1,2}日)电")
_FULL_DATE = re.compile(r"(20\d{2}|19\d{2})\s*[-年/.]\s*(\d{1,2})\s*[-月/.]\s*(\d{1,2})\s*日?")
_CAPTION = re.compile(r"(供图|摄影?|图为|图片来源)\s*$")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
HEADLINE_MAX = 40  # a headline or subheading is a short line without sentence punctuation


@dataclass
class Article:
    start: int  # clean offsets
    end: int
    title: str
    continued: bool = False  # opened by a continuation marker, no headline on this page
    byline: str | None = None
    date: str | None = None  # ISO date when a full date is known
    date_text: str | None = None  # as printed ("2月13日") when only part of it is
    sections: list[tuple[int, str]] = field(default_factory=list)  # (clean offset, section title)
    unit: dict[str, Any] | None = None  # the meta of the document unit this piece is (a row, a slide ...)

    def section_at(self, pos: int) -> str | None:
        title = None
        for start, name in self.sections:
            if start > pos:
                break
            title = name
        return title


@dataclass
class Structure:
    articles: list[Article]
    page_starts: list[int]  # source offsets where pages 2, 3, ... begin (PDF form feeds)

    def article_at(self, pos: int) -> Article:
        for a in self.articles:
            if a.start <= pos < a.end:
                return a
        return self.articles[-1]

    def page_of(self, source_pos: int) -> int | None:
        if not self.page_starts:
            return None
        return bisect.bisect_right(self.page_starts, source_pos) + 1


def _paragraphs(text: str, start: int, end: int) -> list[tuple[int, str]]:
    out, pos = [], start
    for line in text[start:end].split("\n"):
        if line.strip():
            out.append((pos + len(line) - len(line.lstrip()), line.strip()))
        pos += len(line) + 1
    return out


def _is_heading(para: str) -> bool:
    return bool(_MD_HEADING.match(para)) or (
        len(para) <= HEADLINE_MAX and not _SENTENCE_END.search(para) and not _CAPTION.search(para)
        and not _BYLINE.match(para) and "。" not in para
    )


def _heading_text(para: str) -> str:
    m = _MD_HEADING.match(para)
    return (m.group(2) if m else para).strip()


def _sections(paras: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Subheadings: of a run of heading-like lines the last one heads the text below;
    a run that ends in a photo credit (供图, 摄) is a caption, not a heading."""
    out: list[tuple[int, str]] = []
    run: list[tuple[int, str]] = []
    for pos, para in paras:
        if _is_heading(para):
            run.append((pos, para))
            continue
        if run and not _CAPTION.search(para):
            out.append((run[-1][0], _heading_text(run[-1][1])))
        run = []
    return out


def _first_sentence(paras: list[tuple[int, str]], limit: int = 28) -> str:
    if not paras:
        return ""
    text = re.split(r"(?<=[。！？!?])", paras[0][1])[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _article(text: str, start: int, end: int, continued: bool, fallback: str) -> Article:
    paras = _paragraphs(text, start, end)
    body = text[start:end]
    art = Article(start, end, "", continued)
    i = 0
    if not continued and paras and _is_heading(paras[0][1]):
        art.title = _heading_text(paras[0][1])
        i = 1
        # A subtitle (deck) may follow the headline, then the byline.
        deck = paras[i][1] if i < len(paras) else ""
        if deck and len(deck) <= 60 and not deck.endswith("。") and not _BYLINE.match(deck) and not _MD_HEADING.match(deck):
            i += 1
    if i < len(paras) and _BYLINE.match(paras[i][1]):
        art.byline = paras[i][1].lstrip("●■◆▲★ ").strip()
        i += 1
    art.sections = _sections(paras[i:])
    if art.byline is None and (m := _BYLINE_END.search(body)):
        art.byline = m.group(1).strip()
    dateline = _DATELINE.search(body)
    if dateline:
        art.date_text = dateline.group(3)
    full = _FULL_DATE.search(body[:300])
    if full:
        y, mth, d = (int(g) for g in full.groups())
        if 1 <= mth <= 12 and 1 <= d <= 31:
            art.date = f"{y:04d}-{mth:02d}-{d:02d}"
    if not art.title:
        name = _first_sentence(paras) or (dateline.group(0) if dateline else "")
        art.title = f"（上接）{name}" if continued else (name or fallback)
    return art


def analyse(clean: CleanText, source: str, name: str, units: Sequence[Unit] = ()) -> Structure:
    """Split cleaned text into articles at page-marker breaks and find their parts.

    Each of ``units`` (source offsets) is an article of its own, titled by the unit, so no chunk
    straddles two; text between units continues the article before the first unit."""
    text = clean.text
    starts = {a: u for u in units if (a := _clean_pos(clean, u.start)) < _clean_pos(clean, u.end)}
    bounds = sorted({0, *clean.breaks, len(text), *starts, *(_clean_pos(clean, u.end) for u in units)})
    breaks = set(clean.breaks)
    articles: list[Article] = []
    prose: Article | None = None  # the last article that is no unit: text after a unit goes on with it
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        if not text[a:b].strip():
            continue
        unit = starts.get(a)
        if unit is not None:
            art = _article(text, a, b, continued=False, fallback=unit.title or name)
            art.title, art.unit = unit.title or art.title, dict(unit.meta)
        elif prose is not None and a not in breaks:
            art = _article(text, a, b, continued=True, fallback=name)
            art.title, art.continued = prose.title, prose.continued
        else:
            art = prose = _article(text, a, b, continued=i > 0, fallback=name)
        articles.append(art)
    if not articles:
        articles = [Article(0, len(text), name)]
    pages = [i + 1 for i, ch in enumerate(source) if ch == "\f"]
    return Structure(articles, pages)


def _clean_pos(clean: CleanText, source_pos: int) -> int:
    """The first clean offset at or after ``source_pos`` (clean offsets rise with source offsets)."""
    return int(np.searchsorted(clean.offsets[:-1], source_pos, side="left"))
