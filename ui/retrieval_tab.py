"""The "检索测试 Retrieval test" tab: a query's top-k chunks with their dense, BM25 and fused scores side by side.

Hit testing, as RAGFlow and MaxKB call it: the controls are the retrieval settings a user may
change (top-k, mode, the hybrid weight, the re-rank, the metadata filters) and the table shows
why a passage won, from ``RAG.search(..., explain=True)`` (the data of ``POST /api/search`` with
``"explain": true``). Every value of an event is checked before use: Gradio events can be sent by
any client, not only by this page's controls. Text from documents and users goes through
``render.esc``; the table is this module's own markup.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import gradio as gr

from rag.config import RETRIEVAL_MODES
from rag.errors import ConfigError, RagError
from rag.pipeline import RAG
from rag.retrieval.retrieve import RetrievalSettings
from rag.text.normalize import index_terms
from rag.types import Passage
from ui.gate import Gate
from ui.messages import localized
from ui.render import esc
from ui.texts import DEFAULT_LANG, Labels, request_lang, t

MAX_TOP_K = 50  # as POST /api/search
SNIPPET_CHARS = 200


def modes(lang: str) -> list[tuple[str, str]]:
    """The retrieval modes' choices in ``lang`` (a mode without a text in ui.texts fails on import: MODES)."""
    return [(t(f"rt.mode_{mode}", lang), mode) for mode in RETRIEVAL_MODES]


MODES = modes(DEFAULT_LANG)
NO_PASSAGES = t("rt.no_passages", DEFAULT_LANG)
HEADER_KEYS = ("rt.col_rank", "rt.col_score", "rt.col_fused", "rt.col_dense", "rt.col_bm25", "rt.col_rerank",
               "rt.col_doc", "rt.col_loc", "rt.col_text")

# Scoped to the result component by Gradio (css_template), so the page's CSS in ui.app stays untouched.
TABLE_CSS = """
.rt-facts { color: var(--body-text-color); font-size: .92em; margin: 2px 0 8px; }
.rt-wrap { overflow-x: auto; }
table.rt { border-collapse: collapse; width: 100%; font-size: .88em; }
table.rt th { text-align: left; font-weight: 600; padding: 4px 6px; border-bottom: 2px solid var(--border-color-primary);
  line-height: 1.25; white-space: nowrap; }
table.rt td { padding: 5px 6px; vertical-align: top; border-bottom: 1px solid var(--border-color-primary); }
table.rt td.rt-num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.rt td.rt-doc { font-family: var(--font-mono); font-size: .92em; overflow-wrap: anywhere; min-width: 10em; }
table.rt td.rt-loc { min-width: 8em; max-width: 12em; }
table.rt td.rt-text { min-width: 22em; line-height: 1.5; white-space: pre-line; }
.rt-rank { color: var(--body-text-color-subdued); font-size: .88em; }
.rt-none { color: var(--body-text-color-subdued); }
.rt-exact { color: #b45309; font-size: .85em; display: block; }
mark.rt-term { background: #fde68a; color: #111827; padding: 0 1px; border-radius: 2px; }
.rt-empty { border-left: 4px solid #d97706; background: rgba(217,119,6,.12); padding: 6px 10px; border-radius: 4px;
  font-weight: 600; }
.rt-error { border-left: 4px solid #dc2626; background: rgba(220,38,38,.12); padding: 6px 10px; border-radius: 4px; }
"""


@dataclass
class _Controls:
    base: gr.Dropdown
    query: gr.Textbox
    search: gr.Button
    top_k: gr.Slider
    mode: gr.Radio
    weight: gr.Slider
    rerank: gr.Checkbox
    doc: gr.Textbox
    article: gr.Textbox
    date_from: gr.Textbox
    date_to: gr.Textbox

    def inputs(self) -> list[gr.components.Component]:
        return [self.base, self.query, self.top_k, self.mode, self.weight, self.rerank,
                self.doc, self.article, self.date_from, self.date_to]


def retrieval_tab(resolve: Callable[[str | None], RAG], bases: Callable[[], list[str]],
                  labels: Labels | None = None, gate: Gate | None = None) -> tuple[gr.Tab, gr.Dropdown]:
    """The tab, built inside the app's ``gr.Tabs()``: ``resolve`` gives the RAG of a knowledge base
    named in ``bases()`` (the first is the default); its texts go in ``labels``. Returns the tab and its
    knowledge-base dropdown, which the page brings up to date (bases are created and deleted while the
    server runs)."""
    names = bases()
    tx = labels or Labels()
    with tx.add(gr.Tab(tx("tab.retrieval"), id="retrieval", elem_id="rag-retrieval-tab"), label="tab.retrieval") \
            as tab, gr.Row():
        with gr.Column(scale=4):
            row = _query_row(names, tx)
            result = gr.HTML(elem_id="rag-rt-result", css_template=TABLE_CSS, js_on_load=None)
        with gr.Column(scale=1, min_width=260):
            controls = _Controls(*row, *_settings_column(resolve(names[0]).settings.retrieval if names else "hybrid",
                                                         tx))
    run = search_handler(resolve, bases, gate)
    controls.search.click(run, controls.inputs(), result, concurrency_limit=8, api_visibility="private")
    controls.query.submit(run, controls.inputs(), result, concurrency_limit=8, api_visibility="private")
    return tab, controls.base


def _query_row(names: list[str], tx: Labels) -> tuple[gr.Dropdown, gr.Textbox, gr.Button]:
    """The knowledge base, the query and the search button."""
    with gr.Row():
        base = tx.add(gr.Dropdown(choices=names, value=names[0] if names else None, label=tx("rt.base"),
                                  elem_id="rag-rt-base", interactive=len(names) > 1, scale=1, min_width=160),
                      label="rt.base")
        query = tx.add(gr.Textbox(label=tx("rt.query"), elem_id="rag-rt-query", scale=4, lines=1, submit_btn=False,
                                  placeholder=tx("rt.query_placeholder")), label="rt.query",
                       placeholder="rt.query_placeholder")
        search = tx.add(gr.Button(tx("rt.search"), variant="primary", elem_id="rag-rt-search", scale=1,
                                  min_width=100), value="rt.search")
    return base, query, search


def _settings_column(mode: str, tx: Labels) -> tuple[gr.components.Component, ...]:
    """Top-k, mode, hybrid weight, re-rank and the filters doc, article, date_from, date_to
    (as rag.filters.KEYS), in ``_Controls`` order."""
    defaults = RetrievalSettings()
    tx.add(gr.Markdown(tx("rt.settings")), value="rt.settings")
    top_k = tx.add(gr.Slider(1, MAX_TOP_K, value=10, step=1, label=tx("rt.top_k"), elem_id="rag-rt-topk"),
                   label="rt.top_k")
    radio = tx.add(gr.Radio(modes(tx.lang), value=mode, label=tx("rt.mode"), elem_id="rag-rt-mode"),
                   label="rt.mode", choices=modes)
    weight = tx.add(gr.Slider(0.0, 1.0, value=defaults.lexical_weight, step=0.05, label=tx("rt.weight"),
                              info=tx("rt.weight_info"), elem_id="rag-rt-weight"), label="rt.weight", info="rt.weight_info")
    rerank = tx.add(gr.Checkbox(value=defaults.rerank_weight > 0, label=tx("rt.rerank"), info=tx("rt.rerank_info"),
                                elem_id="rag-rt-rerank"), label="rt.rerank", info="rt.rerank_info")
    tx.add(gr.Markdown(tx("rt.filters")), value="rt.filters")
    doc = tx.add(gr.Textbox(label=tx("rt.doc"), placeholder="000_*.txt", elem_id="rag-rt-doc"), label="rt.doc")
    article = tx.add(gr.Textbox(label=tx("rt.article"), elem_id="rag-rt-article"), label="rt.article")
    with gr.Row():
        date_from = tx.add(gr.Textbox(label=tx("rt.date_from"), placeholder="2023-01-01", elem_id="rag-rt-from",
                                      min_width=110), label="rt.date_from")
        date_to = tx.add(gr.Textbox(label=tx("rt.date_to"), placeholder="2023-12-31", elem_id="rag-rt-to",
                                    min_width=110), label="rt.date_to")
    return top_k, radio, weight, rerank, doc, article, date_from, date_to


# ---- the event ---------------------------------------------------------------------------------
def search_handler(resolve: Callable[[str | None], RAG], bases: Callable[[], list[str]],
                   gate: Gate | None = None) -> Callable[..., str]:
    """The search event: its inputs in ``_Controls.inputs`` order, the result's HTML out. With a ``gate``
    (the served page) the base must be one the caller may read, and is named only if it may."""

    def run(base: Any, query: Any, top_k: Any, mode: Any, weight: Any, rerank: Any,
            doc: Any, article: Any, date_from: Any, date_to: Any, request: gr.Request = None, lang: Any = None) -> str:
        lang = request_lang(request, lang)
        try:
            names = bases() if gate is None else gate.names(gate.caller(request))
            if base not in names:
                raise ConfigError("kb.not_listed", name=str(base)[:80], names=", ".join(names))
            if not isinstance(query, str):
                raise ConfigError("the query must be text")
            filters = {k: v.strip() for k, v in
                       (("doc", doc), ("article", article), ("date_from", date_from), ("date_to", date_to))
                       if isinstance(v, str) and v.strip()}
            t0 = time.perf_counter()
            passages = (resolve(base) if gate is None else gate.read(request, base)).search(query, _top_k(top_k), retrieval=mode, filters=filters, explain=True,
                                            lexical_weight=weight, rerank=rerank)
            seconds = time.perf_counter() - t0
        except RagError as exc:
            return error_html(exc, lang)
        return results_html(query, passages, seconds, lang)

    return run


def _top_k(value: Any) -> int:
    # the range first: NaN fails it, and int() of NaN or infinity would raise
    if isinstance(value, bool) or not isinstance(value, Real) or not 1 <= value <= MAX_TOP_K or value != int(value):
        raise ConfigError("top_k.out_of_range", limit=MAX_TOP_K, value=value)
    return int(value)


# ---- the result --------------------------------------------------------------------------------
def error_html(error: RagError | str, lang: str = DEFAULT_LANG) -> str:
    return f'<div class="rt-error">{esc(t("rt.failed", lang, error=localized(error, lang)))}</div>'


def results_html(query: str, passages: Sequence[Passage], seconds: float, lang: str = DEFAULT_LANG) -> str:
    """The query-level facts line and the table of passages (or the "no passages" note), in ``lang``."""
    took = esc(t("rt.time", lang, ms=f"{seconds * 1000:.0f}"))
    if not passages:
        return f'<div class="rt-facts">{took}</div><div class="rt-empty">{esc(t("rt.no_passages", lang))}</div>'
    terms = _terms(query)
    head = "".join(f"<th>{esc(t(key, lang))}</th>" for key in HEADER_KEYS)
    rows = "".join(_row(p, terms, lang) for p in passages)
    return (f'<div class="rt-facts">{esc(facts_line(passages[0].explain["query"], lang))} · {took}</div>'
            f'<div class="rt-wrap"><table class="rt"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>')


def facts_line(facts: dict[str, Any], lang: str = DEFAULT_LANG) -> str:
    """What held for the whole query: mode, fusion, coverage, the weights actually used, the candidates."""
    parts = [t("rt.f_mode", lang, mode=facts["mode"])]
    if facts.get("fusion"):
        parts.append(t("rt.f_fusion", lang, fusion=facts["fusion"]))
    if facts.get("coverage") is not None:
        coverage = f"{facts['coverage']:.2f}"
        parts.append(t("rt.f_coverage", lang, coverage=coverage))
        parts.append(t("rt.f_weight", lang, w=f"{facts['lexical_weight']:.2f}", coverage=coverage,
                       used=f"{facts['lexical_weight_used']:.3f}"))
        parts.append(t("rt.f_rerank", lang, w=f"{facts['rerank_weight_used']:.3f}"))
    parts.append(t("rt.f_candidates", lang, dense=facts["dense_candidates"], lexical=facts["lexical_candidates"],
                   pool=facts["pool"]))
    if facts.get("exact_match"):
        parts.append(t("rt.f_exact", lang))
    return " · ".join(parts)


def _row(p: Passage, terms: re.Pattern[str] | None, lang: str = DEFAULT_LANG) -> str:
    e = p.explain or {}
    exact = f'<span class="rt-exact">+{e["exact_boost"]:.3f} {esc(t("rt.exact", lang))}</span>' \
        if e.get("exact_boost") else ""
    text = p.chunk.text[:SNIPPET_CHARS] + ("…" if len(p.chunk.text) > SNIPPET_CHARS else "")
    cells = [
        f'<td class="rt-num rt-pos">{p.rank}</td>',
        f'<td class="rt-num rt-score">{p.score:.4f}{exact}</td>',
        f'<td class="rt-num rt-fused">{e.get("fused", p.score):.4f}</td>',
        f'<td class="rt-num rt-dense">{_scored(e.get("dense"), e.get("dense_rank"))}</td>',
        f'<td class="rt-num rt-bm25">{_scored(e.get("bm25"), e.get("bm25_rank"))}</td>',
        f'<td class="rt-num rt-rerank">{e.get("rerank_bonus", 0.0):+.4f}</td>',
        f'<td class="rt-doc">{esc(p.chunk.doc_id)}</td>',
        f'<td class="rt-loc">{esc(_location(p.chunk.location))}</td>',
        f'<td class="rt-text">{_marked(text, terms)}</td>',
    ]
    return f'<tr data-rank="{p.rank}">{"".join(cells)}</tr>'


def _scored(score: float | None, rank: int | None) -> str:
    """``0.9058 #2``; a chunk that was not that retriever's candidate shows ``—`` for the missing part."""
    if score is None:
        return '<span class="rt-none">—</span>'
    return f'{score:.4f} <span class="rt-rank">#{"—" if rank is None else rank}</span>'


def _location(loc: dict[str, Any]) -> str:
    parts = [f"《{loc['article']}》" if loc.get("article") else "", str(loc.get("section") or ""),
             f"p.{loc['page']}" if loc.get("page") else ""]
    return " ".join(p for p in parts if p) or "—"


def _terms(query: str) -> re.Pattern[str] | None:
    """The query's BM25 words of two or more characters (longest first), to mark in the passages."""
    words = sorted({t for t in index_terms(query) if not t.startswith("#") and len(t) >= 2}, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None


def _marked(text: str, terms: re.Pattern[str] | None) -> str:
    """``text`` escaped, its query words wrapped in ``<mark>``."""
    if terms is None:
        return esc(text)
    out, pos = [], 0
    for m in terms.finditer(text):
        out.append(f'{esc(text[pos:m.start()])}<mark class="rt-term">{esc(m.group())}</mark>')
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


__all__ = ["MODES", "NO_PASSAGES", "error_html", "facts_line", "modes", "results_html", "retrieval_tab", "search_handler"]
