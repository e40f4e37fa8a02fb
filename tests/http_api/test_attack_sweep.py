"""Every route and every chat event, tried as an attacker would, with and without the key.

The routes are enumerated from the app itself (so a route added later is swept too) and each gets
the hostile inputs that found holes before: lone surrogates, four-byte names, paths, huge numbers,
malformed JSON, garbage events. Three things must hold for every reply:

- no 5xx but 503 (a base that is not ready may say so; nothing may crash),
- no server path in the reply (the index folder, the knowledge-base root, the staging folder, /tmp),
- on a keyed server, nothing a client sends without the key changes the documents or the bases.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from servers import serving

KEY = "sweep-k3y"
ODD = "\ud800"
WIDE = "𝐀" * 64  # 64 letters, 256 bytes
JSON_BODIES: list[object] = [
    {}, [], "x", 7, None,
    {"question": ODD}, {"question": "x", "filters": {ODD: "x"}}, {"question": "x", "filters": {"doc": ODD}},
    {"question": "x", "kb": "../../etc"}, {"question": "x", "kb": WIDE}, {"question": "x", "kb": [WIDE, ODD]},
    {"question": "x", "top_k": 10**12}, {"question": "x", "history": [{"role": ODD, "content": ODD}]},
    {"name": WIDE}, {"name": "../x"}, {"name": "ok_" + uuid.uuid4().hex[:6]},
    {"model": "kb:" + WIDE, "messages": [{"role": "user", "content": "x"}]},
    {"model": "kb:../index", "messages": [{"role": "user", "content": ODD}]},
    {"rating": "down", "question": "x", "kb": WIDE}, {"rating": "up", "question": ODD},
]
RAW_BODIES = [b"{", b"\xff\xfe\x00garbage", b'{"question": "\\ud800"}', b"[" * 10_000]
# already percent-encoded, as they go on the wire (%ED%A0%80 is a lone surrogate's UTF-8 form)
QUERY_VALUES = ["..%2F..%2Fetc%2Fpasswd", "%00", "%ED%A0%80", quote(WIDE), "a" * 5000, "*" * 40, "-1", "9" * 30]
PATH_VALUES = ["..%2F..%2Fetc%2Fpasswd", "%00", "%ED%A0%80", WIDE, "a" * 5000, ".hidden", "default"]
# Gradio routes the chat never uses, or that would hand out a server file: each must be refused.
GRADIO_REFUSED = ["/gradio_api/process_recording", "/gradio_api/file=/etc/passwd", "/file=/etc/passwd",
                  "/gradio_api/file=../../etc/passwd", "/gradio_api/stream/x/playlist.m3u8",
                  "/gradio_api/mcp/sse", "/monitoring", "/login", "/gradio_api/component_server"]
# Others an attacker probes: refused or answered, never a crash or a path.
GRADIO_PROBED = ["/gradio_api/info", "/gradio_api/api_info", "/gradio_api/upload_progress", "/gradio_api/queue/status",
                 "/gradio_api/reset", "/logout", "/gradio_api/cancel"]


@pytest.fixture(scope="module", params=["keyed", "open"])
def server(request, index_copy, tmp_path_factory):
    """A server as `rag serve` composes it, over its own copy of the seed index and a base root."""
    from rag.http.guard import loopback_hosts
    from rag.pipeline import RAG
    from ui.server import build_app

    root = tmp_path_factory.mktemp("kbs")
    rag = RAG.open(index_copy, kb_root=str(root))
    key = KEY if request.param == "keyed" else ""
    app = build_app(rag, api_key=key, allowed_hosts=loopback_hosts("127.0.0.1", []))
    secrets = [str(Path(index_copy).resolve()), str(root.resolve()), str(app.state.staging.root), "/tmp/"]
    with serving(app) as base:
        yield {"base": base, "app": app, "key": key, "secrets": secrets}


def _state(base: str, key: str) -> tuple[list[str], list[str]]:
    headers = {"X-API-Key": key} if key else {}
    docs = httpx.get(f"{base}/api/documents", headers=headers, timeout=60).json()
    kbs = httpx.get(f"{base}/api/kbs", headers=headers, timeout=60).json()
    return sorted(d["doc_id"] for d in docs), sorted(k["name"] for k in kbs)


def _check(reply: httpx.Response, secrets: list[str], what: str) -> None:
    assert reply.status_code < 500 or reply.status_code == 503, (what, reply.status_code, reply.text[:300])
    text = reply.text
    for secret in secrets:
        assert secret not in text, (what, f"server path {secret!r} in the reply", text[:300])


def _api_routes(app) -> list[tuple[str, str]]:
    from fastapi.routing import APIRoute

    return [(method, route.path) for route in app.routes if isinstance(route, APIRoute)
            for method in sorted(route.methods)]


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


@pytest.mark.slow
def test_every_api_route_refuses_hostile_input_cleanly(server):
    base, app, key, secrets = server["base"], server["app"], server["key"], server["secrets"]
    before = _state(base, key)
    routes = _api_routes(app)
    assert len(routes) >= 18  # the sweep sees the whole API, not an empty list
    tried = 0
    with httpx.Client(timeout=120) as client:
        for method, path in routes:
            urls = [_fill(path, v) for v in PATH_VALUES] if "{" in path else [path]
            for url in urls:
                for value in QUERY_VALUES:
                    query = "&".join(f"{k}={value}" for k in ("doc", "kb", "page", "chunk", "q"))
                    _check(client.request(method, f"{base}{url}?{query}"), secrets, f"{method} {url} ?{value[:20]}")
                    tried += 1
                if method in ("POST", "PUT", "PATCH", "DELETE"):
                    for body in JSON_BODIES:
                        raw = json.dumps(body).encode()
                        r = client.request(method, base + url, content=raw, headers={"Content-Type": "application/json"})
                        _check(r, secrets, f"{method} {url} {raw[:60]!r}")
                        tried += 1
                    for raw in RAW_BODIES:
                        r = client.request(method, base + url, content=raw, headers={"Content-Type": "application/json"})
                        _check(r, secrets, f"{method} {url} raw {raw[:20]!r}")
                        tried += 1
    assert tried > 500
    if key:
        assert _state(base, key) == before  # nothing written without the key


@pytest.mark.slow
def test_hostile_uploads_without_and_with_the_key(server, tmp_path):
    import zipfile

    base, key, secrets = server["base"], server["key"], server["secrets"]
    bad_docx = tmp_path / "bad.docx"
    with zipfile.ZipFile(bad_docx, "w") as z:
        z.writestr("[Content_Types].xml", "<Types><Override></Types>")
        z.writestr("word/document.xml", "<w:document><w:body></w:document>")
    files = {
        "bad.docx": bad_docx.read_bytes(), "empty.txt": b"", "bin.txt": b"\x00\x01\x02" * 100,
        "[点此查看原文](https:evil.example).md": "正文".encode(), "../../etc/passwd.txt": b"x",
        WIDE + ".txt": "文字".encode(),
    }
    before = _state(base, key)
    for name, content in files.items():
        for headers in ({}, {"X-API-Key": "wrong"}):
            r = httpx.post(f"{base}/api/documents", files={"files": (name, content)}, headers=headers, timeout=120)
            _check(r, secrets, f"upload {name!r} {headers}")
            if key:
                assert r.status_code == 401, (name, r.status_code)
            r = httpx.post(f"{base}/gradio_api/upload", files={"files": (name, content)}, headers=headers, timeout=120)
            _check(r, secrets, f"chat upload {name!r} {headers}")
            if key:
                assert r.status_code == 401, (name, r.status_code)
    if key:
        assert _state(base, key) == before
    r = httpx.post(f"{base}/api/documents", files={"files": ("bad.docx", files["bad.docx"])},
                   headers={"X-API-Key": key} if key else {}, timeout=120)
    _check(r, secrets, "bad.docx with the key")
    assert r.status_code in (200, 400), r.text
    assert "bad.docx" not in _state(base, key)[0]


@pytest.mark.slow
def test_gradio_routes_the_chat_does_not_use_are_refused_and_none_crash(server):
    base, secrets = server["base"], server["secrets"]
    for path in GRADIO_REFUSED + GRADIO_PROBED:
        for method in ("GET", "POST"):
            files = {"files": ("a.wav", b"RIFF0000WAVE")} if method == "POST" else None
            r = httpx.request(method, base + path, files=files, timeout=30)
            _check(r, secrets, f"{method} {path}")
            if path in GRADIO_REFUSED:
                assert r.status_code in (401, 403, 404, 405), (method, path, r.status_code, r.text[:200])
    # the page's heartbeat is an endless stream: only its status and first bytes are read
    with httpx.stream("GET", f"{base}/gradio_api/heartbeat/{ODD.encode('utf-8', 'surrogatepass').hex()}",
                      timeout=30) as r:
        assert r.status_code < 500


@pytest.mark.slow
def test_every_chat_event_with_garbage_data_is_refused_or_answered_cleanly(server):
    base, secrets = server["base"], server["secrets"]
    config = httpx.get(f"{base}/config", timeout=30).json()
    deps = config["dependencies"]
    assert deps, "the chat has events"
    payloads = [[], [ODD] * 8, [None] * 8, [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}] * 4,
                [WIDE, WIDE, WIDE, WIDE], [10**30] * 6]
    bogus = [{"fn_index": 10**6}, {"fn_index": -1}, {"fn_index": "x"}, {"trigger_id": 10**9}]
    for i, dep in enumerate(deps):
        fn = dep.get("id", i)
        trigger = (dep.get("targets") or [[None]])[0][0]
        for data in payloads:
            session = uuid.uuid4().hex[:11]
            body = {"data": data, "fn_index": fn, "trigger_id": trigger, "session_hash": session, "event_data": None}
            join = _post_json(f"{base}/gradio_api/queue/join", body)
            _check(join, secrets, f"event {fn} {str(data)[:40]}")
            if join.status_code == 200:
                _drain(base, session, secrets, f"event {fn} {str(data)[:40]}")
    for extra in bogus:
        body = {"data": [], "fn_index": 0, "trigger_id": 0, "session_hash": uuid.uuid4().hex[:11], **extra}
        join = _post_json(f"{base}/gradio_api/queue/join", body)
        _check(join, secrets, f"bogus event {extra}")
        assert join.status_code < 500, (extra, join.status_code, join.text[:200])


def _post_json(url: str, body: object) -> httpx.Response:
    """JSON as an attacker sends it: lone surrogates escaped (httpx's own encoder refuses them)."""
    return httpx.post(url, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, timeout=30)


def _drain(base: str, session: str, secrets: list[str], what: str) -> None:
    """Read the event's stream until it completes (bounded), checking each message for server paths."""
    with httpx.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}, timeout=60) as stream:
        assert stream.status_code == 200, (what, stream.status_code)
        for n, line in enumerate(stream.iter_lines()):  # a stream broken off by a crash raises here
            for secret in secrets:
                assert secret not in line, (what, f"server path {secret!r} in an event message", line[:300])
            if n > 200 or '"process_completed"' in line:
                return
