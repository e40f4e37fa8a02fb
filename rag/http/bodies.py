"""The JSON bodies of the HTTP API: what a request may carry, and the one shape of every error."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from rag.config import RetrievalMode

Retrieval = RetrievalMode  # the modes the setting `retrieval` takes, named in rag.config only
KB_FIELD = Field(None, description='the knowledge base to ask (GET /api/kbs), or a list of them: their passages are '
                                   'fused by score and each says its base; default: the server\'s own ("default")')


class AskRequest(BaseModel):
    question: str = Field(description="the question (at most max_question_chars characters)")
    top_k: int | None = Field(None, ge=1, le=50, description="passages given to the generator (default: the top_k setting)")
    generator: str | None = Field(
        None, max_length=200,
        description='one of the generators this server allows (GET /health: "generators"); default: the configured one')
    history: list[Any] | None = Field(None, description='earlier turns: [{"role": "user"|"assistant", "content": "..."}]')
    retrieval: Retrieval | None = None
    filters: dict[str, str] | None = Field(
        None, description='metadata filters: {"doc": "a*.txt", "article": "…", "date_from": "2023-01-01", "date_to": "…"}')
    kb: str | list[str] | None = KB_FIELD


class ErrorBody(BaseModel):
    error: str


class SearchRequest(BaseModel):
    question: str
    top_k: int | None = Field(None, ge=1, le=50)
    retrieval: Retrieval | None = None
    filters: dict[str, str] | None = None
    kb: str | list[str] | None = KB_FIELD
    explain: bool = Field(False, strict=True, description="add each passage's score breakdown (dense, BM25, fused, re-rank) as \"explain\"")
    lexical_weight: float | None = Field(
        None, ge=0.0, le=1.0, allow_inf_nan=False, strict=True,
        description="hybrid fusion: the share of the normalised BM25 score (default 0.7), scaled by the query's coverage")
    rerank: bool | None = Field(None, strict=True, description="re-rank by the question's distinctive terms (default: on)")


class CreateBaseRequest(BaseModel):
    name: str = Field(description="letters, digits, _ and -, starting with a letter or digit (at most 64 characters "
                                  "and 245 bytes of UTF-8: a Chinese letter takes 3)")


__all__ = ["AskRequest", "CreateBaseRequest", "ErrorBody", "Retrieval", "SearchRequest"]
