"""The OpenAI chat API over the pipeline: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Any OpenAI client (the ``openai`` package, Open WebUI, LobeChat, Chatbox) can then ask the index:
the last user message is the question, the earlier user/assistant messages its history (system
messages are the client's own and are not sent to retrieval). The reply's text ends with the
numbered sources, so a client that knows nothing of them still shows them; ``references`` (the
citations, as in RAGFlow's API) and ``abstained`` come as extra fields of the response and of the
last stream chunk. Errors have OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``,
set by ``rag.http.app``'s handlers for ``/v1/`` paths); ``RAG_API_KEY`` is required as
``Authorization: Bearer`` on these routes, when the server sets one.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from rag.errors import RagError
from rag.storage.bases import DEFAULT, KnowledgeBases, model_id, name_of_model
from rag.types import Answer

MODEL_ID = model_id(DEFAULT)  # the server's own knowledge base; kb:<name> for the others


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model: str = Field(max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    # Accepted and ignored, as the pipeline decides them: OpenAI clients send these by default.
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    user: str | None = Field(None, max_length=200)


def text_of(message: ChatMessage) -> str:
    """A message's text: a string, or the ``text`` parts of a list of content parts."""
    if isinstance(message.content, str):
        return message.content
    parts = [p.get("text") for p in message.content or [] if isinstance(p, dict) and p.get("type") == "text"]
    return "\n".join(p for p in parts if isinstance(p, str))


def question_and_history(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    if messages[-1].role != "user":
        raise HTTPException(400, "the last message must be the user's question")
    question = text_of(messages[-1])
    history = [{"role": m.role, "content": text_of(m)} for m in messages[:-1] if m.role in ("user", "assistant")]
    return question, history


def sources_text(answer: Answer) -> str:
    """The numbered sources appended to the reply: file, article, quoted sentence."""
    lines = []
    for c in answer.citations:
        article = f" 《{c.article}》" if c.article else ""
        base = f"{c.kb} · " if c.kb else ""
        lines.append(f"[{c.n}] {base}{c.doc_id}{article}: {c.quote}")
    return ("\n\n来源 Sources:\n" + "\n".join(lines)) if lines else ""


def _extra(answer: Answer) -> dict[str, Any]:
    return {"references": [c.to_dict() for c in answer.citations], "abstained": answer.abstained,
            "answer_span": answer.answer_span}


def _completion(answer: Answer, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer + sources_text(answer)},
                     "finish_reason": "stop"}],
        **_extra(answer),
    }


def _chunks(events: Iterator[Any], model: str) -> Iterator[str]:
    """OpenAI ``chat.completion.chunk`` events: the role, the answer's text as it comes, the sources, ``[DONE]``.

    The pipeline's final answer is authoritative (a failed LLM's partial text is replaced by the
    extractive answer): what was streamed and differs from it is followed by the final text."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    streamed = ""
    try:
        for event in events:
            if event.type == "token" and event.text:
                streamed += event.text
                yield chunk({"content": event.text})
            elif event.type == "answer" and event.answer is not None:
                answer = event.answer
                tail = answer.answer[len(streamed):] if answer.answer.startswith(streamed) else "\n\n" + answer.answer
                yield chunk({"content": tail + sources_text(answer)})
                yield chunk({}, "stop", **_extra(answer))
    except Exception as exc:  # after the 200: an error chunk in OpenAI's shape, then the end
        message = str(exc) if isinstance(exc, RagError) else f"internal error ({type(exc).__name__})"
        yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error', 'param': None, 'code': None}})}\n\n"
    yield "data: [DONE]\n\n"


def add_openai_routes(app: FastAPI, bases: KnowledgeBases, key_check: Any) -> None:
    """``GET /v1/models`` (one model per knowledge base) and ``POST /v1/chat/completions``, behind ``key_check``."""
    guarded = [Depends(key_check)]
    settings = bases.default.settings

    @app.get("/v1/models", tags=["openai"], dependencies=guarded)
    def models() -> dict[str, Any]:
        """``rag`` (the server's own knowledge base) and ``kb:<name>`` for each other one."""
        data = [{"id": model_id(n), "object": "model", "created": 0, "owned_by": "rag"} for n in bases.names()]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", tags=["openai"], dependencies=guarded, response_model=None)
    def chat_completions(req: ChatRequest) -> dict[str, Any] | StreamingResponse:
        """The last user message answered by the pipeline, sources appended; ``stream`` for SSE chunks."""
        name, rag = name_of_model(req.model), None
        if name:
            try:
                rag = bases.get(name)  # the name is checked there: kb:../x is no base
            except RagError:
                rag = None
        if rag is None:
            available = ", ".join(model_id(n) for n in bases.names())
            raise HTTPException(404, f"the model {req.model!r} does not exist; available: {available}")
        named = None if name == DEFAULT else [(name, rag)]
        question, history = question_and_history(req.messages)
        generator = settings.check_network_generator(None)
        if not req.stream:
            return _completion(rag.ask(question, history=history, generator=generator, bases=named), req.model)
        events = rag.ask_stream(question, history=history, generator=generator, bases=named)
        first = next(events)  # bad input raises here, before the 200 is sent (_chunks skips the sources)
        return StreamingResponse(_chunks(itertools.chain([first], events), req.model), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


__all__ = ["MODEL_ID", "add_openai_routes", "question_and_history", "sources_text"]
