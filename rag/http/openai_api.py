"""The OpenAI chat API over the pipeline: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Any OpenAI client (the ``openai`` package, Open WebUI, LobeChat, Chatbox) can then ask the index:
the last user message is the question, the earlier user/assistant messages its history (system
messages are the client's own and are not sent to retrieval). The reply's text ends with the
numbered sources, so a client that knows nothing of them still shows them; ``references`` (the
citations, as in RAGFlow's API) and ``abstained`` come as extra fields of the response and of the
last stream chunk. Chat apps render the reply as Markdown, so what comes from a document (file names,
articles, quotes, an extractive answer's quoted words) is escaped to show as plain text
(``rag.http.plain``); an LLM's own Markdown is kept. Each source line ends with a link to the cited
place in the source viewer (absolute: ``public_url``, else the address the request came to); ``usage``
is counted with tiktoken (and sent last in a stream when ``stream_options.include_usage`` asks); the
model ``kb:news,kb:policy`` asks several knowledge bases at once. Errors have OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``,
set by ``rag.http.app``'s handlers for ``/v1/`` paths). A key (``Authorization: Bearer``) is required on these
routes whenever the server has one (``RAG_API_KEY`` or a keys file), and a key sees, lists and asks only the
knowledge bases it may read (``rag.access``): another base's model is "does not exist", as an absent one.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from rag.access import BasesView
from rag.bases import DEFAULT, model_id, name_of_model
from rag.config import Settings
from rag.errors import AccessDeniedError, ConfigError, IndexCorruptError, KnowledgeBaseNotFoundError, RagError
from rag.http.auth import Bases
from rag.http.plain import escape_markdown, plain_answer
from rag.http.redact import public_message
from rag.http.viewer import view_url
from rag.text.tokens import count_tokens
from rag.types import Answer

MODEL_ID = model_id(DEFAULT)  # the server's own knowledge base; kb:<name> for the others


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False  # OpenAI's: a last chunk with the token counts, its choices empty


class ChatRequest(BaseModel):
    model: str = Field(max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    # Accepted and ignored, as the pipeline decides them: OpenAI clients send these by default.
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    user: str | None = Field(None, max_length=200)
    stream_options: StreamOptions | None = None


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


def sources_text(answer: Answer, base_url: str = "") -> str:
    """The numbered sources appended to the reply: file, article, quoted sentence, each one line of plain
    text in Markdown (a document's ``[x](javascript:…)`` or ``<img onerror>`` is shown, not rendered),
    and, with ``base_url``, a link to the cited place in the source viewer (the only live Markdown)."""
    lines = []
    for c in answer.citations:
        article = f" 《{escape_markdown(c.article, one_line=True)}》" if c.article else ""
        base = f"{escape_markdown(c.kb, one_line=True)} · " if c.kb else ""
        link = f" ([原文 view]({source_link(base_url, c)}))" if base_url else ""
        lines.append(f"[{c.n}] {base}{escape_markdown(c.doc_id, one_line=True)}{article}: "
                     f"{escape_markdown(c.quote, one_line=True)}{link}")
    return ("\n\n来源 Sources:\n" + "\n".join(lines)) if lines else ""


def source_link(base_url: str, c: Any) -> str:
    """The absolute viewer URL of a citation; percent-encoded (no space or parenthesis can end the link)."""
    kb = c.kb if c.kb and c.kb != DEFAULT else None
    return base_url.rstrip("/") + view_url(c.doc_id, kb, start=c.start, end=c.end) + "#cited"


def usage(messages: list[ChatMessage], reply: str) -> dict[str, int]:
    """OpenAI's ``usage``: the messages' and the reply's tokens, counted with tiktoken (cl100k_base)."""
    prompt = sum(count_tokens(text_of(m)) for m in messages)
    completion = count_tokens(reply)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def reply_text(answer: Answer) -> str:
    """The answer as the reply shows it: what it quotes of the documents escaped (see ``sources_text``)."""
    return plain_answer(answer.answer, (c.quote for c in answer.citations))


def _extra(answer: Answer) -> dict[str, Any]:
    return {"references": [c.to_dict() for c in answer.citations], "abstained": answer.abstained,
            "answer_span": answer.answer_span}


def _completion(answer: Answer, model: str, messages: list[ChatMessage], base_url: str) -> dict[str, Any]:
    content = reply_text(answer) + sources_text(answer, base_url)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": usage(messages, content), **_extra(answer),
    }


def stream_chunks(events: Iterator[Any], model: str, base_url: str = "",
                  messages: list[ChatMessage] | None = None) -> Iterator[str]:
    """OpenAI ``chat.completion.chunk`` events: the role, the answer's text as it comes, the sources, ``[DONE]``.

    The pipeline's final answer is authoritative (a failed LLM's partial text is replaced by the
    extractive answer): what was streamed and differs from it is followed by the final text. Each
    piece is sent when the next one comes: the last piece, the whole text of an extractive answer
    (or of the fallback after an LLM failed), is sent as ``reply_text`` shows it, quotes escaped.
    With ``messages`` (the client asked for ``stream_options.include_usage``) a last chunk carries ``usage``."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    streamed, held, sent = "", "", ""
    try:
        for event in events:
            if event.type == "token" and event.text:
                if held:
                    streamed += held
                    sent += held
                    yield chunk({"content": held})
                held = event.text
            elif event.type == "answer" and event.answer is not None:
                answer, final = event.answer, reply_text(event.answer)
                tail = final[len(streamed):] if final.startswith(streamed) else "\n\n" + final
                last = tail + sources_text(answer, base_url)
                sent += last
                yield chunk({"content": last})
                yield chunk({}, "stop", **_extra(answer))
                if messages is not None:
                    body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                            "choices": [], "usage": usage(messages, sent)}
                    yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
    except Exception as exc:  # after the 200: an error chunk in OpenAI's shape, then the end
        message = public_message(str(exc)) if isinstance(exc, RagError) else f"internal error ({type(exc).__name__})"
        yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error', 'param': None, 'code': None}})}\n\n"
    yield "data: [DONE]\n\n"


def add_openai_routes(app: FastAPI, settings: Settings) -> None:
    """``GET /v1/models`` (one model per knowledge base the key may read) and ``POST /v1/chat/completions``."""

    @app.get("/v1/models", tags=["openai"])
    def models(bases: Bases) -> dict[str, Any]:
        """``rag`` (the server's own knowledge base) and ``kb:<name>`` for each other one that can be asked,
        of those the key may read."""
        bases.require_key()
        data = [{"id": model_id(n), "object": "model", "created": 0, "owned_by": "rag"} for n in bases.usable_names()]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", tags=["openai"], response_model=None)
    def chat_completions(req: ChatRequest, request: Request, bases: Bases) -> dict[str, Any] | StreamingResponse:
        """The last user message answered by the pipeline, sources appended (each with a link to the cited
        place in the source viewer), ``usage`` counted; ``stream`` for SSE chunks. The model ``rag`` is the
        server's own knowledge base, ``kb:NAME`` another, ``kb:news,kb:policy`` several asked together."""
        bases.require_key()
        rag, named = _bases_of_model(bases, req.model)
        question, history = question_and_history(req.messages)
        generator = settings.check_network_generator(None)
        # the host was checked by the guard (allowed hosts), so the request's own address is safe to link to
        base_url = settings.public_url or str(request.base_url)
        if not req.stream:
            answer = rag.ask(question, history=history, generator=generator, bases=named)
            return _completion(answer, req.model, req.messages, base_url)
        events = rag.ask_stream(question, history=history, generator=generator, bases=named)
        first = next(events)  # bad input raises here, before the 200 is sent (stream_chunks skips the sources)
        counted = req.messages if req.stream_options and req.stream_options.include_usage else None
        return StreamingResponse(stream_chunks(itertools.chain([first], events), req.model, base_url, counted),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


MAX_MODEL_BASES = 8  # bases one model id may name (each is searched for every question)


def _bases_of_model(bases: BasesView, model: str) -> tuple[Any, list[tuple[str, Any]] | None]:
    """The RAG that answers for a model id and the named bases it asks (``RAG.ask``'s ``bases``): ``rag``
    asks the default alone; ``kb:a,kb:b`` (or ``rag,kb:b``) asks several together, fused by score."""
    ids = [m.strip() for m in model.split(",")]
    if len(ids) > MAX_MODEL_BASES:
        raise HTTPException(400, f"the model {model[:80]!r} names {len(ids)} knowledge bases; at most {MAX_MODEL_BASES}")
    found = [(name, _base_of_model(bases, m, name)) for m in ids for name in [name_of_model(m)]]
    named = list(dict(found).items())  # in the order given, without repeats
    if len(named) == 1 and named[0][0] == DEFAULT:
        return named[0][1], None
    return named[0][1], named


def _base_of_model(bases: BasesView, model: str, name: str | None) -> Any:
    """The RAG a model id names: 404 for none (``kb:../x`` is none: the name is checked; a base the key may
    not read is none), 503 for a base that exists but cannot be opened (a damaged one is not "does not exist")."""
    if name:
        try:
            return bases.get(name)
        except AccessDeniedError:
            raise
        except (KnowledgeBaseNotFoundError, ConfigError):
            pass
        except RagError as exc:
            detail = public_message(str(exc), bases.folders())  # a damaged one: "knowledge base 'x' is damaged: …"
            why = detail if isinstance(exc, IndexCorruptError) else f"its knowledge base {name!r} cannot be opened ({detail})"
            raise HTTPException(503, f"the model {model!r} is unavailable: {why}; available: {_available(bases)}",
                                headers={"Retry-After": "60"}) from None
    raise HTTPException(404, f"the model {model!r} does not exist; available: {_available(bases)}")


def _available(bases: BasesView) -> str:
    return ", ".join(model_id(n) for n in bases.usable_names())


__all__ = ["MODEL_ID", "add_openai_routes", "question_and_history", "reply_text", "source_link", "sources_text", "stream_chunks",
           "usage"]
