"""Sentence-aware chunking for Chinese and mixed text, sized in cl100k tokens, offsets kept.

Sentence splitting is written here rather than taken from LangChain's splitters:
they re-find chunk text to compute ``start_index`` (wrong when a passage repeats)
and cut before closing quotes, while we need exact offsets and ``。”`` kept together.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rag.errors import ConfigError
from rag.ingest.cleaning import CleanText, clean
from rag.ingest.structure import Structure, analyse
from rag.text.sentences import sentence_spans
from rag.text.tokens import count_tokens
from rag.types import Chunk, Unit

_CLAUSE = re.compile(r"[，,、：:]")
_DIGIT = re.compile(r"[0-9０-９.．%％]")
_WORD = re.compile(r"\w")
MIN_WORD_CHARS = 1


@dataclass(frozen=True)
class ChunkSettings:
    chunk_tokens: int = 640
    overlap_tokens: int = 160
    # What the embedder and BM25 see: "none" (the chunk text), "dense" (article and section
    # titles prefixed for the embedder only) or "both".
    headers: str = "none"

    def __post_init__(self) -> None:
        if self.headers not in ("none", "dense", "both"):
            raise ConfigError(f"headers must be none, dense or both. Currently, headers is {self.headers!r}")
        if self.chunk_tokens < 16:
            raise ConfigError(f"chunk_tokens must be at least 16. Currently, chunk_tokens is {self.chunk_tokens}")
        if not 0 <= self.overlap_tokens < self.chunk_tokens // 2:
            raise ConfigError(
                "overlap_tokens must be between 0 and half of chunk_tokens. "
                f"Currently, overlap_tokens is {self.overlap_tokens} (chunk_tokens {self.chunk_tokens})"
            )


def _split_long(text: str, s: int, e: int, limit: int) -> Iterator[tuple[int, int]]:
    """Cut an over-long sentence at clause marks, then by length, never inside a number.

    Clauses are grouped by the sum of their own token counts, each counted once: re-counting the
    growing group at every clause cost a chunk's worth of tokenizing per clause (``一，`` repeated).
    ``_hard_split`` then measures what it yields, so no piece is over ``limit``.
    """
    pieces: list[tuple[int, int]] = []
    last = s
    for m in _CLAUSE.finditer(text, s, e):
        pieces.append((last, m.end()))
        last = m.end()
    if last < e:
        pieces.append((last, e))
    cur_s, cur_e = pieces[0]
    cur_tokens = count_tokens(text[cur_s:cur_e])
    for ps, pe in pieces[1:]:
        tokens = count_tokens(text[ps:pe])
        if cur_tokens + tokens <= limit:
            cur_e, cur_tokens = pe, cur_tokens + tokens
        else:
            yield from _hard_split(text, cur_s, cur_e, limit)
            cur_s, cur_e, cur_tokens = ps, pe, tokens
    yield from _hard_split(text, cur_s, cur_e, limit)


def _hard_split(text: str, s: int, e: int, limit: int) -> Iterator[tuple[int, int]]:
    """Cut text with no punctuation by length; only a window is measured, so a 5 MB line stays linear."""
    while s < e:
        cut = min(e, s + limit)  # cl100k spends at least one token per CJK char, so this is an upper bound
        while cut > s + 1 and count_tokens(text[s:cut]) > limit:
            cut = s + (cut - s) * 3 // 4
        cut = _number_start(text, s, cut, e)
        yield s, cut
        s = cut


def _number_start(text: str, s: int, cut: int, e: int) -> int:
    """``cut`` moved back to the start of a number it falls inside (a cut never splits ``1.5``), unless the
    number fills the window from ``s``: then it must be cut, and moving back would advance one character
    per window (a line of digits took minutes)."""
    back = cut
    while s + 1 < back < e and _DIGIT.match(text[back - 1]) and _DIGIT.match(text[back]):
        back -= 1
    return cut if back == s + 1 and _DIGIT.match(text[s]) else back


@dataclass
class _Sentence:
    start: int
    end: int
    tokens: int


def _sentences(clean: CleanText, limit: int, bounds: list[int]) -> list[list[_Sentence]]:
    """Sentences grouped by article: a chunk never straddles two."""
    groups = []
    for a, b in zip(bounds, bounds[1:]):
        group = []
        for s, e in sentence_spans(clean.text, a, b):
            spans = [(s, e)] if count_tokens(clean.text[s:e]) <= limit else _split_long(clean.text, s, e, limit)
            for ss, ee in spans:
                if clean.text[ss:ee].strip():
                    group.append(_Sentence(ss, ee, count_tokens(clean.text[ss:ee])))
        if group:
            groups.append(group)
    return groups


def _pack(group: list[_Sentence], settings: ChunkSettings) -> list[tuple[int, int]]:
    spans = list(_greedy(group, settings))
    # A tiny tail chunk ("]" or a byline) embeds as noise that matches every query;
    # start the last chunk earlier instead, so it is as full as the budget allows.
    tail = [s for s in group if s.start >= spans[-1][0]] if spans else []
    if len(spans) > 1 and sum(s.tokens for s in tail) < settings.chunk_tokens // 4:
        k, total = len(group), 0
        while k > 0 and total + group[k - 1].tokens <= settings.chunk_tokens:
            k -= 1
            total += group[k].tokens
        start = group[k].start
        if start <= spans[-2][0]:  # the previous chunk and the tail fit in one
            spans[-2:] = [(spans[-2][0], spans[-1][1])]
        else:
            spans[-1] = (start, spans[-1][1])
    return spans


def _greedy(group: list[_Sentence], settings: ChunkSettings) -> Iterator[tuple[int, int]]:
    i = 0
    while i < len(group):
        j, total = i, 0
        while j < len(group) and (j == i or total + group[j].tokens <= settings.chunk_tokens):
            total += group[j].tokens
            j += 1
        yield group[i].start, group[j - 1].end
        if j >= len(group):
            break
        # Step back over whole sentences for the overlap, always moving forward.
        k, back = j, 0
        while k - 1 > i and back + group[k - 1].tokens <= settings.overlap_tokens:
            k -= 1
            back += group[k].tokens
        i = k


def _structure_meta(structure: Structure, clean: CleanText, clean_start: int, clean_end: int,
                    src_start: int, src_end: int) -> dict:
    art = structure.article_at(clean_start)
    meta = {"article": art.title, "section": art.section_at(clean_start), "byline": art.byline,
            "date": art.date, "date_text": art.date_text} | (art.unit or {})
    # Sections that begin inside the chunk, so a quote can name its own section.
    inner = [[int(clean.offsets[pos]), name] for pos, name in art.sections if clean_start < pos < clean_end]
    if inner:
        meta["section_breaks"] = inner
    page = structure.page_of(src_start)
    if page is not None:
        meta["page"] = page
        meta["page_end"] = structure.page_of(max(src_start, src_end - 1))
        # Where later pages begin inside the chunk, so a quote can name its own page.
        breaks = [[p, i + 2] for i, p in enumerate(structure.page_starts) if src_start < p < src_end]
        if breaks:
            meta["page_breaks"] = breaks
    return {k: v for k, v in meta.items() if v is not None}


def offset_runs(clean: CleanText, s: int, e: int) -> list[list[int]]:
    """Compact clean→source map of ``clean.text[s:e]``: [relative clean pos, source pos] where a run starts.

    Within a run the mapping is one to one; runs break where cleaning removed or
    joined text.  Kept in each chunk so citations can point into the source file.
    """
    offs = clean.offsets[s:e]
    if len(offs) == 0:
        return []
    starts = np.flatnonzero(np.diff(offs) != 1) + 1
    return [[0, int(offs[0])]] + [[int(i), int(offs[i])] for i in starts]


def chunk_source(doc_id: str, source: str, settings: ChunkSettings, units: Sequence[Unit] = (),
                 boxes: Sequence[Sequence[float]] = ()) -> list[Chunk]:
    """Clean ``source``, find its articles and chunk it: what indexing does to every loaded file,
    in one place so the in-process and the Ray path (``rag.indexing.distributed``) cannot drift apart.
    ``units`` (a document's rows, slides, chapters: ``Document.units``) are kept apart, each with its meta.
    ``boxes`` (OCR'd lines: ``Document.boxes``) go to the meta of the chunks holding them."""
    cleaned = clean(source)
    chunks = chunk_document(doc_id, cleaned, settings, analyse(cleaned, source, doc_id, units))
    if boxes:
        starts = [b[0] for b in boxes]  # in order: lines are laid out one after another
        for c in chunks:
            first = max(bisect.bisect_right(starts, c.start) - 1, 0)
            held = [list(b) for b in boxes[first:bisect.bisect_left(starts, c.end)] if b[1] > c.start]
            if held:
                c.meta["boxes"] = held  # [start, end, page, x0, y0, x1, y1] of each line
    return chunks


def chunk_document(
    doc_id: str, clean: CleanText, settings: ChunkSettings, structure: Structure | None = None
) -> list[Chunk]:
    """Chunks of one document; with its ``structure``, each carries its article, section, byline, date, page."""
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    if structure is not None:
        bounds = [a.start for a in structure.articles] + [len(clean.text)]
    else:
        bounds = [0, *clean.breaks, len(clean.text)]
    for group in _sentences(clean, settings.chunk_tokens, bounds):
        for s, e in _pack(group, settings):
            text = clean.text[s:e].strip()
            if len(_WORD.findall(text)) < MIN_WORD_CHARS:
                continue  # punctuation or a stray bracket: nothing to retrieve
            lead = len(clean.text[s:e]) - len(clean.text[s:e].lstrip())
            s += lead
            e = s + len(text)
            src_s, src_e = clean.source_span(s, e)
            cid = hashlib.sha1(f"{doc_id}\0{text}".encode()).hexdigest()[:16]
            if cid in seen:  # the same text twice in one document: keep ids unique and stable
                seen[cid] += 1
                cid = f"{cid}-{seen[cid]}"
            else:
                seen[cid] = 0
            meta: dict = {"offset_runs": offset_runs(clean, s, e)}
            if structure is not None:
                meta |= _structure_meta(structure, clean, s, e, src_s, src_e)
            chunks.append(Chunk(cid, doc_id, text, src_s, src_e, meta))
    return chunks
