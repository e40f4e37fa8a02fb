"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions API, for tests.

It answers with whatever ``responder(messages)`` returns, plainly or as server-sent
events, records every request, and can be told to fail the way real servers do.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    def __init__(self, responder: Callable[[list[dict[str, Any]]], str]) -> None:
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self.mode = "ok"  # ok | http500 | http429 | slow | garbage | empty
        self.delay = 0.0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.requests.append(body)
                if fake.mode == "http500":
                    return self._json(500, {"error": {"message": "internal error", "type": "server_error"}})
                if fake.mode == "http429":
                    return self._json(429, {"error": {"message": "rate limited", "type": "rate_limit"}})
                if fake.mode == "slow":
                    time.sleep(fake.delay)
                if fake.mode == "garbage":
                    raw = b"<html>this is not json"
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                    return None
                text = "" if fake.mode == "empty" else fake.responder(body.get("messages", []))
                if body.get("stream"):
                    return self._stream(text, body.get("model", "m"))
                return self._json(200, {
                    "id": "c1", "object": "chat.completion", "created": 0, "model": body.get("model", "m"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })

            def _json(self, status: int, obj: dict[str, Any]) -> None:
                raw = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, text: str, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
                for piece in pieces:
                    self._event({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}, model)
                self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, model)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, obj: dict[str, Any], model: str) -> None:
                obj = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": model, **obj}
                self.wfile.write(b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n")
                self.wfile.flush()

        return Handler


def prompt_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("content", "") if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
                     for m in messages)


def passage_numbers(messages: list[dict[str, Any]]) -> dict[int, str]:
    """Passage number → text, parsed back out of the prompt the project sent."""
    import re

    text = prompt_text(messages)
    blocks = re.split(r"\n(?=\[\d+\] \(来源 source:)", text)
    out = {}
    for b in blocks:
        m = re.match(r"\[(\d+)\] \(来源 source: [^)]*\)\n(.*)", b.strip(), re.S)
        if m:
            out[int(m.group(1))] = m.group(2).split("\n\n问题 Question:")[0]
    return out
