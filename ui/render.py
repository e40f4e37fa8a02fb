"""HTML for the chat: answers, their numbered sources and warnings (pure functions, no Gradio).

Every piece of user-supplied text (questions, answers, document names and text, warnings,
error messages) goes through ``esc`` before it is wrapped in this module's own markup, so
nothing from a document or a user is ever rendered as HTML. Markup is emitted without blank
lines: a Markdown renderer then treats each message as one raw HTML block and does not
interpret ``*``, ``_`` or ``$$`` inside document text.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from rag.generators import NOT_FOUND_EN, NOT_FOUND_ZH

NOT_FOUND = "资料中没有找到相关信息 / Not found in the documents"
_EXTRA = str.maketrans({"$": "&#36;", "{": "&#123;", "}": "&#125;", "`": "&#96;", "\\": "&#92;"})
_MARKER = re.compile(r"\[(\d{1,3})\]")


def esc(text: Any) -> str:
    """HTML-escape ``text`` and neutralise template and math delimiters (``$``, ``{}``, backticks)."""
    return html.escape(str(text), quote=True).translate(_EXTRA)


def _lines(text: str) -> str:
    """Escaped text with its line breaks kept (as ``<br>``; never a blank source line)."""
    return "<br>".join(esc(line) for line in str(text).strip("\n").split("\n"))


def user_message(question: str) -> str:
    return f'<div class="rag-q">{_lines(question)}</div>'


def pending(note: str, partial: str = "") -> str:
    body = f'<div class="rag-text">{_lines(partial)}</div>' if partial else ""
    return f'<div class="rag-answer rag-pending">{body}<div class="rag-status">{esc(note)}</div></div>'


def error_message(message: str) -> str:
    return f'<div class="rag-answer"><div class="rag-error">错误 Error: {esc(message)}</div></div>'


def _with_refs(text: str) -> str:
    """Escaped answer text with its ``[n]`` markers shown as superscript references."""
    return _MARKER.sub(r'<sup class="rag-ref">[\1]</sup>', _lines(text))


def highlight(text: str, quotes: Iterable[str]) -> tuple[str, list[str]]:
    """``text`` escaped, with each quote found in it wrapped in ``<mark>``; also the quotes not found."""
    spans: list[tuple[int, int]] = []
    missing: list[str] = []
    for quote in quotes:
        q = (quote or "").strip()
        if not q:
            continue
        i = text.find(q)
        if i < 0:
            missing.append(q)
        else:
            spans.append((i, i + len(q)))
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out.append(_lines_inline(text[pos:start]))
        out.append(f'<mark class="rag-quote">{_lines_inline(text[start:end])}</mark>')
        pos = end
    out.append(_lines_inline(text[pos:]))
    return "".join(out), missing


def _lines_inline(text: str) -> str:
    return "<br>".join(esc(line) for line in text.split("\n"))


def _source(n: int, passage: Any, quotes: Sequence[str]) -> str:
    chunk = passage.chunk
    body, missing = highlight(chunk.text, quotes)
    extra = "".join(f'<div class="rag-cited">“{esc(q)}”</div>' for q in missing)
    loc = getattr(chunk, "location", None) or {}
    where = "".join(
        f'<span class="rag-loc">{esc(text)}</span>'
        for text in (f"《{loc['article']}》" if loc.get("article") else "",
                     f"p.{loc['page']}" if loc.get("page") else "") if text
    )
    return (
        f'<div class="rag-source" data-n="{n}">'
        f'<div class="rag-source-head"><span class="rag-n">[{n}]</span> '
        f'<span class="rag-doc">{esc(chunk.doc_id)}</span>{where} '
        f'<span class="rag-score">相关度 score {float(passage.score):.4f}</span> '
        f'<span class="rag-span">字符 chars {int(chunk.start)}–{int(chunk.end)}</span></div>'
        f'{extra}<div class="rag-passage">{body}</div></div>'
    )


def answer_html(answer: Any) -> str:
    """The final answer: text with ``[n]`` references, the not-found state, warnings, numbered sources."""
    parts = ['<div class="rag-answer">']
    if answer.abstained:
        parts.append(f'<div class="rag-notfound">{esc(NOT_FOUND)}</div>')
        if answer.answer.strip() not in ("", NOT_FOUND_ZH, NOT_FOUND_EN):
            parts.append(f'<div class="rag-text rag-muted">{_with_refs(answer.answer)}</div>')
    else:
        parts.append(f'<div class="rag-text">{_with_refs(answer.answer)}</div>')
    for warning in answer.warnings:
        parts.append(f'<div class="rag-warning">注意 Warning: {esc(warning)}</div>')

    quotes: dict[int, list[str]] = {}
    for c in answer.citations:
        quotes.setdefault(int(c.n), []).append(c.quote)
    passages = list(answer.passages)
    cited = [n for n in sorted(quotes) if 1 <= n <= len(passages)]
    if cited:
        parts.append('<div class="rag-sources"><div class="rag-sources-title">来源 Sources</div>')
        parts.extend(_source(n, passages[n - 1], quotes[n]) for n in cited)
        parts.append("</div>")
    others = [n for n in range(1, len(passages) + 1) if n not in quotes]
    if others:
        title = "最接近的段落 Closest passages" if not cited else "其他检索到的段落 Other retrieved passages"
        parts.append(f'<details class="rag-more"><summary>{title} ({len(others)})</summary>')
        parts.extend(_source(n, passages[n - 1], ()) for n in others)
        parts.append("</details>")
    timings = answer.timings or {}
    parts.append(
        f'<div class="rag-meta">{esc(answer.generator)} · {float(timings.get("total_ms", 0.0)) / 1000:.1f} s</div></div>'
    )
    return "".join(parts)


def status_html(lines: Sequence[tuple[str, str]]) -> str:
    """A status box: (kind, text) rows, kind one of ok / warn / error; text is escaped."""
    rows = "".join(f'<div class="rag-status-{esc(kind)}">{esc(text)}</div>' for kind, text in lines)
    return f'<div class="rag-status-box">{rows}</div>'


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def when(stamp: str) -> str:
    """``2026-11-27T15:45:52+0000`` → ``2026-11-27 15:45``."""
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z"))
    except (TypeError, ValueError):
        return str(stamp or "")


def document_rows(documents: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """Rows for the documents table (plain text cells: the table does not render HTML)."""
    return [[d["doc_id"], human_size(int(d.get("size", 0))), int(d.get("chunks", 0)), when(d.get("indexed_at", ""))]
            for d in documents]
