"""Test servers on loopback: a free port, an ASGI app served by uvicorn in a thread, server-sent events parsed."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app):
    """``app`` served by uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


def parse_sse(text: str) -> list[dict]:
    events = []
    for block in text.split("\n\n"):
        lines = [ln[len("data: "):] for ln in block.splitlines() if ln.startswith("data: ")]
        if lines:
            events.append(json.loads("\n".join(lines)))
    return events


def client_from(address: str, **kwargs) -> httpx.Client:
    """An HTTP client whose connections come from the loopback ``address`` (127.0.0.2, …): another
    client as far as the server can tell, without leaving the machine."""
    assert address.startswith("127."), "loopback addresses only"
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), **kwargs)
