"""The documents tab's writes that need care: create, rename and delete a knowledge base, and the
confirmation row every deletion (of a document or a base) goes through.

``Manager``'s methods are the events' functions (``ui.documents_tab`` wires them). Every one checks the
caller first (``ui.gate``: the key typed in the tab, else the page's session; creating, renaming and
deleting bases need a key that may manage them, deleting a document one that may write its base) and the
values a client sent (Gradio events can be sent by any client, not only by this page's controls); a
refusal is said in the status box in plain words and changes nothing. A deletion is two
events: the delete button only readies it (``pending``, kept on the server for this page) and opens the
row that says what will go; only its Confirm deletes, after checking the key again.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.access import Grant
from rag.bases import DEFAULT
from rag.errors import RagError
from rag.uploads import delete_document
from ui import render
from ui.gate import Gate
from ui.handlers import DocState, base_choices
from ui.messages import localized
from ui.texts import request_lang, t

Pending = dict[str, str] | None  # {"kind": "doc", "kb": …, "doc": …} or {"kind": "base", "kb": …}


def _status(kind: str, text: str) -> str:
    return render.status_html([(kind, text)])


class Manager:
    """The events of the knowledge-base controls and of the confirmation row, over one server's bases."""

    def __init__(self, gate: Gate, doc_state: DocState) -> None:
        self.gate = gate
        self.bases = gate.bases
        self.doc_state = doc_state

    # ---- checks ----
    def _managing(self, request: Any, key: Any, lang: str) -> tuple[Grant | None, str | None]:
        """The caller's grant when it may create, rename and delete bases; else the status line saying why."""
        try:
            return self.gate.manage(request, key), None
        except RagError as exc:
            return None, _status("error", localized(exc, lang))

    def _existing(self, grant: Grant, kb: Any, lang: str) -> str | None:
        """The status line for a base a client named that cannot be managed (the default, or none such
        that this grant may see); None when it can."""
        if kb == DEFAULT:
            return _status("warn", t("kb.default_fixed", lang))
        if not isinstance(kb, str) or not kb or kb not in self.bases.names() or not grant.may_read(kb):
            return _status("error", t("kb.unknown", lang, name=str(kb)[:80]))
        return None

    def _dropdowns(self, grant: Grant, kb: Any, chat_kbs: Any, rt_base: Any,
                   renamed: tuple[str, str] | None = None) -> tuple:
        """Every base dropdown of the page (documents tab, chat, retrieval tab) as the bases are now, as
        ``grant`` may see them."""
        names = self.gate.names(grant)
        return (base_choices(self.bases, kb, renamed=renamed, names=names),
                base_choices(self.bases, chat_kbs, True, renamed, names=names),
                base_choices(self.bases, rt_base, renamed=renamed, names=names))

    # ---- create and rename: (status, the name box, the documents tab's, chat's and retrieval tab's bases) ----
    def create(self, name: Any, key: Any, kb: Any, chat_kbs: Any, rt_base: Any, request: gr.Request = None, lang: Any = None) -> tuple:
        lang = request_lang(request, lang)
        skip = (gr.skip(),) * 4
        grant, refused = self._managing(request, key, lang)
        if grant is None:
            return refused, *skip
        name = name.strip() if isinstance(name, str) else name
        if not name:
            return _status("warn", t("kb.name_needed", lang)), *skip
        try:
            self.bases.create(name)
        except RagError as exc:
            return _status("error", t("kb.create_failed", lang, error=localized(exc, lang))), *skip
        return _status("ok", t("kb.created", lang, name=name)), "", *self._dropdowns(grant, name, chat_kbs, rt_base)

    def rename(self, new: Any, key: Any, kb: Any, chat_kbs: Any, rt_base: Any, request: gr.Request = None, lang: Any = None) -> tuple:
        lang = request_lang(request, lang)
        skip = (gr.skip(),) * 4
        grant, refused = self._managing(request, key, lang)
        if grant is None:
            return refused, *skip
        if not kb:
            return _status("warn", t("kb.choose", lang)), *skip
        if problem := self._existing(grant, kb, lang):
            return problem, *skip
        new = new.strip() if isinstance(new, str) else new
        if not new:
            return _status("warn", t("kb.name_needed", lang)), *skip
        try:
            self.bases.rename(kb, new)
            self.gate.access.rename_base(kb, new)  # the keys that could read or write it still can
        except RagError as exc:
            return _status("error", t("kb.rename_failed", lang, error=localized(exc, lang))), *skip
        return _status("ok", t("kb.renamed", lang, old=kb, new=new)), "", \
            *self._dropdowns(grant, kb, chat_kbs, rt_base, renamed=(kb, new))

    # ---- the confirmation row: (row, its text, pending, status) ----
    def ask_delete_doc(self, doc_id: Any, key: Any, kb: Any, request: gr.Request = None, lang: Any = None) -> tuple:
        lang = request_lang(request, lang)
        kb = kb if isinstance(kb, str) and kb else DEFAULT
        try:
            rag = self.gate.write(request, key, kb)
        except RagError as exc:
            return _closed(_status("error", localized(exc, lang)))
        if not doc_id or not isinstance(doc_id, str):
            return _closed(_status("warn", t("docs.choose_doc", lang)))
        try:
            entry = next((d for d in rag.documents() if d["doc_id"] == doc_id), None)
        except RagError as exc:
            return _closed(_status("error", t("docs.delete_failed", lang, error=localized(exc, lang))))
        if entry is None:
            return _closed(_status("error", t("docs.delete_failed", lang, error=t("docs.not_there", lang, name=doc_id))))
        text = t("confirm.doc", lang, name=doc_id, n=int(entry.get("chunks", 0)))
        return _opened(text, {"kind": "doc", "kb": kb, "doc": doc_id})

    def ask_delete_base(self, key: Any, kb: Any, request: gr.Request = None, lang: Any = None) -> tuple:
        lang = request_lang(request, lang)
        grant, refused = self._managing(request, key, lang)
        if grant is None:
            return _closed(refused)
        if not kb:
            return _closed(_status("warn", t("kb.choose", lang)))
        if problem := self._existing(grant, kb, lang):
            return _closed(problem)
        try:
            rag = self.bases.get(kb)
            docs, chunks = len(rag.documents()), rag.size
        except RagError:  # damaged: it can still be deleted, its size is unknown
            docs, chunks = "?", "?"
        return _opened(t("confirm.base", lang, name=kb, docs=docs, chunks=chunks), {"kind": "base", "kb": kb})

    def cancel(self, request: gr.Request = None, lang: Any = None) -> tuple:
        return _closed(_status("ok", t("confirm.cancelled", request_lang(request, lang))))

    # ---- Confirm: (row, pending, status, table, delete picker, browser picker, summary, and the three base pickers) ----
    def confirm(self, pending: Pending, key: Any, kb: Any, chat_kbs: Any, rt_base: Any,
                request: gr.Request = None, lang: Any = None) -> tuple:
        lang = request_lang(request, lang)
        unchanged = (gr.skip(),) * 7

        def closed(status: str) -> tuple:
            return gr.update(visible=False), None, status

        if not isinstance(pending, dict) or pending.get("kind") not in ("doc", "base") or \
                not all(isinstance(pending.get(k), str) for k in (("kb", "doc") if pending["kind"] == "doc" else ("kb",))):
            return *closed(_status("warn", t("confirm.stale", lang))), *unchanged
        target = pending["kb"]
        if pending["kind"] == "doc":
            try:  # asked with a key that could; checked again now: it may have been revoked since
                delete_document(self.gate.write(request, key, target), pending["doc"])
            except RagError as exc:
                return *closed(_status("error", t("docs.delete_failed", lang, error=localized(exc, lang)))), \
                    *self.doc_state(target, request, lang), *(gr.skip(),) * 3
            return *closed(_status("ok", t("docs.deleted", lang, name=pending["doc"]))), \
                *self.doc_state(target, request, lang), *(gr.skip(),) * 3
        grant, refused = self._managing(request, key, lang)
        if grant is None:
            return *closed(refused), *unchanged
        if problem := self._existing(grant, target, lang):
            return *closed(problem), *unchanged
        try:
            self.bases.delete(target)
        except RagError as exc:
            return *closed(_status("error", t("kb.delete_failed", lang, error=localized(exc, lang)))), *unchanged
        shown = kb if kb != target else DEFAULT
        return *closed(_status("ok", t("kb.deleted", lang, name=target))), *self.doc_state(shown, request, lang), \
            *self._dropdowns(grant, shown, chat_kbs, rt_base)


def _opened(text: str, pending: dict[str, str]) -> tuple:
    return gr.update(visible=True), render.status_html([("warn", text)]), pending, ""


def _closed(status: str) -> tuple:
    return gr.update(visible=False), "", None, status


__all__ = ["Manager", "Pending"]
