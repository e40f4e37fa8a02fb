"""A raw Gradio client for attack tests: the queue requests a browser would send, with any payload.

The official ``gradio_client`` validates what it sends; an attacker does not, so the tests speak
the wire protocol themselves: ``POST /gradio_api/queue/join`` with the event's ``fn_index`` and
``data``, then read ``GET /gradio_api/queue/data`` (server-sent events) until the event completes.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx


def fn_index(base: str, api_name: str) -> tuple[int, int]:
    """The ``fn_index`` and trigger id of the event named ``api_name`` in the app's config."""
    config = httpx.get(f"{base}/config", timeout=30).json()
    for i, dep in enumerate(config["dependencies"]):
        if dep.get("api_name") == api_name:
            return dep.get("id", i), dep["targets"][0][0]
    raise KeyError(f"no event named {api_name!r}")


def call(base: str, api_name: str, data: list[Any], *, headers: dict[str, str] | None = None,
         timeout: float = 120.0, session: str | None = None) -> dict[str, Any]:
    """Run one event through the queue; returns ``{"join": response, "result": last message or None}``.

    ``session`` (a page's ``session_hash``) runs it in that page's session, as a page's second
    event is; by default each call is a new page."""
    fn, trigger = fn_index(base, api_name)
    session = session or new_session()
    body = {"data": data, "fn_index": fn, "trigger_id": trigger, "session_hash": session, "event_data": None}
    join = httpx.post(f"{base}/gradio_api/queue/join", json=body, headers=headers or {}, timeout=30)
    if join.status_code != 200:
        return {"join": join, "result": None}
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session},
                      headers=headers or {}, timeout=timeout) as stream:
        for line in stream.iter_lines():
            if time.monotonic() > deadline:
                break
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("msg") == "process_completed":
                return {"join": join, "result": msg}
    return {"join": join, "result": None}


def new_session() -> str:
    """A ``session_hash`` as the page makes one."""
    return uuid.uuid4().hex[:11]


def close_page(base: str, session: str, timeout: float = 30.0) -> None:
    """Open the page's heartbeat connection and close it, as closing the tab does (Gradio then runs
    the app's ``unload`` events for ``session``)."""
    with httpx.stream("GET", f"{base}/gradio_api/heartbeat/{session}", timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                return
