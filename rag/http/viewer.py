"""See the source: a cited passage shown in its document, the stored upload, a document's chunks.

Routes (doc ids hold "/", so everything is a query parameter, never a path segment):

- ``GET /view?doc=ID[&kb=NAME][&start=S&end=E | &chunk=CHUNK_ID][&page=N]``: an HTML page with the
  document's text, the cited source range in ``<mark id="cited">`` scrolled into view; a PDF shows
  only the cited (or the ``page``-th) page, with links to its neighbours.
- ``GET /api/file?doc=ID[&kb=NAME]``: the stored file of an upload, as an attachment.
- ``GET /api/chunks?doc=ID[&kb=NAME]``: the document's chunks in order (what was indexed).
- ``GET /api/page?doc=ID&page=N[&kb=NAME][&start=S&end=E]``: page N of a PDF document as a PNG picture,
  the cited words outlined on it (``rag.http.page_image``); ``/view`` shows it beside a PDF's text.

Like the API's other reads (ask, search, the documents list) each needs the knowledge base readable by the
request's key (``rag.access``; with ``RAG_API_KEY`` alone reading is open, with a keys file every base is
behind a key); a base the key may not read is absent. Errors are raised as ``RagError``s; ``rag.http.app`` maps them to
``{"error": message}`` with its status codes (400 bad input, 404 unknown document).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response

from rag.access import BasesView
from rag.errors import ConfigError, DocumentNotFoundError
from rag.filters import check_text
from rag.http.auth import Bases
from rag.http.page_image import page_png
from rag.ingest.scans import IMAGE_KINDS, IMAGE_SUFFIXES
from rag.pipeline import RAG
from rag.storage.sources import read_text
from rag.types import UNIT_KEYS, Chunk, unit_label
from rag.uploads import check_doc_id, documents_dir

# Documents whose text is pages joined by form feeds, and whose pages can be shown as pictures:
# PDFs, and images read by OCR (rag.ingest.scans: a TIFF's frames are its pages)
PAGED_ENCODINGS = frozenset({"pdf"} | {kind.lower() for kind in IMAGE_KINDS.values()})
WINDOW_CHARS = 20_000  # at most this much text is rendered; more is cut to a window around the citation
CONTEXT_CHARS = 8_000  # shown before and after a citation when the text is cut to a window
FIRST_WORDS = 60  # characters of a chunk shown in the chunk list
MAX_KB_CHARS = 128
MEDIA_TYPES = {
    ".txt": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown", ".html": "text/html",
    ".htm": "text/html", ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xls": "application/vnd.ms-excel",
    ".csv": "text/csv", ".tsv": "text/tab-separated-values",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text", ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".epub": "application/epub+zip", ".eml": "message/rfc822", ".msg": "application/vnd.ms-outlook",
    ".rtf": "application/rtf",
}
_SCRIPT = "const m = document.getElementById('cited'); if (m) { m.scrollIntoView({block: 'center'}); }"
_STYLE = """
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif;
  margin: 0; color: #111827; background: #f9fafb; line-height: 1.8; }
header { position: sticky; top: 0; z-index: 1; background: #fff; border-bottom: 1px solid #e5e7eb;
  padding: 10px max(24px, calc((100% - 860px) / 2)); }  /* lined up with the text below */
header h1 { font-size: 1.25em; margin: 4px 0; }
.doc code { font-size: .9em; background: #f3f4f6; padding: 1px 4px; border-radius: 3px; }
.where, .note, nav { color: #4b5563; font-size: .9em; }
nav a { margin-right: 14px; }
.note { color: #92400e; }
main { max-width: 860px; margin: 16px auto; padding: 0 24px 40vh; }
.text { white-space: pre-wrap; word-break: break-word; font-size: 1.02em; }
mark#cited { background: #fde68a; color: #111827; padding: 1px 2px; border-radius: 2px;
  outline: 2px solid #f59e0b; scroll-margin: 30vh 0; }
main.paged { max-width: 1500px; display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 24px; }
figure.page { margin: 0; position: sticky; top: 120px; align-self: start; }
figure.page img { width: 100%; border: 1px solid #d1d5db; background: #fff; box-shadow: 0 1px 4px #0002; }
figure.page figcaption { color: #4b5563; font-size: .85em; }
@media (max-width: 900px) { main.paged { display: block; } figure.page { position: static; } }
"""  # the scroll margin keeps the fragment's jump (#cited) from hiding the mark under the sticky header


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


# The page's one script and one style are allowed by their hashes: text from a document can run nothing;
# pictures only from this server (the page picture).
VIEW_CSP = (f"default-src 'none'; style-src {_csp_hash(_STYLE)}; script-src {_csp_hash(_SCRIPT)}; img-src 'self'; "
            "frame-ancestors 'self'; base-uri 'none'; form-action 'none'")
VIEW_HEADERS = {"Content-Security-Policy": VIEW_CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
FILE_HEADERS = {"Content-Security-Policy": "default-src 'none'; sandbox", "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store"}


def add_viewer_routes(app: FastAPI) -> None:
    """``GET /view``, ``GET /api/page``, ``GET /api/file`` and ``GET /api/chunks`` over the knowledge base ``kb``
    (None: the default), as the request's key sees the bases (``rag.http.auth.Bases``: an unknown or
    unreadable name raises a ``RagError``)."""

    @app.get("/view", tags=["documents"], response_class=HTMLResponse)
    def view(doc: str, bases: Bases, kb: str | None = None, start: int | None = None, end: int | None = None,
             chunk: str | None = None, page: int | None = None) -> HTMLResponse:
        """The document's text with the cited range ``start``–``end`` (source offsets, as in a
        citation) or chunk ``chunk`` highlighted; for a PDF the cited page, or page ``page``."""
        rag, doc_id = _rag(bases, kb), check_doc_id(doc)
        source = load_source(rag, doc_id)
        cited = cited_span(source, start, end, chunk)
        body = render_view(source, view_range(source, cited, page), kb, stored_upload(rag, doc_id) is not None,
                           pictured=pdf_file(rag, doc_id) is not None)
        return HTMLResponse(body, headers=VIEW_HEADERS)

    @app.get("/api/page", tags=["documents"], response_class=Response,
             responses={200: {"content": {"image/png": {}}, "description": "the page as a PNG picture"},
                        404: {"description": "unknown document, no PDF file, or the file changed since indexing"}})
    def page_picture(doc: str, page: int, bases: Bases, kb: str | None = None, start: int | None = None,
                     end: int | None = None) -> Response:
        """Page ``page`` (1-based) of a PDF document as a picture, with the cited range ``start``–``end``
        (source offsets, as in a citation) outlined where it is on that page."""
        rag, doc_id = _rag(bases, kb), check_doc_id(doc)
        path = page_file(rag, doc_id)
        source = load_source(rag, doc_id)
        cited = cited_span(source, start, end, None)
        png = page_png(path, str(document_entry(rag, doc_id).get("sha256", "")), page, cited_on_page(source, cited, page),
                       ocr_boxes_on_page(source, cited, page))
        return Response(png, media_type="image/png", headers=FILE_HEADERS)

    @app.get("/api/file", tags=["documents"], response_class=FileResponse,
             responses={404: {"description": "unknown document, or not an upload"}})
    def stored_file(doc: str, bases: Bases, kb: str | None = None) -> FileResponse:
        """The file an upload was stored as (404 for a document indexed from a folder)."""
        rag, doc_id = _rag(bases, kb), check_doc_id(doc)
        path = stored_upload(rag, doc_id)
        if path is None:
            raise DocumentNotFoundError("document.not_uploaded", doc_id=doc_id)
        media = media_type(path, document_entry(rag, doc_id).get("encoding"))
        return FileResponse(path, media_type=media, headers={**FILE_HEADERS,
                                                             "Content-Disposition": content_disposition(path.name)})

    @app.get("/api/chunks", tags=["documents"])
    def chunks(doc: str, bases: Bases, kb: str | None = None) -> list[dict[str, Any]]:
        """The document's chunks in source order: where each sits and how it begins."""
        rag, doc_id = _rag(bases, kb), check_doc_id(doc)
        document_entry(rag, doc_id)
        return [chunk_summary(c) for c in document_chunks(rag, doc_id)]


def _rag(bases: BasesView, kb: str | None) -> RAG:
    if kb is not None:
        check_text(kb, "knowledge base name", MAX_KB_CHARS)
        if any(unicodedata.category(ch) == "Cc" for ch in kb):
            raise ConfigError("kb.name_control", name=kb[:40])
    return bases.get(kb)


# ---- what was indexed ----------------------------------------------------------------------------
def document_entry(rag: RAG, doc_id: str) -> dict[str, Any]:
    """The manifest's record of ``doc_id`` (path, sha256, encoding, chars…); ``DocumentNotFoundError`` if none."""
    entry = next((d for d in rag.documents() if d["doc_id"] == doc_id), None)
    if entry is None:
        raise DocumentNotFoundError("document.unknown", doc_id=doc_id[:200])
    return entry


def document_chunks(rag: RAG, doc_id: str) -> list[Chunk]:
    """The stored chunks of ``doc_id`` in source order."""
    return rag.chunks_of(doc_id)


def chunk_summary(c: Chunk) -> dict[str, Any]:
    """One row of ``/api/chunks``: id, source span, article, section, page, size and first words."""
    return {"chunk_id": c.chunk_id, "start": c.start, "end": c.end, "article": c.meta.get("article"),
            "section": c.meta.get("section"), "page": c.meta.get("page"), "n_chars": len(c.text),
            "first": first_words(c.text)}


def first_words(text: str, limit: int = FIRST_WORDS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def stored_upload(rag: RAG, doc_id: str) -> Path | None:
    """The stored file of an upload: only a regular file directly inside ``documents_dir``, reached
    without a symlink, and the one the manifest names; None for a folder-indexed document."""
    recorded = Path(document_entry(rag, doc_id).get("path", ""))
    folder = documents_dir(rag).resolve()
    if recorded.parent.resolve() != folder:  # the test `_public` makes for "uploaded"
        return None
    candidate = folder / recorded.name
    if candidate.is_symlink() or candidate.resolve().parent != folder or not candidate.is_file():
        return None
    return candidate


def pdf_file(rag: RAG, doc_id: str) -> Path | None:
    """The PDF or image a document was indexed from, when it is still a regular file where the manifest
    says (the stored upload, or the file in the indexed folder); None for other documents. The path
    comes from the index, never from the request."""
    entry = document_entry(rag, doc_id)
    if entry.get("encoding") not in PAGED_ENCODINGS:
        return None
    path = stored_upload(rag, doc_id) or Path(str(entry.get("path", "")))
    allowed = IMAGE_SUFFIXES if entry.get("encoding") != "pdf" else {".pdf"}
    return path if path.suffix.lower() in allowed and path.is_file() else None


def page_file(rag: RAG, doc_id: str) -> Path:
    """``pdf_file``, or ``DocumentNotFoundError`` (404) for a document with no PDF to show a page of."""
    path = pdf_file(rag, doc_id)
    if path is None:
        raise DocumentNotFoundError("view.no_page_file", doc_id=doc_id[:200])
    return path


def ocr_boxes_on_page(source: Source, cited: tuple[int, int] | None, page: int) -> list[tuple[float, float, float, float]]:
    """The boxes (page fractions) of the OCR'd lines the cited range covers on page ``page``: a scan's
    chunks keep ``[start, end, page, x0, y0, x1, y1]`` for each of their lines."""
    if cited is None:
        return []
    seen: dict[tuple[int, int], tuple[float, float, float, float]] = {}
    for chunk in source.chunks:
        for start, end, number, x0, y0, x1, y1 in chunk.meta.get("boxes", []):
            if number == page and start < max(cited[1], cited[0] + 1) and end > cited[0]:
                seen[(int(start), int(end))] = (float(x0), float(y0), float(x1), float(y1))
    return [seen[k] for k in sorted(seen)]


def cited_on_page(source: Source, cited: tuple[int, int] | None, page: int) -> str:
    """The part of the cited text on page ``page`` (a PDF's pages are joined by form feeds)."""
    if cited is None:
        return ""
    starts = [0] + [m.end() for m in re.finditer("\f", source.text)]
    if not 1 <= page <= len(starts):
        return ""
    lo, hi = starts[page - 1], (starts[page] - 1 if page < len(starts) else len(source.text))
    return source.text[max(cited[0], lo):min(cited[1], hi)]


def media_type(path: Path, encoding: str | None) -> str:
    """The file's media type; for text, with the charset it was decoded with at indexing (uploads
    are often GB18030: a default utf-8 label would garble them for whoever opens the download)."""
    media = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    charset = (encoding or "").split(" ")[0]  # "gb18030 (damaged bytes replaced)" → "gb18030"
    if media.startswith("text/") and re.fullmatch(r"[A-Za-z0-9._-]{1,40}", charset):
        media += f"; charset={charset}"
    return media


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback name and the real one RFC 5987-encoded (Chinese names)."""
    fallback = "".join(ch if 32 < ord(ch) < 127 and ch not in '"\\;%' else "_" for ch in name) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


# ---- the text a citation points into -------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    doc_id: str
    text: str  # the source text citation offsets point into (a PDF's pages joined by form feeds)
    chunks: list[Chunk]
    pdf: bool
    note: str | None  # why the text may differ from what was indexed, when it does


def load_source(rag: RAG, doc_id: str) -> Source:
    """The document's source text: the text indexing kept of it (``rag.storage.sources``), else put
    back together from the stored chunks. The source file is never read: parsing it again cost
    seconds a view (a 10,000-page PDF: 6.4 s of CPU, for anyone, no key needed), and it may be gone
    or changed while the index still cites what it said.

    Why the kept text first: chunk text is cleaned text, and on the seed document the chunks map onto
    7311 of its 7499 source characters (measured): the 188 they miss are 138 line breaks, five
    《上接1版》 page markers and a paragraph the cleaner dropped as a repeat. Rebuilt from chunks the
    text loses its paragraphs; the kept text is the exact text the offsets were computed on.
    """
    entry = document_entry(rag, doc_id)
    chunks = document_chunks(rag, doc_id)
    pdf = entry.get("encoding") in PAGED_ENCODINGS
    try:
        chars = entry.get("chars")
        text = _kept_text(str(rag.index_dir), doc_id, str(entry.get("sha256", "")), chars if isinstance(chars, int) else -1)
        return Source(doc_id, text, chunks, pdf, None)
    except LookupError:
        text = text_from_chunks(chunks, int(entry.get("chars") or 0), pdf)
        note = ("索引里没有保存这份文档的原文（旧版索引，或在 Ray 集群上读取），这里显示的是由分块拼回的文本"
                "（缺少换行、页码标记等被清理掉的内容）；重新运行 rag index（上传的文件：重启服务）即可保存。"
                " The index kept no text of this document (indexed before texts were kept, or read on a Ray"
                " cluster): this is the text rebuilt from its chunks, without the line breaks and page markers that"
                " cleaning removed; `rag index` its folder again (uploads: restart the server) to keep it.")
        return Source(doc_id, text, chunks, pdf, note)


@functools.lru_cache(maxsize=4)  # a reader pages through one PDF: decompress it once, not per page
def _kept_text(index_dir: str, doc_id: str, sha256: str, chars: int) -> str:
    """The kept text; ``LookupError`` (which the cache does not keep) when there is none yet.
    The key names one content (the manifest's sha256 and length), so a cached text is never stale."""
    text = read_text(Path(index_dir), doc_id, sha256, chars)
    if text is None:
        raise LookupError(doc_id)
    return text


def text_from_chunks(chunks: list[Chunk], n_chars: int, pdf: bool) -> str:
    """Source text rebuilt from chunks: each character at its source offset; what no chunk holds
    becomes a line break (mostly what it was), and a PDF's known page starts get their form feed."""
    size = max([n_chars, *(c.end for c in chunks)])
    # code points in an array, a slice per run (not a lookup per character: 1.5 s -> 0.1 s at 750k characters)
    points = np.full(size, ord("\n"), np.uint32)
    for c in chunks:
        for a, b, src in c.source_runs():
            lo, hi = max(src, 0), min(src + b - a, size)  # clipped to the text
            if hi > lo:
                points[lo:hi] = _code_points(c.text[a + lo - src:a + hi - src])
    if pdf:
        for pos in _page_starts_of(chunks):
            if 0 < pos <= size and points[pos - 1] == ord("\n"):
                points[pos - 1] = ord("\f")
    return points.tobytes().decode("utf-32-le", "surrogatepass")


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)


def _page_starts_of(chunks: list[Chunk]) -> list[int]:
    starts = {int(offset) for c in chunks for offset, _ in c.meta.get("page_breaks", [])}
    for before, after in zip(chunks, chunks[1:]):
        if (after.meta.get("page") or 0) > (before.meta.get("page_end") or before.meta.get("page") or 0):
            starts.add(after.start)
    return sorted(starts)


def cited_span(source: Source, start: int | None, end: int | None, chunk: str | None) -> tuple[int, int] | None:
    """The range to mark: ``start``–``end`` (both or neither), else chunk ``chunk``'s span, else none."""
    if (start is None) != (end is None):
        raise ConfigError("give both start and end (the cited source offsets), or neither")
    if start is not None and end is not None:
        if start < 0 or end < 0:
            raise ConfigError(f"offsets cannot be negative: start={start}, end={end}")
        if start > end:
            raise ConfigError(f"start ({start}) is after end ({end})")
        if end > len(source.text):
            raise ConfigError(f"end ({end}) is beyond the document's {len(source.text)} characters")
        return start, end
    if chunk is not None:
        check_text(chunk, "chunk id", 100)
        found = next((c for c in source.chunks if c.chunk_id == chunk), None)
        if found is None:
            raise DocumentNotFoundError("document.no_chunk", doc_id=source.doc_id[:200], chunk=chunk[:40])
        return found.start, min(found.end, len(source.text))
    return None


# ---- what is shown -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ViewRange:
    lo: int  # the rendered slice of the source text
    hi: int
    cited: tuple[int, int] | None  # the marked range, clipped to [lo, hi]
    page: int | None  # 1-based, for a PDF
    pages: int | None
    note: str | None  # set when only part of the text (or of the citation) is shown


def view_range(source: Source, cited: tuple[int, int] | None, page: int | None) -> ViewRange:
    """The slice to render: a PDF's cited (or chosen) page, then at most ``WINDOW_CHARS`` of it."""
    text, lo, hi, number, count = source.text, 0, len(source.text), None, None
    if source.pdf:
        starts = [0] + [m.end() for m in re.finditer("\f", text)]
        count = len(starts)
        if cited is not None:
            number = text.count("\f", 0, cited[0]) + 1
        else:
            number = 1 if page is None else page
            if not 1 <= number <= count:
                raise ConfigError(f"page {number} is not in the document (it has {count} pages)")
        lo = starts[number - 1]
        hi = starts[number] - 1 if number < count else len(text)
    lo, hi, note = _window(text, lo, hi, cited)
    clipped = None if cited is None else (max(cited[0], lo), min(max(cited[1], cited[0]), hi))
    if cited is not None and clipped != cited:
        note = _join(note, "引文超出显示范围，只标出了其中一部分。 The citation runs past what is shown: only part of it is marked.")
    return ViewRange(lo, hi, clipped, number, count, note)


def _window(text: str, lo: int, hi: int, cited: tuple[int, int] | None) -> tuple[int, int, str | None]:
    """``[lo, hi)`` cut to ``WINDOW_CHARS`` around the citation, at line breaks where there are some."""
    if hi - lo <= WINDOW_CHARS:
        return lo, hi, None
    a = lo if cited is None else _line_start(text, max(lo, cited[0] - CONTEXT_CHARS), lo)
    b = min(hi, a + WINDOW_CHARS)
    note = (f"文本较长，只显示第 {a}–{b} 个字符（全部为 {lo}–{hi}）。"
            f" The text is long: showing characters {a}–{b} of {lo}–{hi}.")
    return a, b, note


def _line_start(text: str, pos: int, lo: int) -> int:
    cut = text.rfind("\n", max(lo, pos - 200), pos)
    return cut + 1 if cut >= 0 else pos


def _join(a: str | None, b: str) -> str:
    return b if a is None else f"{a} {b}"


def place_of(chunks: list[Chunk], pos: int) -> dict[str, Any]:
    """Article, section, page and unit (sheet and row, slide ...: ``UNIT_KEYS``) at source offset ``pos``
    (from the chunk holding it, as ``Citation.of`` does)."""
    holding = [c for c in chunks if c.start <= pos < c.end] or [c for c in chunks if c.start >= pos][:1]
    if not holding:
        return {}
    section, page = holding[0].place_at(pos)
    unit = {k: holding[0].meta[k] for k in UNIT_KEYS if holding[0].meta.get(k) is not None}
    return {"article": holding[0].meta.get("article"), "section": section, "page": page, "unit": unit or None}


def render_view(source: Source, shown: ViewRange, kb: str | None, uploaded: bool, pictured: bool = False) -> str:
    """The viewer page; every piece of document text is escaped. ``pictured``: a PDF whose file can be
    shown, so the page's picture (``/api/page``) stands beside its text."""
    esc = functools.partial(html.escape, quote=True)
    place = place_of(source.chunks, shown.cited[0] if shown.cited else shown.lo)
    title = place.get("article") or source.doc_id
    where = [esc(unit_label(place.get("unit"))), f"小节 Section: {esc(place['section'])}" if place.get("section") else ""]
    if shown.page is not None:
        where.append(f"页 Page: {shown.page} / {shown.pages}")
    if shown.cited is not None:
        where.append(f"引文 Cited: 字符 chars {shown.cited[0]}–{shown.cited[1]}")
    links = _nav_links(source.doc_id, kb, shown, uploaded)
    notes = [n for n in (source.note, shown.note) if n]
    picture = _picture(source.doc_id, kb, shown) if pictured and shown.page is not None else ""
    page_class = ' class="paged"' if picture else ""
    return (
        '<!doctype html><html lang="zh"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · 原文 Source</title><style>{_STYLE}</style></head><body><header>"
        f'<div class="doc">文档 Document: <code>{esc(source.doc_id)}</code></div>'
        f'<h1>{esc(title)}</h1><div class="where">{" · ".join(w for w in where if w)}</div>'
        f"{links}{''.join(f'<p class=note>{esc(n)}</p>' for n in notes)}</header>"
        f'<main{page_class}>{picture}<div class="text">{_marked(source.text, shown, esc)}</div></main>'
        f"<script>{_SCRIPT}</script></body></html>"
    )


def _picture(doc_id: str, kb: str | None, shown: ViewRange) -> str:
    """The page's picture, the cited words outlined on it."""
    query: dict[str, Any] = {"doc": doc_id, **({"kb": kb} if kb is not None else {}), "page": shown.page}
    if shown.cited is not None:
        query |= {"start": shown.cited[0], "end": shown.cited[1]}
    src = html.escape("/api/page?" + urlencode(query), quote=True)
    return (f'<figure class="page"><img src="{src}" alt="第 {shown.page} 页 Page {shown.page}">'
            f"<figcaption>第 {shown.page} 页，引文已框出 · Page {shown.page}, the citation outlined</figcaption></figure>")


def _marked(text: str, shown: ViewRange, esc: Callable[[str], str]) -> str:
    if shown.cited is None:
        return esc(text[shown.lo:shown.hi])
    a, b = shown.cited
    return (f"{esc(text[shown.lo:a])}<mark id=\"cited\">{esc(text[a:b])}</mark>{esc(text[b:shown.hi])}")


def view_url(doc_id: str, kb: str | None = None, **params: int | str) -> str:
    """``/view?doc=…`` with ``kb`` (when given) and ``params``, URL-encoded."""
    query: dict[str, Any] = {"doc": doc_id, **({"kb": kb} if kb is not None else {}), **params}
    return "/view?" + urlencode(query)


def _nav_links(doc_id: str, kb: str | None, shown: ViewRange, uploaded: bool) -> str:
    links = []
    if shown.page is not None and shown.page > 1:
        links.append(f'<a href="{html.escape(view_url(doc_id, kb, page=shown.page - 1))}">← 上一页 Previous page</a>')
    if shown.page is not None and shown.pages is not None and shown.page < shown.pages:
        links.append(f'<a href="{html.escape(view_url(doc_id, kb, page=shown.page + 1))}">下一页 Next page →</a>')
    if uploaded:
        query = urlencode({"doc": doc_id, **({"kb": kb} if kb is not None else {})})
        links.append(f'<a class="download" href="/api/file?{html.escape(query)}">下载原文件 Download the stored file</a>')
    return f"<nav>{''.join(links)}</nav>" if links else ""


__all__ = ["add_viewer_routes", "chunk_summary", "cited_on_page", "content_disposition", "document_chunks", "document_entry",
           "first_words", "load_source", "page_file", "pdf_file", "stored_upload", "view_url"]
