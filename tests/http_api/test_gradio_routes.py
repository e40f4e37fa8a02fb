"""The mounted Gradio chat tried as an attacker would (issue 23, holes 4-6 and the Gradio items of 12).

Real uvicorn servers on loopback; raw requests and raw queue events, not the browser: routes the page
never uses, made-up event numbers, other origins, chunked bodies, many uploads from one address,
closed pages, and a retried upload in one page. Each test failed before its fix.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest
from gradio_raw import call, close_page, new_session
from servers import client_from, serving

KEY = "k3y"
MB = 1024 * 1024
# Gradio routes the page never calls (read from gradio/routes.py; the page's own requests, logged in
# headless Chromium, are the used list below): each must be refused, with or without a key.
UNUSED = [
    ("POST", "/gradio_api/process_recording"), ("GET", "/gradio_api/info"), ("GET", "/gradio_api/openapi.json"),
    ("GET", "/gradio_api/startup-events"), ("POST", "/gradio_api/run/predict"), ("POST", "/gradio_api/api/predict"),
    ("POST", "/gradio_api/call/upload"), ("GET", "/gradio_api/call/upload/1"), ("POST", "/gradio_api/call/v2/upload"),
    ("GET", "/gradio_api/user"), ("GET", "/gradio_api/token"), ("GET", "/gradio_api/app_id"),
    ("GET", "/gradio_api/login_check"), ("POST", "/gradio_api/reset"), ("GET", "/gradio_api/upload_progress"),
    ("POST", "/gradio_api/stream/1"), ("GET", "/gradio_api/vibe-code"), ("POST", "/gradio_api/vibe-edit"),
    ("GET", "/gradio_api/runs"), ("GET", "/gradio_api/run-history/records"), ("GET", "/gradio_api/deep_link"),
    ("GET", "/gradio_api/proxy=http://127.0.0.1:1/"), ("GET", "/gradio_api/file/etc/passwd"),
    ("GET", "/gradio_api/monitoring"), ("POST", "/login"),
    ("GET", "/logout"), ("GET", "/monitoring"), ("GET", "/monitoring/summary"), ("GET", "/svelte/svelte.js"),
    ("GET", "/pwa_icon"), ("GET", "/gradio_api/theme.css"), ("PUT", "/"), ("DELETE", "/config"),
]


def _build(rag, **options):
    from rag.http.guard import loopback_hosts
    from ui.server import build_app

    return build_app(rag, allowed_hosts=loopback_hosts("127.0.0.1", []), **options)


@pytest.fixture(scope="module")
def open_server(rag):
    """`rag serve` without a key, with a 1 MB upload limit (so the staging folder fills quickly)."""
    app = _build(rag, api_key="", max_upload_mb=1)
    with serving(app) as base:
        yield base, app


@pytest.fixture(scope="module")
def keyed_server(rag):
    app = _build(rag, api_key=KEY)
    with serving(app) as base:
        yield base, app


@pytest.fixture(params=["open", "keyed"])
def any_server(request, open_server, keyed_server):
    return open_server if request.param == "open" else keyed_server


def _file_data(ref: str) -> dict:
    return {"path": ref, "orig_name": Path(ref).name, "meta": {"_type": "gradio.FileData"}}


def _upload(base: str, name: str, body: bytes, client: httpx.Client | None = None, **kwargs) -> httpx.Response:
    post = client.post if client is not None else httpx.post
    return post(f"{base}/gradio_api/upload", files=[("files", (name, body, "text/plain"))], timeout=60, **kwargs)


# ---- 5. Gradio routes the page does not use ---------------------------------------------------------
@pytest.mark.slow
def test_gradio_routes_the_page_does_not_use_are_refused(any_server):
    base, _ = any_server
    for method, path in UNUSED:
        # process_recording took a file and sent it back; a file is what such routes would get
        r = httpx.request(method, f"{base}{path}", files=[("video", ("v.webm", b"RECORDED-BYTES", "video/webm"))]
                          if method == "POST" else None, timeout=30)
        assert r.status_code == 404, (method, path, r.status_code, r.text[:200])
        assert "not used by this server's chat" in r.json()["error"], (path, r.text[:200])
        assert b"RECORDED-BYTES" not in r.content


@pytest.mark.slow
def test_the_routes_the_page_uses_still_answer(any_server):
    base, app = any_server
    page = httpx.get(f"{base}/", timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()
    asset = next(part.split('"')[0] for part in page.text.split('src="./assets/')[1:] if part.split('"')[0])
    for path in ["/config", "/theme.css", "/favicon.ico", "/manifest.json", f"/assets/{asset}",
                 "/static/img/logo_nosize.svg"]:
        assert httpx.get(f"{base}{path}", timeout=30).status_code == 200, path
    assert httpx.head(f"{base}/", timeout=30).status_code == 200
    headers = {"X-API-Key": KEY} if app.state.api_key else {}
    up = _upload(base, "seen.txt", "看得见的文件。".encode(), headers=headers)
    assert up.status_code == 200, up.text
    [ref] = up.json()
    assert httpx.get(f"{base}/gradio_api/file={ref}", timeout=30).content == "看得见的文件。".encode()
    staged = app.state.staging.resolve(ref)
    assert httpx.get(f"{base}/gradio_api/file={staged}", timeout=30).status_code == 200  # as Gradio links it
    for other in ["/etc/passwd", f"{Path(staged).parent.parent.parent}/x", f"{Path(staged).parent.name}/%2E%2E/x"]:
        r = httpx.get(f"{base}/gradio_api/file={other}", timeout=30)
        assert r.status_code == 404 and "only files uploaded to this server" in r.json()["error"], (other, r.text)
    r = call(base, "doc_state", ["default"])  # queue/join, then queue/data
    assert r["result"] is not None and r["result"]["success"], r
    app.state.staging.release(ref)


# ---- 12. unknown events, foreign origins, chunked bodies ----------------------------------------------
@pytest.mark.parametrize("fn", [9999, -1, "x", True, None, 1.5])
@pytest.mark.slow
def test_an_unknown_event_number_is_a_clear_400(open_server, fn):
    base, _ = open_server
    body = {"data": [], "fn_index": fn, "trigger_id": 1, "session_hash": new_session(), "event_data": None}
    r = httpx.post(f"{base}/gradio_api/queue/join", json=body, timeout=30)
    assert r.status_code == 400, r.text
    assert "unknown event" in r.json()["error"]


def test_event_results_of_an_unknown_page_are_a_clear_404(open_server):
    base, _ = open_server
    r = httpx.get(f"{base}/gradio_api/queue/data", params={"session_hash": "nobody-here"}, timeout=30)
    assert r.status_code == 404, r.text
    assert "no events" in r.json()["error"]


@pytest.mark.parametrize("origin", ["http://localhost:9999", "http://127.0.0.1:1", "http://evil.example"])
def test_other_origins_get_no_cors_answer(open_server, origin):
    base, _ = open_server
    for r in (httpx.get(f"{base}/config", headers={"Origin": origin}, timeout=30),
              httpx.get(f"{base}/", headers={"Origin": origin}, timeout=30),
              httpx.options(f"{base}/config", headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
                            timeout=30),
              httpx.get(f"{base}/health", headers={"Origin": origin}, timeout=30)):
        cors = {k: v for k, v in r.headers.items() if k.lower().startswith("access-control-")}
        assert cors == {}, (r.request.method, r.request.url.path, cors)


@pytest.mark.slow
def test_an_allowed_origin_gets_cors_without_credentials(index_copy):
    from rag import RAG

    origin = "http://localhost:9999"
    app = _build(RAG.open(index_copy, progress=False, allowed_origins=origin), api_key="")
    with serving(app) as base:
        r = httpx.get(f"{base}/config", headers={"Origin": origin}, timeout=30)
        assert r.headers.get("access-control-allow-origin") == origin
        assert "access-control-allow-credentials" not in r.headers
        other = httpx.get(f"{base}/config", headers={"Origin": "http://localhost:9998"}, timeout=30)
        assert not any(k.lower().startswith("access-control-") for k in other.headers)


def test_an_over_limit_chunked_upload_is_413(open_server):
    base, app = open_server
    boundary = "b0undary"

    def body():  # a generator: httpx sends it chunked, with no Content-Length
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.txt\"\r\n"
               "Content-Type: text/plain\r\n\r\n").encode()
        for _ in range(3):
            yield b"x" * MB
        yield f"\r\n--{boundary}--\r\n".encode()

    before = set(app.state.staging.root.iterdir())
    r = httpx.post(f"{base}/gradio_api/upload", content=body(), timeout=60,
                   headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413, r.text
    assert "upload too large: the limit is 1 MB" in r.json()["error"]
    assert set(app.state.staging.root.iterdir()) == before


# ---- 4. the staging folder is shared fairly and given back ------------------------------------------
def test_one_client_cannot_fill_the_staging_folder_for_everyone(open_server):
    base, app = open_server
    staging = app.state.staging
    staging.max_bytes = 8 * MB  # the same proportions as 512 MB and 20 MB uploads, in a test's size
    accepted: list[str] = []
    try:
        with client_from("127.0.0.2") as attacker:
            refused = []
            for i in range(25):
                r = _upload(base, f"fill{i}.txt", b"x" * (MB - 4096), client=attacker)
                (accepted.extend(r.json()) if r.status_code == 200 else refused.append(r))
        assert refused and all(r.status_code == 413 and "one client may stage" in r.json()["error"] for r in refused)
        assert len(accepted) * MB <= staging.max_bytes * staging.client_share
        with client_from("127.0.0.3") as other:
            r = _upload(base, "mine.txt", "别人的上传。".encode(), client=other)
        assert r.status_code == 200, r.text
        accepted.extend(r.json())
    finally:
        staging.max_bytes = 512 * MB
        for ref in accepted:
            staging.release(ref)


@pytest.mark.slow
def test_a_page_gives_back_its_staged_files_when_they_leave_the_box_or_the_page_closes(open_server, monkeypatch):
    base, app = open_server
    monkeypatch.setenv("GRADIO_HEARTBEAT_INTERVAL", "0.5")  # Gradio notices a closed page at its next beat
    root = app.state.staging.root
    page = new_session()
    [first] = _upload(base, "first.txt", "第一个文件。".encode()).json()
    [second] = _upload(base, "second.txt", "第二个文件。".encode()).json()
    held = call(base, "on_files_change", [[_file_data(first), _file_data(second)]], session=page)
    assert held["result"] is not None and held["result"]["success"], held
    assert (root / first).is_file() and (root / second).is_file()
    # the user removes the first file from the box: it goes, the second stays
    call(base, "on_files_change", [[_file_data(second)]], session=page)
    assert not (root / first).parent.exists() and (root / second).is_file()
    # the tab is closed: the second goes too
    close_page(base, page)
    deadline = time.monotonic() + 20
    while (root / second).exists():
        assert time.monotonic() < deadline, "the closed page's staged file is still there"
        time.sleep(0.2)


# ---- 6. a retried upload in the same page --------------------------------------------------------------
@pytest.mark.slow
def test_a_retry_with_the_right_key_in_the_same_page_is_indexed_and_leaves_no_copy(keyed_server):
    base, app = keyed_server
    name = f"retry-{uuid.uuid4().hex[:8]}.txt"
    text = "重试上传：青石村灯会共展出花灯八百盏。"
    [ref] = _upload(base, name, text.encode(), headers={"X-API-Key": KEY}).json()
    staged = app.state.staging.root / ref
    page = new_session()
    wrong = call(base, "upload", [[_file_data(ref)], "wrong", "default"], session=page)
    assert "Wrong or missing API key" in wrong["result"]["output"]["data"][0]
    assert staged.is_file()  # kept in the box for the retry
    right = call(base, "upload", [[_file_data(ref)], KEY, "default"], session=page)
    assert right["result"]["success"], right
    status = right["result"]["output"]["data"][0]
    assert name in status and "Indexed" in status, status
    assert not staged.parent.exists()  # indexed: the staged copy is gone
    # no copy anywhere: not in Gradio's default folder, not in this server's Gradio cache
    places = [Path(tempfile.gettempdir()) / "gradio", *([Path(os.environ["GRADIO_TEMP_DIR"])]
                                                         if os.environ.get("GRADIO_TEMP_DIR") else [])]
    copies = [p for place in places if place.is_dir() for p in place.rglob(name)]
    assert copies == [], copies
    assert httpx.delete(f"{base}/api/documents/{name}", headers={"X-API-Key": KEY}, timeout=60).status_code == 200
