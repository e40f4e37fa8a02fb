"""The "文档 Documents" tab: a knowledge base's documents, upload, deletion behind a confirmation row,
managing the knowledge bases themselves, and the chunk browser.

``documents_tab`` builds it (texts in the page's ``Labels``); ``wire_documents`` joins it to its events
(``ui.handlers``, ``ui.kb_manage``, ``ui.chunks_view``). Every base dropdown of the page is an output of
the events that create, rename or delete a base, so each shows the change at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag.bases import DEFAULT, MAX_NAME
from rag.pipeline import RAG
from rag.uploads import UPLOAD_SUFFIXES
from ui import handlers, render
from ui.chunks_view import chunk_headers, chunk_text_handler, chunks_handler
from ui.feedback_ui import scroll_into_view_js
from ui.gate import Gate
from ui.kb_manage import Manager
from ui.staging import Staging
from ui.texts import Labels, t

# Fixed shares of the table's width. Left to itself, Gradio's Dataframe sizes a column by its widest
# cell measured unwrapped (capped at the whole table's width), so one long file name or first-words
# cell took the full width and pushed the other columns out of view; with set widths, cells wrap.
DOCUMENT_COLUMNS = ["52%", "12%", "12%", "24%"]  # document, size, chunks, indexed at
CHUNK_COLUMNS = ["8%", "22%", "22%", "7%", "41%"]  # chunk, article, section, page, first words

# The file box uploads before any event runs and cannot send a header: with a server key, the key
# typed here is exchanged for the HttpOnly session cookie that the upload route accepts; the page's
# events carry it too, and take the key's grant from it (ui.gate).
SESSION_JS = """async (key) => {
  try { await fetch('/api/session', {method: 'POST', headers: {'X-API-Key': key || ''}, credentials: 'same-origin'}); }
  catch (e) {}
}"""


@dataclass
class DocumentsTab:
    tab: gr.Tab
    kb: gr.Dropdown
    summary: gr.Markdown
    table: gr.Dataframe
    refresh: gr.Button
    key: gr.Textbox
    new_name: gr.Textbox
    create: gr.Button
    rename_to: gr.Textbox
    rename: gr.Button
    delete_base: gr.Button
    files: gr.File
    add: gr.Button
    choice: gr.Dropdown
    remove: gr.Button
    confirm_row: gr.Row
    confirm_text: gr.HTML
    confirm_yes: gr.Button
    confirm_no: gr.Button
    pending: gr.State
    status: gr.HTML
    chunk_doc: gr.Dropdown
    chunks_title: gr.Markdown
    chunks: gr.Dataframe
    chunk_text: gr.HTML


def documents_tab(rag: RAG, names: list[str], keyed: bool, tx: Labels) -> DocumentsTab:
    """The tab, inside the page's ``gr.Tabs()``; its texts are registered in ``tx``. ``names``: the bases a
    caller without a key may read (the page as built is seen by anyone: it shows only what they may
    see); ``keyed``: the server has keys, so the key box is shown."""
    documents = rag.documents() if DEFAULT in names else []
    ids = [d["doc_id"] for d in documents]
    with tx.add(gr.Tab(tx("tab.documents"), id="documents", elem_id="rag-documents-tab"), label="tab.documents") as tab:
        with gr.Row(equal_height=False):
            kb = tx.add(gr.Dropdown(choices=names, value=names[0] if names else None, label=tx("docs.kb"), elem_id="rag-doc-kb",
                                    info=tx("docs.kb_info"), scale=2), label="docs.kb", info="docs.kb_info")
            key = tx.add(gr.Textbox(label=tx("docs.key"), type="password", visible=keyed, elem_id="rag-key",
                                    info=tx("docs.key_info"), scale=2), label="docs.key", info="docs.key_info")
        with gr.Accordion(_heading("kb.manage", tx.lang), open=True, elem_id="rag-kb-manage") as manage:
            tx.add(manage, label=lambda lang: _heading("kb.manage", lang))
            with gr.Row(elem_classes="rag-kb-row"):
                new_name = tx.add(gr.Textbox(label=tx("kb.new_name"), placeholder=tx("kb.name_placeholder"),
                                             max_length=MAX_NAME, elem_id="rag-kb-name", scale=3),
                                  label="kb.new_name", placeholder="kb.name_placeholder")
                create = tx.add(gr.Button(tx("kb.create"), elem_id="rag-kb-create", scale=1, min_width=150),
                                value="kb.create")
                rename_to = tx.add(gr.Textbox(label=tx("kb.rename_to"), placeholder=tx("kb.name_placeholder"),
                                              max_length=MAX_NAME, elem_id="rag-kb-newname", scale=3),
                                   label="kb.rename_to", placeholder="kb.name_placeholder")
                rename = tx.add(gr.Button(tx("kb.rename"), elem_id="rag-kb-rename", scale=1, min_width=100),
                                value="kb.rename")
                delete_base = tx.add(gr.Button(tx("kb.delete"), variant="stop", elem_id="rag-kb-delete", scale=2,
                                               min_width=160), value="kb.delete")
        # Deleting asks first: the delete buttons open this row, and only its Confirm deletes. The row and the
        # status sit under the base controls, where one look takes in the bases and what is about to go.
        with gr.Row(visible=False, elem_id="rag-confirm", equal_height=True) as confirm_row:
            confirm_text = gr.HTML(elem_id="rag-confirm-text")
            confirm_yes = tx.add(gr.Button(tx("confirm.yes"), variant="stop", elem_id="rag-confirm-yes", scale=0,
                                           min_width=120), value="confirm.yes")
            confirm_no = tx.add(gr.Button(tx("confirm.no"), elem_id="rag-confirm-no", scale=0, min_width=100),
                                value="confirm.no")
        status = gr.HTML(elem_id="rag-doc-status", padding=False, min_height=0)  # empty: takes no room
        summary = gr.Markdown(handlers.summary(rag, lang=tx.lang) if DEFAULT in names else "", elem_id="rag-summary")
        table = gr.Dataframe(
            value=render.document_rows(documents), headers=handlers.headers(tx.lang), interactive=False,
            datatype=["str", "str", "number", "str"], elem_id="rag-documents", wrap=True,
            column_widths=DOCUMENT_COLUMNS,
        )
        refresh = tx.add(gr.Button(tx("docs.refresh"), size="sm", variant="secondary", elem_id="rag-refresh"),
                         value="docs.refresh")
        with gr.Row():
            with gr.Column():
                tx.add(gr.Markdown(tx("docs.upload")), value="docs.upload")
                suffixes = " ".join(UPLOAD_SUFFIXES)
                files = tx.add(gr.File(label=tx("docs.files", suffixes=suffixes), file_count="multiple",
                                       file_types=list(UPLOAD_SUFFIXES), elem_id="rag-upload"),
                               label=lambda lang: t("docs.files", lang, suffixes=suffixes))
                add = tx.add(gr.Button(tx("docs.add"), variant="primary", elem_id="rag-add"), value="docs.add")
            with gr.Column():
                tx.add(gr.Markdown(tx("docs.delete")), value="docs.delete")
                choice = tx.add(gr.Dropdown(choices=ids, value=None, label=tx("docs.choice"), elem_id="rag-doc-choice"),
                                label="docs.choice")
                remove = tx.add(gr.Button(tx("docs.remove"), variant="stop", elem_id="rag-delete"), value="docs.remove")
        tx.add(gr.Markdown(tx("chunks.heading")), value="chunks.heading")
        chunk_doc = tx.add(gr.Dropdown(choices=ids, value=None, label=tx("chunks.doc"), info=tx("chunks.doc_info"),
                                       elem_id="rag-chunk-doc"), label="chunks.doc", info="chunks.doc_info")
        chunks_title = gr.Markdown(tx("chunks.hint"), elem_id="rag-chunks-title")
        chunks = gr.Dataframe(value=[], headers=chunk_headers(tx.lang), interactive=False, wrap=True,
                              elem_id="rag-chunks", datatype=["number", "str", "str", "str", "str"],
                              column_widths=CHUNK_COLUMNS, max_height=420)
        chunk_text = gr.HTML(render.chunk_hint_html(tx("chunks.text_hint")), elem_id="rag-chunk-text")
    return DocumentsTab(tab, kb, summary, table, refresh, key, new_name, create, rename_to, rename, delete_base,
                        files, add, choice, remove, confirm_row, confirm_text, confirm_yes, confirm_no,
                        gr.State(None), status, chunk_doc, chunks_title, chunks, chunk_text)


def _heading(key: str, lang: str) -> str:
    """A Markdown heading's text without its ``###``, for an accordion's label."""
    return t(key, lang).lstrip("# ")


def wire_documents(demo: gr.Blocks, gate: Gate, docs: DocumentsTab, staging: Staging | None,
                   chat_kbs: gr.Dropdown, rt_base: gr.Dropdown, chat_key: gr.Textbox) -> None:
    """Upload, the two-step deletes, the base controls, the chunk browser, refresh, the chosen base, the
    key boxes' session cookie (and the pickers, as the new key may see them), and the lists shown when
    the page opens."""
    bases = gate.bases
    doc_state = handlers.documents_view(gate)
    upload = handlers.upload_handler(gate, staging, doc_state)
    manager = Manager(gate, doc_state)
    shown = [docs.table, docs.choice, docs.chunk_doc, docs.summary]
    pickers = [docs.kb, chat_kbs, rt_base]
    in_sight = scroll_into_view_js("rag-confirm", "rag-doc-status")  # the question asked, or the outcome
    private = {"api_visibility": "private"}

    def then_show(event: gr.events.Dependency) -> None:
        event.then(None, None, None, js=in_sight, **private)

    then_show(docs.add.click(upload, [docs.files, docs.key, docs.kb], [docs.status, *shown, docs.files],
                             concurrency_limit=1, **private))
    confirm_out = [docs.confirm_row, docs.confirm_text, docs.pending, docs.status]
    then_show(docs.remove.click(manager.ask_delete_doc, [docs.choice, docs.key, docs.kb], confirm_out, **private))
    then_show(docs.delete_base.click(manager.ask_delete_base, [docs.key, docs.kb], confirm_out, **private))
    docs.confirm_no.click(manager.cancel, None, confirm_out, **private)
    then_show(docs.confirm_yes.click(manager.confirm, [docs.pending, docs.key, docs.kb, chat_kbs, rt_base],
                                     [docs.confirm_row, docs.pending, docs.status, *shown, *pickers],
                                     concurrency_limit=1, **private))
    then_show(docs.create.click(manager.create, [docs.new_name, docs.key, docs.kb, chat_kbs, rt_base],
                                [docs.status, docs.new_name, *pickers], concurrency_limit=1, **private))
    then_show(docs.rename.click(manager.rename, [docs.rename_to, docs.key, docs.kb, chat_kbs, rt_base],
                                [docs.status, docs.rename_to, *pickers], concurrency_limit=1, **private))

    def listing(kb: str | None, request: gr.Request) -> tuple:
        """The chosen base's picker brought up to date (bases made or removed elsewhere, as the caller may
        see them), and its documents."""
        names = gate.names_for(request)
        return handlers.base_choices(bases, kb, names=names), *doc_state(handlers.picked_base(names, kb), request)

    def pickers(kb: Any, chosen: Any, rt: Any, request: gr.Request) -> tuple:
        """Every base picker of the page as the caller (its new key) may see them, and the documents."""
        names = gate.names_for(request)
        return (handlers.base_choices(bases, kb, names=names), handlers.base_choices(bases, chosen, True, names=names),
                handlers.base_choices(bases, rt, names=names), *doc_state(handlers.picked_base(names, kb), request))

    docs.refresh.click(listing, [docs.kb], [docs.kb, *shown], **private)
    docs.kb.change(doc_state, [docs.kb], shown, **private)
    docs.kb.change(lambda: (gr.update(visible=False), None), None, [docs.confirm_row, docs.pending], **private)
    docs.chunk_doc.change(chunks_handler(gate.read), [docs.chunk_doc, docs.kb],
                          [docs.chunks, docs.chunks_title, docs.chunk_text], **private)
    docs.chunks.select(chunk_text_handler(gate.read), [docs.chunk_doc, docs.kb], [docs.chunk_text], **private)
    # A new key: its session cookie first, then what it may see. On leaving the box or Enter, not on every
    # keystroke: each keystroke's pickers, answering out of order, could leave a half-typed key's view last.
    for box in (docs.key, chat_key):
        gr.on([box.blur, box.submit], None, [box], None, js=SESSION_JS, **private).then(
            pickers, [docs.kb, chat_kbs, rt_base], [docs.kb, chat_kbs, rt_base, *shown], **private)
    if staging is not None:  # staged files the page let go of, or left behind when it closed, go at once
        docs.files.change(staging.on_files_change, [docs.files], None, api_visibility="private",
                          show_progress="hidden")
        demo.unload(staging.on_unload)
    demo.load(listing, [docs.kb], [docs.kb, *shown], **private)


__all__ = ["CHUNK_COLUMNS", "DOCUMENT_COLUMNS", "SESSION_JS", "DocumentsTab", "documents_tab", "wire_documents"]
