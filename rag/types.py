"""Frozen data types that flow through the pipeline (see DESIGN.md, "The way data flows")."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Chunk meta keys that say which unit of a document a chunk is from (see ``Unit``).
UNIT_KEYS = ("sheet", "table", "row", "slide", "chapter", "part")


@dataclass(frozen=True)
class Unit:
    """A part of a document cited on its own: a table row, a slide, a chapter, a part of a mail.

    ``start``/``end`` are offsets in ``Document.text``. The chunker never puts two units in one chunk
    (a long unit is chunked as any text); ``title`` becomes its chunks' article, ``meta`` (keys of
    ``UNIT_KEYS``) is added to their meta, so a citation names the sheet and row, the slide, ...
    """

    start: int
    end: int
    title: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Document:
    """A loaded source file: ``text`` is the decoded file content, untouched (for a packed format, the
    text extracted from it); ``units`` are its parts cited on their own, in order, when it has them."""

    doc_id: str  # path relative to the indexed root, with "/" separators
    path: str  # absolute path of the source file
    text: str
    sha256: str  # of the raw bytes
    size: int  # bytes
    encoding: str
    units: tuple[Unit, ...] = ()
    # OCR'd lines (scans, images: rag.ingest.scans): (start, end) offsets in ``text``, page, and the box
    # x0, y0, x1, y1 as fractions of the page's width and height
    boxes: tuple[tuple[int, int, int, float, float, float, float], ...] = ()


@dataclass(frozen=True)
class Chunk:
    """A retrievable piece of a document; ``start``/``end`` are character offsets in the source text."""

    chunk_id: str
    doc_id: str
    text: str
    start: int
    end: int
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def location(self) -> dict[str, Any]:
        """Where the chunk sits: article, section, byline, date, page, its unit's sheet, row, slide ... (whatever is known)."""
        keys = ("article", "section", "byline", "date", "date_text", "page", "page_end", *UNIT_KEYS)
        return {k: self.meta[k] for k in keys if self.meta.get(k) is not None}

    def source_span(self, rel_start: int, rel_end: int) -> tuple[int, int]:
        """Source offsets of ``text[rel_start:rel_end]`` (see ``chunking.offset_runs``)."""
        if rel_end <= rel_start:
            pos = self._source_pos(rel_start)
            return pos, pos
        return self._source_pos(rel_start), self._source_pos(rel_end - 1) + 1

    def _source_pos(self, rel: int) -> int:
        runs = self.meta.get("offset_runs")
        if not runs:
            return self.start + rel
        pos = runs[0][1]
        for run_rel, run_src in runs:
            if run_rel > rel:
                break
            pos = run_src + (rel - run_rel)
        return int(pos)

    def source_runs(self) -> list[tuple[int, int, int]]:
        """``(a, b, src)``: ``text[a:b]`` sits at source offsets ``src`` onwards; applied in order (a later
        run overwriting an earlier one) they place every character where ``source_span`` does, a run at
        a time instead of a lookup per character (the viewer rebuilds a whole document this way)."""
        n, runs = len(self.text), self.meta.get("offset_runs")
        if not runs:
            return [(0, n, self.start)]
        rels = [int(r) for r, _ in runs]
        if any(b <= a for a, b in zip(rels, rels[1:])):  # not as chunking writes them: per character, exactly
            return [(i, i + 1, self._source_pos(i)) for i in range(n)]
        # what precedes run 0 maps onto its start: the last such character is the one left standing there
        out = [(rels[0] - 1, rels[0], int(runs[0][1]))] if 0 < rels[0] <= n else []
        for i, (rel, src) in enumerate(runs):
            end = min(rels[i + 1] if i + 1 < len(rels) else n, n)
            if end > rel:
                out.append((int(rel), end, int(src)))
        return out

    def place_at(self, pos: int) -> tuple[str | None, int | None]:
        """The section and page at source offset ``pos``: the chunk's own, moved on by the breaks before ``pos``."""
        section, page = self.meta.get("section"), self.meta.get("page")
        for offset, name in self.meta.get("section_breaks", []):
            if offset <= pos:
                section = name
        for offset, later in self.meta.get("page_breaks", []):
            if offset <= pos:
                page = later
        return section, page

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Chunk:
        return cls(
            chunk_id=row["chunk_id"], doc_id=row["doc_id"], text=row["text"],
            start=int(row["start"]), end=int(row["end"]), meta=dict(row.get("meta") or {}),
        )


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its fused score and the per-retriever evidence behind it."""

    chunk: Chunk
    score: float
    rank: int  # 1-based
    dense_score: float | None = None
    lexical_score: float | None = None
    kb: str | None = None  # the knowledge base it came from, when a question was asked of a named one or several
    explain: dict[str, Any] | None = None  # how the score came about (rag.retrieval.retrieve.Trace.explain), on request

    def to_dict(self, n: int) -> dict[str, Any]:
        c = self.chunk
        d = {
            "n": n, "doc_id": c.doc_id, "chunk_id": c.chunk_id, "text": c.text,
            "score": round(float(self.score), 6), "start": c.start, "end": c.end,
        }
        if c.location:
            d["meta"] = c.location
        if self.kb is not None:
            d["kb"] = self.kb
        if self.explain is not None:
            d["explain"] = _rounded(self.explain)
        return d


def _rounded(value: Any) -> Any:
    """``value`` with its floats (also nested) rounded like ``score``: JSON for people and clients, not 17 digits."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 6)
    return value


@dataclass(frozen=True)
class Citation:
    """Answer marker ``[n]`` → passage ``n``; ``quote`` is the cited text, ``start``/``end`` its source offsets."""

    n: int
    doc_id: str
    chunk_id: str
    quote: str
    start: int
    end: int
    support: float | None = None  # share of the cited sentence's key terms found in the passage
    article: str | None = None  # title of the article the quote is from, when the document has articles
    section: str | None = None
    page: int | None = None
    kb: str | None = None  # the knowledge base of the cited passage (see Passage.kb)
    unit: dict[str, Any] | None = None  # the cited unit's sheet, table, row, slide ... (``UNIT_KEYS``), when it has one
    boxes: list[list[float]] | None = None  # OCR'd text: [page, x0, y0, x1, y1] of each line quoted (page fractions)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("n", "doc_id", "chunk_id", "quote", "start", "end")}

    @classmethod
    def of(cls, n: int, chunk: Chunk, rel_start: int, rel_end: int, support: float | None = None) -> Citation:
        """The citation of ``chunk.text[rel_start:rel_end]``, with source offsets and location."""
        start, end = chunk.source_span(rel_start, rel_end)
        section, page = chunk.place_at(start)
        unit = {k: chunk.meta[k] for k in UNIT_KEYS if chunk.meta.get(k) is not None}
        boxes = [list(b[2:]) for b in chunk.meta.get("boxes", []) if b[0] < max(end, start + 1) and b[1] > start]
        return cls(n, chunk.doc_id, chunk.chunk_id, chunk.text[rel_start:rel_end], start, end, support,
                   chunk.meta.get("article"), section, page, unit=unit or None, boxes=boxes or None)


_UNIT_LABELS = {"sheet": ("工作表", "sheet"), "table": ("表", "table"), "row": ("第{}行", "row {}"),
                "slide": ("第{}张幻灯片", "slide {}"), "chapter": ("第{}章", "chapter {}"), "part": ("", "")}


def unit_label(unit: dict[str, Any] | None) -> str:
    """A unit's place for people, in both languages: ``工作表 营收 · 第5行 (sheet 营收, row 5)``."""
    zh, en = [], []
    for key in UNIT_KEYS:
        value = (unit or {}).get(key)
        if value is None:
            continue
        z, e = _UNIT_LABELS[key]
        if "{}" in z:
            zh.append(z.format(value))
            en.append(e.format(value))
        else:
            zh.append(f"{z} {value}".strip())
            en.append(f"{e} {value}".strip())
    return f"{' · '.join(zh)} ({', '.join(en)})" if zh else ""


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: list[Citation]
    passages: list[Passage]
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    generator: str = "extractive"
    query: str | None = None  # the standalone question used for retrieval, when rewritten from a follow-up
    support: float | None = None  # how well the citations back the answer (0-1), when it was checked
    confidence: float | None = None  # p(the answer is right), from a calibrated generator (the extractive one)
    answer_span: dict[str, Any] | None = None  # the exact answer: {"text", "start", "end", "n"}, source offsets

    def to_dict(self) -> dict[str, Any]:
        """The JSON printed by ``rag ask --json`` (and returned by the HTTP API)."""
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict(i) for i, p in enumerate(self.passages, 1)],
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            "warnings": list(self.warnings),
            "generator": self.generator,
            "query": self.query or self.question,
            "support": self.support,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "answer_span": dict(self.answer_span) if self.answer_span else None,
        }


@dataclass(frozen=True)
class AnswerEvent:
    """One step of a streamed answer: ``sources`` first, then ``token``s, then the final ``answer``."""

    type: str  # "sources" | "token" | "answer"
    passages: list[Passage] | None = None
    text: str | None = None
    answer: Answer | None = None
    query: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.type == "sources":
            return {"type": "sources", "query": self.query,
                    "passages": [p.to_dict(i) for i, p in enumerate(self.passages or [], 1)]}
        if self.type == "token":
            return {"type": "token", "text": self.text}
        return {"type": "answer", "answer": self.answer.to_dict() if self.answer else None}


@dataclass(frozen=True)
class IndexReport:
    """What one ``add``/``index`` run changed."""

    added: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    skipped: dict[str, str]  # path -> reason
    chunks_embedded: int
    chunks_reused: int
    total_chunks: int
    seconds: float
    renamed: dict[str, str] = field(default_factory=dict)  # upload name -> the id it was stored under

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
