"""HTML for the chat: answers, their numbered sources and warnings (pure functions, no Gradio).

Every piece of user-supplied text (questions, answers, document names and text, warnings,
error messages) goes through ``esc`` before it is wrapped in this module's own markup, so
nothing from a document or a user is ever rendered as HTML. Markup is emitted without blank
lines: a Markdown renderer then treats each message as one raw HTML block and does not
interpret ``*``, ``_`` or ``$$`` inside document text.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from typing import Any

from rag.errors import RagError
from rag.generation import NOT_FOUND_EN, NOT_FOUND_ZH
from rag.generation.extractive import UNCERTAIN_WARNING
from rag.http.plain import own_markers
from rag.http.viewer import view_url
from rag.text.display import display
from ui.messages import chinese, localized
from ui.texts import DEFAULT_LANG, t

# Line breaks too: a blank line would end the raw HTML block, and what follows would be Markdown
# (a document's "[x](javascript:…)" a live link); a character reference renders as the same space.
_EXTRA = str.maketrans({"$": "&#36;", "{": "&#123;", "}": "&#125;", "`": "&#96;", "\\": "&#92;",
                        "\n": "&#10;", "\r": "&#13;"})


def esc(text: Any) -> str:
    """HTML-escape ``text`` and neutralise template and math delimiters (``$``, ``{}``, backticks) and line breaks."""
    return html.escape(str(text), quote=True).translate(_EXTRA)


def _lines(text: str) -> str:
    """Escaped text with its line breaks kept (as ``<br>``; never a blank source line)."""
    return "<br>".join(esc(line) for line in str(text).strip("\n").split("\n"))


def user_message(question: str) -> str:
    return f'<div class="rag-q">{_lines(question)}</div>'


def pending(note: str, partial: str = "") -> str:
    body = f'<div class="rag-text">{_lines(partial)}</div>' if partial else ""
    return f'<div class="rag-answer rag-pending">{body}<div class="rag-status">{esc(note)}</div></div>'


def error_message(error: RagError | str, lang: str = DEFAULT_LANG) -> str:
    return (f'<div class="rag-answer"><div class="rag-error">{esc(t("answer.error", lang))} '
            f'{esc(localized(error, lang))}</div></div>')


_UNCERTAIN_PREFIX = UNCERTAIN_WARNING.split("(")[0]


def is_uncertain(answer: Any) -> bool:
    """The answerer marked the answer as uncertain (its confidence is below the reader's doubt threshold)."""
    return any(str(w).startswith(_UNCERTAIN_PREFIX) for w in getattr(answer, "warnings", None) or ())


# The library's warnings stay English: API clients, logs and tests match their wording. The chat shows
# every kind an answer can carry (rag.generation: citations, llm, dispatch, extractive) in Chinese first,
# from rag.catalogue, which recognises a warning by its English template (Answer.warnings are text);
# tests/generation/test_answers.py raises each one from the code that writes it. Technical details
# (an exception's text) stay in the English half only.
def warning_zh(warning: str) -> str | None:
    """The Chinese of a warning the library writes; None for one it does not know (shown as it is)."""
    return chinese(warning)


def warning_html(warning: str, lang: str = DEFAULT_LANG) -> str:
    """One warning of an answer in ``lang`` (escaped; in Chinese the library's English where the catalogue
    has no Chinese). The doubt warning (``is_uncertain``) opens with 再确认 / please check (``answer.doubt``),
    so a reader sees at once that the answer needs checking."""
    zh = warning_zh(warning) if lang == "zh" else None
    text = esc(warning if zh is None else zh)
    head = esc(t("answer.warning", lang))
    if str(warning).startswith(_UNCERTAIN_PREFIX):
        return f'<div class="rag-warning rag-doubt">{head} <strong>{esc(t("answer.doubt", lang))}</strong> — {text}</div>'
    return f'<div class="rag-warning">{head} {text}</div>'


def _with_refs(text: str, citations: Sequence[Any], links: dict[int, str] | None = None) -> str:
    """Escaped answer text with the answer's own ``[n]`` markers shown as superscript references, each a
    link to its cited place in the source (``links``) where there is one. A ``[3]`` the answer quotes
    from a document, or one citing no passage, stays text (``rag.http.plain.own_markers``)."""
    text = str(text).strip("\n")
    out, pos = [], 0
    for m in own_markers(text, [int(c.n) for c in citations], [c.quote for c in citations]):
        url, sup = (links or {}).get(int(m[1])), f'<sup class="rag-ref">[{m[1]}]</sup>'
        out += [_lines_inline(text[pos:m.start()]), _link(url, sup) if url else sup]
        pos = m.end()
    out.append(_lines_inline(text[pos:]))
    return "".join(out)


def _link(url: str, label: str) -> str:
    """A link opening the source viewer in a new tab; ``label`` is markup already escaped."""
    return f'<a class="rag-view" href="{esc(url)}" target="_blank" rel="noopener">{label}</a>'


def citation_links(citations: Iterable[Any]) -> dict[int, str]:
    """``n`` → the viewer URL of citation ``n``'s first quote (its document, knowledge base and source offsets)."""
    links: dict[int, str] = {}
    for c in citations:
        kb = getattr(c, "kb", None)  # Citation gains ``kb`` with the knowledge bases; None until then
        links.setdefault(int(c.n), view_url(c.doc_id, kb, start=int(c.start), end=int(c.end)) + "#cited")
    return links


def highlight(text: str, quotes: Iterable[str], exact: str | None = None) -> tuple[str, list[str]]:
    """``text`` escaped, with each quote found in it wrapped in ``<mark>``; also the quotes not found.

    ``exact``, the answer's exact span, is shown bold (``<strong>``) inside the first quote holding it."""
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
        quoted = text[start:end]
        i = quoted.find(exact) if exact else -1
        if exact and i >= 0:
            inner = (f'{_lines_inline(quoted[:i])}<strong class="rag-answer-span">{_lines_inline(exact)}</strong>'
                     f'{_lines_inline(quoted[i + len(exact):])}')
            exact = None
        else:
            inner = _lines_inline(quoted)
        out.append(f'<mark class="rag-quote">{inner}</mark>')
        pos = end
    out.append(_lines_inline(text[pos:]))
    return "".join(out), missing


def _lines_inline(text: str) -> str:
    return "<br>".join(esc(line) for line in text.split("\n"))


# A source shows its passage whole up to WHOLE_MAX characters; a longer one (640-token chunks hold about
# 400) shows the quoted words with CONTEXT_CHARS either side, so five sources do not push the question
# out of the chat's view; its [n] opens the whole document at the cited place.
WHOLE_MAX = 300
CONTEXT_CHARS = 100


def _window(text: str, quotes: Sequence[str]) -> tuple[str, str, str]:
    """What of ``text`` a source shows: (leading "…" or "", the shown part, trailing "…" or "")."""
    if len(text) <= WHOLE_MAX:
        return "", text, ""
    found = [(i, i + len(q)) for q in ((q or "").strip() for q in quotes) if q and (i := text.find(q)) >= 0]
    lo, hi = (max(0, min(a for a, _ in found) - CONTEXT_CHARS), min(len(text), max(b for _, b in found) + CONTEXT_CHARS)) \
        if found else (0, WHOLE_MAX)
    return ("…" if lo > 0 else ""), text[lo:hi], ("…" if hi < len(text) else "")


def _source(n: int, passage: Any, quotes: Sequence[str], exact: str | None = None, url: str | None = None,
            lang: str = DEFAULT_LANG) -> str:
    """One numbered source; its number links to ``url`` (the cited place), else to the passage's chunk."""
    chunk = passage.chunk
    url = url or view_url(chunk.doc_id, getattr(passage, "kb", None), chunk=chunk.chunk_id) + "#cited"
    before, shown, after = _window(display(chunk.text), quotes)  # as the quotes are shown: no markup, no glyphs
    body, missing = highlight(shown, quotes, exact)
    body = esc(before) + body + esc(after)
    extra = "".join(f'<div class="rag-cited">“{esc(q)}”</div>' for q in missing)
    loc = getattr(chunk, "location", None) or {}
    where = "".join(
        f'<span class="rag-loc">{esc(text)}</span>'
        for text in (f"《{loc['article']}》" if loc.get("article") else "",
                     f"p.{loc['page']}" if loc.get("page") else "") if text
    )
    kb = getattr(passage, "kb", None)
    kb_badge = f'<span class="rag-kb">{esc(t("answer.kb", lang, name=kb))}</span> ' if kb else ""
    return (
        f'<div class="rag-source" data-n="{n}">'
        f'<div class="rag-source-head"><span class="rag-n">{_link(url, f"[{n}]")}</span> '
        f'{kb_badge}<span class="rag-doc">{esc(chunk.doc_id)}</span>{where} '
        f'<span class="rag-score">{esc(t("answer.score", lang, score=f"{float(passage.score):.4f}"))}</span> '
        f'<span class="rag-span">{esc(t("answer.chars", lang, start=int(chunk.start), end=int(chunk.end)))}</span></div>'
        f'{extra}<div class="rag-passage">{body}</div></div>'
    )


def answer_html(answer: Any, lang: str = DEFAULT_LANG) -> str:
    """The final answer in ``lang``: text with ``[n]`` references, the not-found state, warnings, numbered sources."""
    parts = ['<div class="rag-answer">']
    links = citation_links(answer.citations)
    if answer.abstained:
        parts.append(f'<div class="rag-notfound">{esc(t("answer.not_found", lang))}</div>')
        if answer.answer.strip() not in ("", NOT_FOUND_ZH, NOT_FOUND_EN):
            parts.append(f'<div class="rag-text rag-muted">{_with_refs(answer.answer, answer.citations, links)}</div>')
    else:
        parts.append(f'<div class="rag-text">{_with_refs(answer.answer, answer.citations, links)}</div>')
    parts.extend(warning_html(w, lang) for w in answer.warnings)

    quotes: dict[int, list[str]] = {}
    for c in answer.citations:
        quotes.setdefault(int(c.n), []).append(display(c.quote))  # as the card shows its passage
    passages = list(answer.passages)
    cited = [n for n in sorted(quotes) if 1 <= n <= len(passages)]
    if cited:
        parts.append(f'<div class="rag-sources"><div class="rag-sources-title">{esc(t("answer.sources", lang))}</div>')
        span = getattr(answer, "answer_span", None) or {}
        if is_uncertain(answer):  # an uncertain answer's words are not bolded as if they were sure
            span = {}
        parts.extend(_source(n, passages[n - 1], quotes[n], span.get("text") if span.get("n", n) == n else None,
                             links.get(n), lang) for n in cited)
        parts.append("</div>")
    others = [n for n in range(1, len(passages) + 1) if n not in quotes]
    if others:
        title = t("answer.closest" if not cited else "answer.others", lang)
        parts.append(f'<details class="rag-more"><summary>{esc(title)} ({len(others)})</summary>')
        parts.extend(_source(n, passages[n - 1], (), lang=lang) for n in others)
        parts.append("</details>")
    timings = answer.timings or {}
    confidence = getattr(answer, "confidence", None)
    sure = "" if confidence is None else \
        f' · <span class="rag-confidence">{esc(t("answer.confidence", lang, value=f"{float(confidence):.2f}"))}</span>'
    parts.append(
        f'<div class="rag-meta">{esc(answer.generator)} · {float(timings.get("total_ms", 0.0)) / 1000:.1f} s{sure}</div></div>'
    )
    return "".join(parts)


def status_html(lines: Sequence[tuple[str, str]]) -> str:
    """A status box: (kind, text) rows, kind one of ok / warn / error; text is escaped."""
    rows = "".join(f'<div class="rag-status-{esc(kind)}">{esc(text)}</div>' for kind, text in lines)
    return f'<div class="rag-status-box">{rows}</div>'


def chunk_hint_html(hint: str) -> str:
    """The full-text box of the chunk browser before a row is picked."""
    return f'<div class="rag-chunk-full rag-muted">{esc(hint)}</div>'


def chunk_text_html(head: str, text: str) -> str:
    """One chunk's whole text, escaped, its line breaks kept; a long one scrolls inside its box (CSS)."""
    return (f'<div class="rag-chunk-full"><div class="rag-chunk-head">{esc(head)}</div>'
            f'<div class="rag-chunk-body">{_lines(text)}</div></div>')


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
