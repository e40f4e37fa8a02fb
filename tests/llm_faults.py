"""LLM servers on loopback that fail: before the first token, or midway through a stream."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from openai_server import FakeOpenAI

QUESTION = "蓝风微短剧基地从签约到试运营用了多少天？"


class FailsMidStream(FakeOpenAI):
    """Streams the first pieces of its answer, then an error event, as a server does when generation dies."""

    pieces = 3  # of 4 characters each (see FakeOpenAI._stream)

    def _handler(self):
        base = super()._handler()

        class Handler(base):
            def _stream(self, text: str, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for i in range(0, 4 * FailsMidStream.pieces, 4):
                    delta = {"content": text[i : i + 4]}
                    self._event({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}, model)
                self.wfile.write(b'data: {"error": {"message": "engine died", "type": "server_error"}}\n\n')
                self.wfile.flush()

        return Handler

LLM_ANSWER = "蓝风微短剧基地从签约到试运营仅用时47天[1]。"

PARTIAL = LLM_ANSWER[: 4 * FailsMidStream.pieces]  # what FailsMidStream sends of it before it fails


@contextmanager
def failing_llm(when: str, monkeypatch) -> Iterator[FakeOpenAI]:
    """An OpenAI-compatible server on localhost that fails ``before`` the first token or ``midway``."""
    server = (FailsMidStream if when == "midway" else FakeOpenAI)(lambda messages: LLM_ANSWER)
    server.mode = "ok" if when == "midway" else "http500"
    with server:
        for name, value in {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "test-key",
                            "RAG_LLM_TIMEOUT": "2", "RAG_LLM_RETRIES": "0"}.items():
            monkeypatch.setenv(name, value)
        yield server
