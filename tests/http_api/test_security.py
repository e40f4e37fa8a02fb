"""The server tried as an attacker would: raw requests against a real uvicorn server on loopback.

Each test here failed before its fix (issue 12, items 1-7); the requests are the ones an attacker
sends, not what the browser UI would: raw Gradio queue events, forms from other origins, made-up
paths and pathological filters.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from conftest import SEED_FILE
from gradio_raw import call
from servers import serving

SEED_DOC = SEED_FILE.name
SEED_Q = "蓝风微短剧基地从签约到试运营用了多少天？"
SECRET = "SECRET-7731：服务器上的秘密口令是蓝鲸九号，绝不可外泄。"


@pytest.fixture(scope="module")
def served(rag):
    """The chat mounted on the API as `rag serve` runs it: loopback Host names only, no key."""
    from rag.http.guard import loopback_hosts
    from ui.server import build_app

    app = build_app(rag, api_key="", allowed_hosts=loopback_hosts("127.0.0.1", []))
    with serving(app) as base:
        yield base, app


@pytest.fixture(scope="module")
def keyed(rag):
    """The same with RAG_API_KEY set."""
    from ui.server import build_app

    app = build_app(rag, api_key="k3y")
    with serving(app) as base:
        yield base, app


@pytest.fixture
def secret_file(tmp_path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET, encoding="utf-8")
    return path


def _file_data(path: str) -> dict:
    return {"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def _secret_found(base: str) -> bool:
    hits = httpx.post(f"{base}/api/search", json={"question": "服务器上的秘密口令是什么？", "top_k": 5}, timeout=60).json()
    return any("蓝鲸九号" in h["text"] for h in hits)


# ---- 1. server files through the chat's upload event ---------------------------------------------
@pytest.mark.slow
def test_the_upload_event_cannot_index_a_server_file(served, secret_file, tmp_path):
    base, app = served
    # the secret itself, Gradio's default upload folder, and tricks on this server's staging folder
    gradio_default = tmp_path / "gradio" / ("a" * 32)
    gradio_default.mkdir(parents=True)
    shutil.copy(secret_file, gradio_default / "secret.txt")
    staging = app.state.staging.root
    for path in [str(secret_file), str(gradio_default / "secret.txt"), f"{'b' * 32}/../../{secret_file}",
                 f"{staging}/../{secret_file.name}", "/etc/hostname"]:
        r = call(base, "upload", [[_file_data(path)], "", "default"])
        assert r["join"].status_code == 400, (path, r["join"].text)
        assert "not an upload to this server" in r["join"].json()["error"]
    assert not _secret_found(base)
    assert all(d["doc_id"] != "secret.txt" for d in httpx.get(f"{base}/api/documents").json())


def test_the_upload_handler_itself_accepts_only_staged_files(rag, secret_file):
    """Behind the guard, the handler checks again (resolve, then the parent): defence in depth."""
    from ui.staging import Staging

    staging = Staging()
    try:
        assert staging.resolve(str(secret_file)) is None
        assert staging.resolve("../" + str(secret_file)) is None
        link_dir = staging.root / ("c" * 32)
        link_dir.mkdir()
        (link_dir / "link.txt").symlink_to(secret_file)  # a link out of the folder resolves outside it
        assert staging.resolve(f"{'c' * 32}/link.txt") is None
        with secret_file.open("rb") as fh:
            ref = staging.stage("ok.txt", fh, 1024 * 1024)
        assert staging.resolve(ref) == str((staging.root / ref).resolve())
        staging.release(ref)
        assert staging.resolve(ref) is None and not (staging.root / ref).parent.exists()
    finally:
        staging.cleanup()
    assert not staging.root.exists()


@pytest.mark.slow
def test_a_real_chat_upload_is_indexed_and_its_staged_copy_removed(served):
    base, app = served
    body = "紫藤镇风筝节今年吸引游客两万三千人，创历史新高。".encode()
    up = httpx.post(f"{base}/gradio_api/upload", files=[("files", ("kite.txt", body, "text/plain"))], timeout=30)
    assert up.status_code == 200, up.text
    [ref] = up.json()
    assert not ref.startswith("/") and ref.endswith("/kite.txt")  # no server path in the answer
    staged = app.state.staging.root / ref
    assert staged.is_file()
    assert httpx.get(f"{base}/gradio_api/file={ref}", timeout=30).content == body  # the upload box's link
    r = call(base, "upload", [[_file_data(ref)], "", "default"])
    assert r["join"].status_code == 200 and r["result"]["success"], r
    assert "kite.txt" in r["result"]["output"]["data"][0]
    assert not staged.exists() and not staged.parent.exists()
    assert httpx.delete(f"{base}/api/documents/kite.txt", timeout=60).status_code == 200


# ---- 2. an upload never replaces a document from another source -------------------------------
@pytest.mark.slow
def test_an_upload_named_like_a_folder_document_gets_its_own_id(served, rag):
    base, _ = served
    before = {d["doc_id"]: d for d in rag.documents()}
    r = httpx.post(f"{base}/api/documents", files=[("files", (SEED_DOC, "短文件，同名上传。".encode(), "text/plain"))],
                   timeout=60)
    assert r.status_code == 200, r.text
    stored = SEED_DOC.replace(".txt", "-upload.txt")
    assert r.json()["added"] == [stored] and r.json()["renamed"] == {SEED_DOC: stored}
    docs = {d["doc_id"]: d for d in httpx.get(f"{base}/api/documents").json()}
    assert docs[SEED_DOC]["chunks"] == before[SEED_DOC]["chunks"] == 19 and not docs[SEED_DOC]["uploaded"]
    assert docs[stored]["uploaded"]
    answer = httpx.post(f"{base}/api/ask", json={"question": SEED_Q}, timeout=60).json()
    assert not answer["abstained"] and "47天" in answer["answer"]
    # a newer version of the same upload replaces that upload, still not the folder document
    again = httpx.post(f"{base}/api/documents", files=[("files", (SEED_DOC, "第二版，同名上传。".encode(), "text/plain"))],
                       timeout=60)
    assert again.json()["updated"] == [stored], again.text
    assert {d["doc_id"]: d for d in rag.documents()}[SEED_DOC]["chunks"] == 19
    assert httpx.delete(f"{base}/api/documents/{stored}", timeout=60).status_code == 200


# ---- 3. Gradio's upload route ------------------------------------------------------------------
@pytest.mark.slow
def test_the_chat_upload_route_checks_type_count_size_and_key(keyed, served):
    base, _ = keyed
    one = [("files", ("a.txt", "内容。".encode(), "text/plain"))]
    assert httpx.post(f"{base}/gradio_api/upload", files=one).status_code == 401
    assert httpx.post(f"{base}/gradio_api/upload", files=one, headers={"X-API-Key": "wrong"}).status_code == 401
    ok = httpx.post(f"{base}/gradio_api/upload", files=one, headers={"Authorization": "Bearer k3y"})
    assert ok.status_code == 200, ok.text
    # the browser's way: the key typed in the chat buys an HttpOnly session cookie
    assert httpx.post(f"{base}/api/session", headers={"X-API-Key": "wrong"}).status_code == 401
    session = httpx.post(f"{base}/api/session", headers={"X-API-Key": "k3y"})
    assert session.status_code == 204
    assert "httponly" in session.headers["set-cookie"].lower() and "samesite=strict" in session.headers["set-cookie"].lower()
    with httpx.Client(cookies=session.cookies) as browser:
        assert browser.post(f"{base}/gradio_api/upload", files=one).status_code == 200
    open_base, _ = served
    for files, status, words in [
        ([("files", ("tool.exe", b"MZ", "application/octet-stream"))], 400, "unsupported file type"),
        ([("files", (f"f{i}.txt", b"x", "text/plain")) for i in range(21)], 400, "Too many files"),
        ([("files", ("big.txt", b"x" * (21 * 1024 * 1024), "text/plain"))], 413, "upload too large"),
    ]:
        r = httpx.post(f"{open_base}/gradio_api/upload", files=files, timeout=60)
        assert r.status_code == status and words in r.text, (status, r.text[:200])


@pytest.mark.slow
def test_staged_files_that_are_never_added_are_swept(served):
    base, app = served
    staging = app.state.staging
    r = httpx.post(f"{base}/gradio_api/upload", files=[("files", ("left.txt", b"left", "text/plain"))])
    [ref] = r.json()
    folder = (staging.root / ref).parent
    old = time.time() - staging.max_age - 10
    os.utime(folder, (old, old))
    staging.sweep()
    assert not folder.exists()


# ---- 4. cross-site requests --------------------------------------------------------------------
@pytest.mark.slow
def test_cross_site_writes_are_refused(served):
    base, _ = served
    form = [("files", ("form.txt", "跨站表单上传。".encode(), "text/plain"))]
    cross = [{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
             {"Origin": "http://evil.example"},  # an older browser: Origin only
             {"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"},  # another port of this machine
             {"Origin": "null"}]
    for headers in cross:
        r = httpx.post(f"{base}/api/documents", files=form, headers=headers)
        assert r.status_code == 403 and "cross-site" in r.json()["error"], (headers, r.text)
        assert httpx.delete(f"{base}/api/documents/{SEED_DOC}", headers=headers).status_code == 403
        assert call(base, "upload", [None, "", "default"], headers=headers)["join"].status_code == 403
    assert all(d["doc_id"] != "form.txt" for d in httpx.get(f"{base}/api/documents").json())
    same = {"Origin": base, "Sec-Fetch-Site": "same-origin"}
    assert httpx.post(f"{base}/api/search", json={"question": SEED_Q}, headers=same).status_code == 200


def test_an_allowed_origin_may_write(index_copy):
    from fastapi.testclient import TestClient

    from rag import RAG
    from rag.http.app import create_api

    app = create_api(RAG.open(index_copy, progress=False, allowed_origins="https://app.example"), api_key="")
    with TestClient(app) as c:
        ok = c.post("/api/search", json={"question": SEED_Q}, headers={"Origin": "https://app.example"})
        assert ok.status_code == 200
        assert c.post("/api/search", json={"question": SEED_Q}, headers={"Origin": "https://other.example"}).status_code == 403


def test_a_rebound_host_name_is_refused(served):
    base, _ = served
    r = httpx.get(f"{base}/health", headers={"Host": "evil.example:7860"})
    assert r.status_code == 421 and "RAG_ALLOWED_HOSTS" in r.json()["error"]
    assert httpx.get(f"{base}/health", headers={"Host": "localhost"}).status_code == 200


# ---- 5. filters cannot burn the CPU --------------------------------------------------------------
def test_pathological_filters_are_refused_and_bounded_ones_match(served):
    base, _ = served
    for doc, words in [("[" * 20_000, "over the limit of 256"), ("*" * 17, "at most 16 wildcards")]:
        t0 = time.perf_counter()
        r = httpx.post(f"{base}/api/search", json={"question": SEED_Q, "filters": {"doc": doc}}, timeout=60)
        assert r.status_code == 400 and words in r.json()["error"], r.text
        assert time.perf_counter() - t0 < 5  # refused before matching (the old code spent 9 s here)
    hits = httpx.post(f"{base}/api/search", json={"question": SEED_Q, "filters": {"doc": "0*_*e*5*8*.t?t"}}).json()
    assert hits and all(h["doc_id"] == SEED_DOC for h in hits)
    none = httpx.post(f"{base}/api/search", json={"question": SEED_Q, "filters": {"doc": "[!0]*"}}).json()
    assert none == []


# ---- 6. the server's generators are the operator's choice ------------------------------------------
@pytest.mark.slow
def test_clients_cannot_choose_a_generator_the_operator_did_not_allow(served):
    base, _ = served
    for route in ("/api/ask", "/api/ask/stream"):
        r = httpx.post(f"{base}{route}", json={"question": SEED_Q, "generator": "llamacpp:/tmp/model.gguf"})
        assert r.status_code == 400 and "not allowed on this server" in r.json()["error"], r.text
    assert httpx.get(f"{base}/health").json()["generators"] == ["extractive"]
    # the chat's event too, whatever the page's dropdown offered
    r = call(base, "respond", [SEED_Q, [], [], 5, "openai:gpt-4o-mini", True, ["default"], {}])
    assert r["result"] is not None and not r["result"]["success"], r
    assert "not in the list of choices" in r["result"]["output"]["error"]  # Gradio's dropdown check


def test_the_chat_handler_checks_the_generator_itself(rag):
    """Not relying on Gradio's dropdown check: the handler refuses an unlisted generator too."""
    from ui.app import create_app

    demo = create_app(rag)
    respond = next(f.fn for f in demo.fns.values() if f.name == "respond")
    *_, (_, chat, *_) = respond(SEED_Q, [], [], 5, "openai:gpt-4o-mini", True)
    assert "not allowed on this server" in chat[-1]["content"]


def test_the_operator_allow_list():
    from rag.config import Settings
    from rag.errors import ConfigError

    s = Settings(generator="extractive", allowed_generators="openai:gpt-4o-mini, llamacpp:m.gguf")
    assert s.network_generators() == ["extractive", "openai:gpt-4o-mini", "llamacpp:m.gguf"]
    assert s.check_network_generator(" openai:gpt-4o-mini ") == "openai:gpt-4o-mini"
    assert s.check_network_generator(None) is None
    with pytest.raises(ConfigError, match="not allowed"):
        s.check_network_generator("anthropic:claude")
    assert Settings(allowed_generators="*").check_network_generator("anthropic:claude") == "anthropic:claude"


# ---- 7. odd input is a 400, not a 500 -------------------------------------------------------------
@pytest.mark.slow
def test_lone_surrogates_and_bad_ids_are_400(served):
    base, _ = served
    raw = b'{"question": "\\ud800"}'
    for route in ("/api/ask", "/api/search", "/api/ask/stream"):
        r = httpx.post(f"{base}{route}", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400 and "surrogate" in r.json()["error"], (route, r.text)
    history = b'{"question": "' + SEED_Q.encode() + b'", "history": [{"role": "user", "content": "\\udfff"}]}'
    r = httpx.post(f"{base}/api/ask", content=history, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "surrogate" in r.json()["error"]
    filt = b'{"question": "q", "filters": {"article": "\\ud800"}}'
    assert httpx.post(f"{base}/api/search", content=filt, headers={"content-type": "application/json"}).status_code == 400
    for doc_id, words in [("a%00b", "NUL"), ("a" * 5000, "over the limit"), ("a%01b", "control")]:
        r = httpx.delete(f"{base}/api/documents/{doc_id}")
        assert r.status_code == 400 and words in r.json()["error"], (doc_id[:20], r.text)


@pytest.mark.parametrize("kb", ["../index", "/etc", "nope", "a/../b"])
@pytest.mark.slow
def test_the_new_chat_events_take_no_path_or_unknown_base_from_a_raw_client(served, kb):
    """Knowledge-base pickers, the chunk list and the retrieval test, sent raw through the queue: a base
    name with a path in it, or one that does not exist, is refused by the handlers; no file is read."""
    base, _ = served
    chunks = call(base, "doc_chunks", ["/etc/passwd", kb])
    listing = call(base, "doc_state", [kb])
    answer = call(base, "respond", [SEED_Q, [], [], 5, "extractive", True, [kb], {}])
    search = call(base, "run", [kb, SEED_Q, 5, "hybrid", 0.7, True, "", "", "", ""])
    outputs = [r["result"] for r in (chunks, listing, answer, search)]
    text = json.dumps(outputs, ensure_ascii=False)
    assert "root:" not in text and "蓝鲸九号" not in text  # nothing of a server file
    for r in (chunks, listing, answer, search):
        assert r["join"].status_code in (200, 400), r["join"].text
        if r["result"] is not None and r["result"].get("success"):
            shown = json.dumps(r["result"]["output"], ensure_ascii=False)
            assert "knowledge base" in shown or "知识库" in shown, shown[:500]
