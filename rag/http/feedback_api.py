"""``POST /api/feedback``: a rating of an answer, stored in its knowledge base's ``feedback.jsonl``.

There is deliberately no ``GET /api/feedback``: feedback holds what users typed (questions,
reasons, corrections), which is not every other client's to read; turning it into a question set
is a local job (``rag feedback export``). Anyone who may ask a knowledge base may rate its answers: the
request's key must read the base (``rag.access``; with ``RAG_API_KEY`` alone, no key is needed). ``rag.http.guard.Guard`` still bounds the body (1 MB) and refuses cross-site posts.

A full feedback file is **507 Insufficient Storage**, not 413: the request itself is small and
well-formed, it is the store that cannot take more (``max_feedback_mb``) until the operator exports
and clears it, so retrying a smaller body would not help (``FeedbackFullError.http_status``, answered
by the app's ``RagError`` handler).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from rag.feedback import (
    MAX_CORRECTION,
    MAX_IDS,
    MAX_KB_CHARS,
    MAX_KBS,
    MAX_REASON,
    MAX_SETTINGS,
    check_name,
    max_feedback_bytes,
    record_feedback,
)
from rag.http.auth import Bases


class FeedbackRequest(BaseModel):
    """The body of ``POST /api/feedback``; every field is checked again by ``rag.feedback`` (lengths, control
    characters, lone surrogates), the limits here are for the schema."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kb: str | None = Field(None, max_length=MAX_KB_CHARS,
                           description="the knowledge base to store it in (default: the server's)")
    rating: Literal["up", "down"]
    reason: str | None = Field(None, max_length=MAX_REASON)
    corrected_answer: str | None = Field(None, max_length=MAX_CORRECTION, description="what the answer should be")
    not_in_documents: bool = Field(False, description="the documents do not hold the answer")
    question: str
    answer: str = Field("", description="the answer text that was given")
    abstained: bool = False
    chunk_ids: list[str] = Field(default_factory=list, max_length=MAX_IDS, description="the passages' chunk ids")
    doc_ids: list[str] = Field(default_factory=list, max_length=MAX_IDS, description="the passages' document ids")
    cited_doc_ids: list[str] = Field(default_factory=list, max_length=MAX_IDS, description="documents cited")
    kbs: list[str] = Field(default_factory=list, max_length=MAX_KBS, description="knowledge bases asked")
    # values checked by rag.feedback, whose message names the key ("settings.top_k must be a string, number, …")
    settings: dict[str, Any] = Field(default_factory=dict, max_length=MAX_SETTINGS,
                                     description="JSON scalars it was asked with: top_k, retrieval, generator, …")


class FeedbackStored(BaseModel):
    id: str
    stored: bool


def add_feedback_routes(app: FastAPI) -> None:
    """``POST /api/feedback`` on ``app``: the record goes to the index folder of the knowledge base ``kb``
    (None: the default), which the request's key must be able to read (``rag.http.auth.Bases``; an unknown or
    unreadable name raises a ``RagError``, answered by the app's handlers)."""


    @app.post("/api/feedback", tags=["feedback"], status_code=201, response_model=FeedbackStored,
              responses={507: {"description": "the feedback file is full (max_feedback_mb)"}})
    def post_feedback(req: FeedbackRequest, bases: Bases) -> dict[str, Any]:
        """Store a rating of an answer (👍/👎, a reason, a correction, or "not in the documents")."""
        rag = bases.get(_kb_name(req.kb))
        entry = req.model_dump(exclude={"kb"})
        record = record_feedback(rag.index_dir, entry, max_bytes=max_feedback_bytes(rag.settings.max_feedback_mb))
        return {"id": record["id"], "stored": True}


def _kb_name(kb: str | None) -> str | None:
    """``kb`` checked before it reaches ``resolve``, which may use it as a name on disk."""
    return None if kb is None else check_name("kb", kb, MAX_KB_CHARS)


__all__ = ["FeedbackRequest", "add_feedback_routes"]
