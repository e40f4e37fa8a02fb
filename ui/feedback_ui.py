"""The chat's 👍/👎 on answers: what it keeps per answer, the box for a reason or correction, and its events.

``ui.app`` keeps a ``records`` state (the assistant message's index in the chat, as str → ``record_of``
that answer), builds the box with ``build_feedback_box()`` and joins them with ``wire_feedback``.

A thumb is stored at once (a thumbs-up is then done). A thumbs-down also opens the box; what is sent
from it is stored as a **new record** of the same question, which supersedes the bare thumbs-down
because ``rag feedback export`` keeps the latest record of each question (``rag.feedback_export``).
Taking a thumb back (clicking it again) stores nothing: the file is append-only, and a later
rating of the same answer supersedes the earlier one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag.errors import RagError
from rag.feedback import MAX_CORRECTION, MAX_IDS, MAX_REASON, max_feedback_bytes, record_feedback
from rag.types import Answer
from ui import render
from ui.feedback_cmd import one_line
from ui.messages import localized
from ui.texts import Labels, request_lang, t

Resolve = Callable[[list[str] | None], Any]  # the knowledge bases' names → the RAG to store into (the first)
HIDDEN = "rag-feedback"


def rating_choices(lang: str) -> list[tuple[str, str]]:
    return [(t("fb.up", lang), "up"), (t("fb.down", lang), "down")]


def record_of(answer: Answer, kb_names: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    """What a rating of ``answer`` is stored with: the question, the answer, its passages and citations,
    the knowledge bases asked and the settings used (``generator`` from the answer unless given).

    The question is the standalone one retrieval used (``answer.query``) when a follow-up was rewritten:
    "那它呢？" alone means nothing in a question set, which is where the record ends up."""
    return {
        "question": answer.query or answer.question, "answer": answer.answer, "abstained": answer.abstained,
        "chunk_ids": [p.chunk.chunk_id for p in answer.passages][:MAX_IDS],
        "doc_ids": [p.chunk.doc_id for p in answer.passages][:MAX_IDS],
        "cited_doc_ids": list(dict.fromkeys(c.doc_id for c in answer.citations))[:MAX_IDS],
        "kbs": list(kb_names), "settings": {"generator": answer.generator, **settings},
    }


@dataclass
class FeedbackBox:
    group: gr.Group
    title: gr.Markdown
    rating: gr.Radio
    reason: gr.Textbox
    correction: gr.Textbox
    not_in_documents: gr.Checkbox
    send: gr.Button
    status: gr.HTML
    target: gr.State  # the index (str) of the answer being rated


def build_feedback_box(labels: Labels | None = None) -> FeedbackBox:
    """The box, hidden, inside the current ``gr.Blocks``; its texts in ``labels`` (relabelled with the page)."""
    tx = labels or Labels()
    with gr.Group(visible=False, elem_id=HIDDEN) as group:
        title = gr.Markdown(elem_id="rag-feedback-title")
        rating = tx.add(gr.Radio(rating_choices(tx.lang), value="down", label=tx("fb.rating"),
                                 elem_id="rag-feedback-rating"), label="fb.rating", choices=rating_choices)
        reason = tx.add(gr.Textbox(label=tx("fb.reason"), max_length=MAX_REASON, lines=2,
                                   elem_id="rag-feedback-reason"), label="fb.reason")
        correction = tx.add(gr.Textbox(label=tx("fb.correction"), max_length=MAX_CORRECTION, lines=3,
                                       elem_id="rag-feedback-correction"), label="fb.correction")
        missing = tx.add(gr.Checkbox(label=tx("fb.missing"), value=False, elem_id="rag-feedback-missing"),
                         label="fb.missing")
        send = tx.add(gr.Button(tx("fb.send"), variant="primary", elem_id="rag-feedback-send"), value="fb.send")
    # outside the box: a successful send closes the box, and its confirmation must stay in sight
    status = gr.HTML(elem_id="rag-feedback-status")
    return FeedbackBox(group, title, rating, reason, correction, missing, send, status, gr.State(None))


# What an event has just shown is brought into view: the page is taller than a screen, and the box a 👎
# opens (or the status a send writes) sat below the fold, unseen. The first of ``ids`` that is shown
# (an element with content) is scrolled to, as little as needed ("nearest"); nothing when none is.
def scroll_into_view_js(*ids: str) -> str:
    """The JS for an event's ``js=``: scroll to the first shown element of ``ids``, after Gradio rendered the update."""
    names = ", ".join(f"'{i}'" for i in ids)
    return f"""() => {{
  setTimeout(() => {{
    for (const id of [{names}]) {{
      const el = document.getElementById(id);
      if (el && el.offsetParent !== null && el.textContent.trim()) {{
        el.scrollIntoView({{block: 'nearest'}});
        return;
      }}
    }}
  }}, 150);
  return [];
}}"""


def wire_feedback(chatbot: gr.Chatbot, records: gr.State, box: FeedbackBox,
                  resolve: Callable[[list[str] | None, Any], Any]) -> None:
    """The chatbot's thumbs and the box's send button, stored through ``resolve(names, request)`` (the RAG
    to store into, if the event's caller may read those bases: ``ui.gate``)."""

    def on_like(kept: dict[str, Any], data: gr.LikeData, request: gr.Request) -> tuple[Any, ...]:
        return handle_like(lambda names: resolve(names, request), kept, data, request_lang(request))

    def on_send(kept: dict[str, Any], target: str | None, rating: str, reason: str, correction: str,
                missing: bool, request: gr.Request) -> tuple[Any, str]:
        return handle_send(lambda names: resolve(names, request), kept, target, rating, reason, correction, missing,
                           request_lang(request))

    box_fields = [box.group, box.title, box.rating, box.reason, box.correction, box.not_in_documents, box.status,
                  box.target]
    liked = chatbot.like(on_like, [records], box_fields, api_visibility="private")
    liked.then(None, None, None, js=scroll_into_view_js(HIDDEN), api_visibility="private")  # the opened box
    sent = box.send.click(on_send, [records, box.target, box.rating, box.reason, box.correction, box.not_in_documents],
                          [box.group, box.status], api_visibility="private")
    sent.then(None, None, None, js=scroll_into_view_js("rag-feedback-status"), api_visibility="private")


# ---- what the events do ------------------------------------------------------------------------
def handle_like(resolve: Resolve, kept: dict[str, Any] | None, data: gr.LikeData, lang: str = "en") -> tuple[Any, ...]:
    """A thumb on an answer: stored; a thumbs-down opens the box. The box's eight outputs."""
    index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
    record = (kept or {}).get(str(index))
    closed = (gr.update(visible=False), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), None)
    if data.liked not in (True, False):  # "" when a thumb is clicked again (taken back); we offer no other options
        return closed
    if record is None:
        gr.Warning(t("fb.gone", lang))
        return closed
    rating = "up" if data.liked else "down"
    error = _store(resolve, record, {"rating": rating}, lang)
    if rating == "up":
        if error:
            gr.Warning(error)
        else:
            gr.Info(t("fb.thanks_up", lang))
        return closed
    note = ("error", error) if error else ("ok", t("fb.stored_down", lang))
    title = t("fb.title", lang, question=render.esc(one_line(record["question"], 80)))
    return (gr.update(visible=True), title, "down", "", "", False, render.status_html([note]), str(index))


def handle_send(resolve: Resolve, kept: dict[str, Any] | None, target: str | None, rating: str, reason: str,
                correction: str, missing: bool, lang: str = "en") -> tuple[Any, str]:
    """The box's details stored as a new record of the answer (superseding the bare thumb); (box, status)."""
    record = (kept or {}).get(str(target)) if target is not None else None
    if record is None:
        return gr.update(visible=True), render.status_html([("error", t("fb.gone", lang))])
    reason, correction = (reason or "").strip(), (correction or "").strip()
    if rating == "down" and not (reason or correction or missing):
        return gr.update(visible=True), render.status_html([("warn", t("fb.need_detail", lang))])
    error = _store(resolve, record, {"rating": rating, "reason": reason or None, "corrected_answer": correction or None,
                                     "not_in_documents": bool(missing)}, lang)
    if error:
        return gr.update(visible=True), render.status_html([("error", error)])
    return gr.update(visible=False), render.status_html([("ok", t("fb.sent", lang))])


def _store(resolve: Resolve, record: dict[str, Any], rating: dict[str, Any], lang: str) -> str | None:
    """Store ``record`` with ``rating``'s fields; the error's message, or None when it is stored."""
    try:
        rag = resolve(record.get("kbs") or None)
        record_feedback(rag.index_dir, {**record, **rating}, max_bytes=max_feedback_bytes(rag.settings.max_feedback_mb))
    except RagError as exc:
        return t("fb.not_stored", lang, error=localized(exc, lang))
    return None


__all__ = [
    "FeedbackBox",
    "build_feedback_box",
    "handle_like",
    "handle_send",
    "rating_choices",
    "record_of",
    "scroll_into_view_js",
    "wire_feedback",
]
