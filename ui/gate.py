"""Who may do what on the chat page: the Gradio events' side of ``rag.access``.

Every event that reads a knowledge base (ask, the retrieval test, the documents list, the chunk browser,
feedback) or writes one (upload, delete a document, create, rename or delete a base) asks ``Gate`` with
its ``gr.Request``: the caller's grant is ``Access.grant_of`` of the request's headers, which carry the
chat's ``rag_session`` cookie once a key was typed in a key box (``SESSION_JS`` posts it to
``/api/session``). A writing event also takes the documents tab's key box: a key typed there is that
key's grant (the file box's upload needs the cookie anyway). Events are sent by any client, so the
checks are here, not in the pickers: a base the grant may not read is refused as if it did not exist
(its name never shown), and the pickers list only the readable bases.
"""

from __future__ import annotations

from typing import Any

from rag.access import ANONYMOUS, Access, Grant, supplied_key
from rag.bases import DEFAULT, KnowledgeBases
from rag.errors import KnowledgeBaseNotFoundError
from rag.pipeline import RAG
from ui.texts import Refusal


class Gate:
    """The page's access checks over one server's bases (``access``: the server's ``rag.access.Access``)."""

    def __init__(self, access: Access, bases: KnowledgeBases) -> None:
        self.access = access
        self.bases = bases

    # ---- who asks ----
    def grant(self, request: Any, key: Any = None) -> Grant | None:
        """The caller's grant: the typed ``key``'s if there is one, else the request's (its key header or session
        cookie), else the anonymous one; None for a wrong or revoked key (typed or in a header)."""
        if isinstance(key, str) and key.strip():
            return self.access.grant_for_key(key.strip())
        if key is not None and not isinstance(key, str):  # a client sent a number, a list…: no key of ours
            return None
        headers = getattr(request, "headers", None) if request is not None else None
        if headers is None:  # called in-process (no HTTP request): the keyless caller
            return self.access.grant_for_key(None)
        grant = self.access.grant_of(headers)
        if grant is None and not supplied_key(headers):
            # only a session cookie, one this server no longer knows (restarted, expired, its key revoked):
            # the page goes on as a caller without a key, who can type one again, rather than refusing
            # every read; it gains nothing a caller without the cookie would not have
            return self.access.grant_for_key(None)
        return grant

    def caller(self, request: Any, key: Any = None) -> Grant:
        """``grant``, or ``Refusal`` for a key that is not accepted."""
        grant = self.grant(request, key)
        if grant is None:
            raise Refusal("access.bad_key")
        return grant

    # ---- what it sees ----
    def names(self, grant: Grant | None) -> list[str]:
        """The usable bases this grant may read, the default first when it may (what the pickers offer)."""
        return [] if grant is None else grant.readable(self.bases.usable_names())

    def names_for(self, request: Any) -> list[str]:
        return self.names(self.grant(request))

    def read(self, request: Any, name: Any) -> RAG:
        """The base ``name`` for reading (None: the default), or why not."""
        return self.readable(self.caller(request), name)

    def readable(self, grant: Grant, name: Any) -> RAG:
        name = DEFAULT if name is None or name == "" else name
        if not isinstance(name, str) or not grant.may_read(name):
            raise KnowledgeBaseNotFoundError("kb.not_readable", name=str(name)[:80])
        try:
            return self.bases.get(name)
        except KnowledgeBaseNotFoundError:  # a scope may name a base that is gone: its message lists every base
            raise KnowledgeBaseNotFoundError("kb.not_readable", name=name[:80]) from None

    def read_many(self, request: Any, names: Any) -> list[str]:
        """The bases a question asks (checked: each readable); [] for the default alone."""
        grant = self.caller(request)
        wanted = names if isinstance(names, list) else [] if names in (None, "") else [names]
        for name in wanted or [DEFAULT]:
            self.readable(grant, name)
        return wanted

    def write(self, request: Any, key: Any, name: Any) -> RAG:
        """The base ``name`` for writing (uploads, deletes), or why not."""
        grant = self.caller(request, key)
        name = DEFAULT if name is None or name == "" else name
        rag = self.readable(grant, name)
        if not grant.may_write(name):
            if grant.name == ANONYMOUS:  # no key given where one is needed
                raise Refusal("access.key_needed")
            self.access.require_write(grant, name)  # the library's words: may read, not change
        return rag

    def manage(self, request: Any, key: Any) -> Grant:
        """A grant that may create, rename and delete bases, or why not."""
        grant = self.caller(request, key)
        if not grant.manage:
            if grant.name == ANONYMOUS:
                raise Refusal("access.key_needed")
            self.access.require_manage(grant)
        return grant


__all__ = ["Gate"]
