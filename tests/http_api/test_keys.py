"""Keys per base on a running server (issue 27 part 5): every route with the operator key, a key that may read
the base, one that may write it, one for another base, no key, a wrong key, a key revoked while the server
runs, a forged session cookie and a key in the query string; the OpenAI routes with the ``openai`` client,
``/mcp`` with the MCP SDK's client; managing bases, and names an attacker would try.

The server (``ui.server.build_app``, uvicorn on loopback) has the operator key and a keys file; its bases:
``default`` (the seed index), ``news`` (a PDF about a kite festival, uploaded) and ``policy`` (a text file).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from urllib.parse import quote

import anyio
import httpx
import httpx2
import openai
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.cli_runner import rag as rag_cli
from tests.pdfs import make_pdf
from tests.servers import parse_sse, serving

pytestmark = pytest.mark.server

OP = "operator-k3y"
KITE_Q = "紫藤镇风筝节今年吸引了多少游客？"
KITE_PAGES = [["紫藤镇风筝节于每年四月十八日举行。", "今年的紫藤镇风筝节吸引游客两万三千人，创历史新高。"]]
POLICY_Q = "青禾市垃圾分类条例最高罚款多少？"
POLICY = "青禾市垃圾分类条例自二〇二四年三月一日起施行。\n违反条例的单位最高罚款五万元。\n"
SECRET = "secretplans"  # a base only the operator and `boss` may read: its name must never reach the others


@pytest.fixture(scope="module")
def server(index_copy, tmp_path_factory):
    from rag import RAG
    from rag.access import KeyRing
    from ui.server import build_app

    tmp = tmp_path_factory.mktemp("keys")
    ring = KeyRing(tmp / "keys.json")
    keys = {"reader": ring.add("reader", read="news"), "writer": ring.add("writer", write="news"),
            "other": ring.add("other", read="policy"), "boss": ring.add("boss", read="*", write="*", manage=True),
            "mgr": ring.add("mgr", read="news", manage=True), "mixed": ring.add("mixed", read="news", write="policy")}
    rag = RAG.open(index_copy, progress=False, kb_root=str(tmp / "kbs"), keys_file=str(tmp / "keys.json"))
    make_pdf(tmp / "kite.pdf", KITE_PAGES)
    with serving(build_app(rag, api_key=OP)) as url:
        op = {"Authorization": f"Bearer {OP}"}
        for name in ("news", "policy", SECRET):
            assert httpx.post(f"{url}/api/kbs", json={"name": name}, headers=op, timeout=60).status_code == 201
        files = {"news": ("kite.pdf", (tmp / "kite.pdf").read_bytes(), "application/pdf"),
                 "policy": ("policy.txt", POLICY.encode(), "text/plain"),
                 SECRET: ("plan.txt", "绝密计划：十月一日发布。\n".encode(), "text/plain")}
        for name, file in files.items():
            r = httpx.post(f"{url}/api/documents", params={"kb": name}, files=[("files", file)], headers=op, timeout=120)
            assert r.status_code == 200, r.text
        yield SimpleNamespace(url=url, tmp=tmp, ring=ring, keys=keys)


def auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def message(r: httpx.Response) -> str:
    error = r.json()["error"]
    return error["message"] if isinstance(error, dict) else error  # /v1/ answers in OpenAI's shape


READS = {
    "ask": lambda c, kb: c.post("/api/ask", json={"question": KITE_Q, "kb": kb}),
    "ask_stream": lambda c, kb: c.post("/api/ask/stream", json={"question": KITE_Q, "kb": [kb]}),
    "search": lambda c, kb: c.post("/api/search", json={"question": KITE_Q, "kb": kb, "top_k": 2}),
    "documents": lambda c, kb: c.get("/api/documents", params={"kb": kb}),
    "view": lambda c, kb: c.get("/view", params={"doc": "kite.pdf", "kb": kb}),
    "file": lambda c, kb: c.get("/api/file", params={"doc": "kite.pdf", "kb": kb}),
    "chunks": lambda c, kb: c.get("/api/chunks", params={"doc": "kite.pdf", "kb": kb}),
    "page": lambda c, kb: c.get("/api/page", params={"doc": "kite.pdf", "kb": kb, "page": 1}),
    "feedback": lambda c, kb: c.post("/api/feedback", json={"rating": "up", "question": KITE_Q, "answer": "两万三千",
                                                            "kb": kb}),
    "chat": lambda c, kb: c.post("/v1/chat/completions", json={"model": f"kb:{kb}",
                                                               "messages": [{"role": "user", "content": KITE_Q}]}),
}


def read_ok(name: str, r: httpx.Response) -> None:
    assert r.status_code in (200, 201), (name, r.status_code, r.text[:300])
    if name in ("ask", "search", "ask_stream", "chat"):
        assert "两万三千" in r.text, (name, r.text[:300])


def refused(r: httpx.Response, status: int, what: str) -> None:
    """``r`` refused with ``status``, naming no base the caller did not name itself (the secret one)."""
    assert r.status_code == status, (what, r.status_code, r.text[:300])
    if status == 401:
        assert r.headers.get("www-authenticate") == "Bearer", what
    text = r.text
    try:
        body = r.request.content
    except httpx.RequestNotRead:  # an upload's multipart stream
        body = b""
    asked = SECRET in str(r.request.url) or SECRET.encode() in body
    assert (asked or SECRET not in text) and "Traceback" not in text, (what, text[:300])
    assert "the bases are: " not in text or SECRET not in text.partition("the bases are: ")[2], (what, text[:300])


@pytest.mark.parametrize("route", sorted(READS))
def test_each_read_route_for_each_kind_of_caller(server, route):
    call = READS[route]
    with httpx.Client(base_url=server.url, timeout=120) as c:
        for who in (OP, server.keys["reader"], server.keys["writer"], server.keys["boss"]):
            c.headers.clear()
            c.headers.update(auth(who))
            read_ok(route, call(c, "news"))
        c.headers.clear()
        c.headers.update(auth(server.keys["other"]))  # a key for another base: news is absent to it
        unreadable, absent = call(c, "news"), call(c, "nosuchbase")
        refused(unreadable, 404, f"{route}: other")
        assert absent.status_code == 404 and message(unreadable).replace("news", "X") == message(absent).replace(
            "nosuchbase", "X"), (route, message(unreadable), message(absent))
        assert "policy" in message(unreadable) and "default" not in message(unreadable).replace("kb:", "")
        for headers, what in (({}, "no key"), (auth("wrong-key"), "wrong key"), ({"X-API-Key": "rag_forged"}, "forged"),
                              ({"Cookie": "rag_session=forged-session-token"}, "forged session cookie")):
            c.headers.clear()
            c.headers.update(headers)
            refused(call(c, "news"), 401, f"{route}: {what}")
    for param in ("api_key", "key", "access_token", "token"):  # a key in the query string is ignored
        with httpx.Client(base_url=server.url, timeout=120, params={param: OP}) as c:
            refused(call(c, "news"), 401, f"{route}: ?{param}=")


def test_the_lists_show_only_what_a_key_may_read(server):
    url, keys = server.url, server.keys
    expected = {OP: ["default", "news", "policy", SECRET], keys["reader"]: ["news"], keys["writer"]: ["news"],
                keys["other"]: ["policy"], keys["boss"]: ["default", "news", "policy", SECRET]}
    for key, names in expected.items():
        assert [b["name"] for b in httpx.get(f"{url}/api/kbs", headers=auth(key)).json()] == names
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)
        assert [m.id for m in client.models.list().data] == [("rag" if n == "default" else f"kb:{n}") for n in names]
    for headers in ({}, auth("wrong"), {"Cookie": "rag_session=x"}):
        for path in ("/api/kbs", "/v1/models"):
            refused(httpx.get(f"{url}{path}", headers=headers), 401, f"{path} {headers}")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
    reader = openai.OpenAI(base_url=f"{url}/v1", api_key=keys["reader"], max_retries=0, timeout=120)
    r = reader.chat.completions.create(model="kb:news", messages=[{"role": "user", "content": KITE_Q}])
    assert "两万三千" in r.choices[0].message.content and r.model_extra["references"][0]["kb"] == "news"
    for model in ("kb:policy", "rag", "kb:news,kb:policy", f"kb:{SECRET}", "kb:nosuch"):
        with pytest.raises(openai.NotFoundError) as err:
            reader.chat.completions.create(model=model, messages=[{"role": "user", "content": KITE_Q}])
        assert err.value.body["message"].endswith("available: kb:news"), err.value.body


def test_health_and_the_schema_show_a_keyless_caller_nothing_of_the_bases(server):
    url = server.url
    assert httpx.get(f"{url}/health").json() == {"status": "ok", "key_required": True}
    assert httpx.get(f"{url}/health", headers=auth("wrong")).json() == {"status": "ok", "key_required": True}
    assert httpx.get(f"{url}/health", headers=auth(server.keys["reader"])).json() == {"status": "ok",
                                                                                      "key_required": True}
    full = httpx.get(f"{url}/health", headers=auth(OP)).json()
    assert full["documents"] >= 1 and full["write_protected"] is True
    schema = httpx.get(f"{url}/openapi.json").text
    assert not {"news", "policy", SECRET} & set(json.loads(schema).get("paths", {})) and SECRET not in schema
    assert "/api/kbs/{name}/rename" in schema  # (the docs' examples name "news" and "policy": not these bases)
    page = httpx.get(f"{url}/docs")
    assert page.status_code == 200 and SECRET not in page.text


def test_writes_need_a_key_that_may_write_the_base(server):
    url, keys = server.url, server.keys

    def upload(headers: dict[str, str], kb: str = "news", name: str = "lantern.txt") -> httpx.Response:
        files = [("files", (name, "灯会在元宵节举行，共展出彩灯八百组。".encode(), "text/plain"))]
        return httpx.post(f"{url}/api/documents", params={"kb": kb}, files=files, headers=headers, timeout=120)

    def delete(headers: dict[str, str], kb: str = "news", name: str = "lantern.txt") -> httpx.Response:
        return httpx.delete(f"{url}/api/documents/{name}", params={"kb": kb}, headers=headers, timeout=60)

    for write in (upload, delete):
        for who in ("reader", "mixed"):  # may read news, not change it (mixed writes policy)
            refused(write(auth(keys[who])), 403, f"{write.__name__}: {who}")
            assert f"key {who!r} may read knowledge base 'news' but not change it" in message(write(auth(keys[who])))
        refused(write(auth(keys["other"])), 404, f"{write.__name__}: other")  # news is absent to it
        refused(write(auth(keys["writer"]), kb="policy"), 404, f"{write.__name__}: writer, policy")
        refused(write(auth(keys["writer"]), kb=SECRET), 404, f"{write.__name__}: writer, secret")
        refused(write(auth(keys["writer"]), kb="default"), 404, f"{write.__name__}: writer, default")
        for headers in ({}, auth("wrong"), {"Cookie": "rag_session=forged"}):
            refused(write(headers), 401, f"{write.__name__}: {headers}")
    assert upload(auth(keys["writer"])).json()["added"] == ["lantern.txt"]
    assert delete(auth(keys["writer"])).json() == {"deleted": ["lantern.txt"]}
    assert upload(auth(OP), name="op.txt").status_code == 200 and delete(auth(OP), name="op.txt").status_code == 200
    # Gradio's upload route: the key must write some base (the event that indexes then checks which)
    one = [("files", ("a.txt", "内容。".encode(), "text/plain"))]
    for key, status in ((keys["writer"], 200), (OP, 200), (keys["boss"], 200), (keys["mixed"], 200),
                        (keys["reader"], 403), (keys["other"], 403), ("wrong", 401), (None, 401)):
        r = httpx.post(f"{url}/gradio_api/upload", files=one, headers=auth(key), timeout=60)
        assert r.status_code == status, (key, r.status_code, r.text[:200])
        assert status != 403 or "may not change any knowledge base" in message(r)
    with httpx.Client(base_url=url, timeout=60) as browser:
        assert browser.post("/api/session", headers=auth(keys["writer"])).status_code == 204
        assert browser.post("/gradio_api/upload", files=one).status_code == 200


def test_a_session_is_opened_with_any_valid_key_and_refused_cross_site(server):
    url, keys = server.url, server.keys
    for headers in (auth("wrong"), {"X-API-Key": "rag_forged"}, {}):
        r = httpx.post(f"{url}/api/session", headers=headers)
        assert r.status_code == 401 and "set-cookie" not in r.headers, headers
    r = httpx.post(f"{url}/api/session", headers={**auth(keys["reader"]), "Origin": "https://evil.example",
                                                  "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403 and "set-cookie" not in r.headers
    r = httpx.post(f"{url}/api/session?api_key={OP}")
    assert r.status_code == 401 and "set-cookie" not in r.headers
    for key in (keys["reader"], OP):
        r = httpx.post(f"{url}/api/session", headers=auth(key))
        cookie = r.headers["set-cookie"].lower()
        assert r.status_code == 204 and cookie.startswith("rag_session=")
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert key.lower() not in cookie  # the cookie is a session token, not the key
    with httpx.Client(base_url=url, timeout=120) as browser:  # the reader's session reads what the reader may
        assert browser.post("/api/session", headers=auth(keys["reader"])).status_code == 204
        assert browser.get("/api/documents", params={"kb": "news"}).status_code == 200
        assert browser.get("/api/documents", params={"kb": "policy"}).status_code == 404
        assert [b["name"] for b in browser.get("/api/kbs").json()] == ["news"]
        assert browser.delete("/api/session").status_code == 204
        refused(browser.get("/api/kbs", cookies={"rag_session": "ended"}), 401, "after logout")


def test_a_key_revoked_while_the_server_runs_is_refused_at_its_next_request(server):
    url, ring = server.url, server.ring
    temp = ring.add("temp", read="news", write="news")
    with httpx.Client(base_url=url, timeout=120) as browser:
        assert browser.post("/api/session", headers=auth(temp)).status_code == 204
        with httpx.Client(base_url=url, timeout=120, headers=auth(temp)) as c:
            for name, call in READS.items():
                read_ok(name, call(c, "news"))
            mcp_session = _mcp_open(url, temp)
            result = rag_cli("keys", "revoke", "temp", "--file", str(server.tmp / "keys.json"))
            assert result.returncode == 0 and "revoked key 'temp'" in result.stdout
            for name, call in READS.items():
                refused(call(c, "news"), 401, f"{name}: revoked")
            refused(browser.get("/api/documents", params={"kb": "news"}), 401, "the revoked key's session")
            refused(c.get("/api/kbs"), 401, "kbs")
            refused(c.get("/v1/models"), 401, "models")
            files = [("files", ("x.txt", "内容。".encode(), "text/plain"))]
            refused(c.post("/api/documents", params={"kb": "news"}, files=files), 401, "upload")
            refused(c.post("/gradio_api/upload", files=files), 401, "gradio upload")
            refused(browser.post("/gradio_api/upload", files=files), 401, "gradio upload by session")
            refused(c.post("/api/session"), 401, "a new session")
            refused(c.delete("/api/documents/kite.pdf", params={"kb": "news"}), 401, "delete a document")
            refused(c.post("/api/kbs", json={"name": "tempbase"}), 401, "create a base")
            refused(c.post("/api/kbs/news/rename", json={"name": "tempbase"}), 401, "rename a base")
            refused(c.delete("/api/kbs/news"), 401, "delete a base")
            assert (server.tmp / "kbs" / "news" / "documents" / "kite.pdf").is_file()
            assert _mcp_close(mcp_session) == 401  # the SDK's session, opened before the revoke: its next call


def _mcp_client(key: str | None) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers=auth(key), timeout=httpx2.Timeout(30, read=300))


async def _mcp(url: str, key: str | None, calls: list[tuple[str, dict]]) -> list:
    client = _mcp_client(key)
    async with client, streamable_http_client(f"{url}/mcp", http_client=client) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        return [await session.call_tool(tool, arguments) for tool, arguments in calls]


def _text(result) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def _payload(result) -> dict:
    assert not result.is_error, _text(result)
    return result.structured_content if isinstance(result.structured_content, dict) else json.loads(_text(result))


def _mcp_open(url: str, key: str) -> dict:
    """An MCP session made by hand (initialize, then the session id): the next tool call is sent after a revoke."""
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Accept": "application/json, text/event-stream", **auth(key)}
    r = httpx.post(f"{url}/mcp", json=hello, headers=headers)
    assert r.status_code == 200, r.text
    headers["mcp-session-id"] = r.headers["mcp-session-id"]
    headers["mcp-protocol-version"] = "2025-06-18"
    assert httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                      headers=headers).status_code == 202
    listed = httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                            "params": {"name": "list_knowledge_bases", "arguments": {}}}, headers=headers)
    assert listed.status_code == 200 and "news" in listed.text and SECRET not in listed.text, listed.text
    return {"url": url, "headers": headers}


def _mcp_close(session: dict) -> int:
    r = httpx.post(f"{session['url']}/mcp", json={"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                                   "params": {"name": "list_knowledge_bases", "arguments": {}}},
                   headers=session["headers"])
    return r.status_code


def test_mcp_tools_see_only_what_the_key_may_read(server):
    url, keys = server.url, server.keys
    calls = [("list_knowledge_bases", {}), ("search", {"question": KITE_Q, "kb": "news", "top_k": 2}),
             ("ask", {"question": KITE_Q, "kb": "news"}), ("search", {"question": POLICY_Q, "kb": "policy"}),
             ("ask", {"question": KITE_Q}), ("search", {"question": KITE_Q, "kb": SECRET}),
             ("search", {"question": KITE_Q, "kb": "nosuch"})]
    listed, found, answer, policy, default, secret, absent = anyio.run(_mcp, url, keys["reader"], calls)
    assert [b["name"] for b in _payload(listed)["knowledge_bases"]] == ["news"]
    hit = _payload(found)["passages"][0]
    assert hit["kb"] == "news" and "两万三千" in hit["text"]
    assert "两万三千" in _payload(answer)["answer"]
    passage = anyio.run(_mcp, url, keys["reader"], [("get_passage", {"doc_id": hit["doc_id"], "chunk_id": hit["chunk_id"],
                                                                      "kb": "news"})])[0]
    assert _payload(passage)["text"] == hit["text"]
    for result, name in ((policy, "policy"), (default, "default"), (secret, SECRET), (absent, "nosuch")):
        assert result.is_error and f"no knowledge base {name!r}; the bases are: news" in _text(result), _text(result)
    listed, = anyio.run(_mcp, url, keys["other"], [("list_knowledge_bases", {})])
    assert [b["name"] for b in _payload(listed)["knowledge_bases"]] == ["policy"]
    listed, = anyio.run(_mcp, url, OP, [("list_knowledge_bases", {})])
    assert [b["name"] for b in _payload(listed)["knowledge_bases"]] == ["default", "news", "policy", SECRET]
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    for headers in ({}, auth("wrong"), {"Cookie": "rag_session=forged"}):
        r = httpx.post(f"{url}/mcp?api_key={OP}", json=hello, headers={"Accept": "application/json, text/event-stream",
                                                                      **headers})
        refused(r, 401, f"mcp {headers}")


def test_an_mcp_session_ends_with_its_key(server):
    """The SDK's client in one session: a call, the key revoked (by another process's `rag keys revoke`), the next
    call refused (the server answers its POST with 401), a new session refused too."""
    url, ring = server.url, server.ring
    temp = ring.add("mcp-temp", read="news")

    async def session_across_a_revoke() -> tuple[list[str], str]:
        client = _mcp_client(temp)
        async with client, streamable_http_client(f"{url}/mcp", http_client=client) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            before = _payload(await session.call_tool("list_knowledge_bases", {}))["knowledge_bases"]
            assert rag_cli("keys", "revoke", "mcp-temp", "--file", str(server.tmp / "keys.json")).returncode == 0
            with pytest.raises(MCPError) as after:
                await session.call_tool("search", {"question": KITE_Q, "kb": "news"})
            return [b["name"] for b in before], str(after.value)

    names, error = anyio.run(session_across_a_revoke)
    assert names == ["news"] and "error response" in error
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    r = httpx.post(f"{url}/mcp", json=hello, headers={"Accept": "application/json, text/event-stream", **auth(temp)})
    refused(r, 401, "a new MCP session with the revoked key")


def test_a_manage_key_creates_renames_and_deletes_and_a_read_key_cannot(server):
    url, keys, ring = server.url, server.keys, server.ring
    boss, mgr, reader = auth(keys["boss"]), auth(keys["mgr"]), auth(keys["reader"])
    follower = ring.add("follower", read="drafts")  # a scope for a base not made yet: it follows the rename
    for headers, status in ((reader, 403), ({}, 401), (auth("wrong"), 401), (auth(keys["writer"]), 403)):
        refused(httpx.post(f"{url}/api/kbs", json={"name": "drafts"}, headers=headers), status, f"create {headers}")
        refused(httpx.delete(f"{url}/api/kbs/news", headers=headers), status, f"delete {headers}")
        refused(httpx.post(f"{url}/api/kbs/news/rename", json={"name": "press"}, headers=headers), status, "rename")
    assert not (server.tmp / "kbs" / "drafts").exists() and (server.tmp / "kbs" / "news").is_dir()
    assert httpx.post(f"{url}/api/kbs", json={"name": "drafts"}, headers=boss).status_code == 201
    assert httpx.get(f"{url}/api/documents", params={"kb": "drafts"}, headers=auth(follower)).status_code == 200
    r = httpx.post(f"{url}/api/kbs/drafts/rename", json={"name": "press"}, headers=boss)
    assert r.status_code == 200 and r.json() == {"renamed": "drafts", "name": "press", "model": "kb:press"}
    assert (server.tmp / "kbs" / "press").is_dir() and not (server.tmp / "kbs" / "drafts").exists()
    assert httpx.get(f"{url}/api/documents", params={"kb": "press"}, headers=auth(follower)).status_code == 200
    assert httpx.get(f"{url}/api/documents", params={"kb": "drafts"}, headers=auth(follower)).status_code == 404
    assert next(r for r in ring.records() if r.name == "follower").read == {"press"}
    for target in ("policy", "default", "news"):  # onto a base that exists, or the default
        r = httpx.post(f"{url}/api/kbs/press/rename", json={"name": target}, headers=boss)
        assert r.status_code == 400, (target, r.text)
    assert httpx.post(f"{url}/api/kbs/default/rename", json={"name": "x"}, headers=boss).status_code == 400
    # a manage key sees only what it may read: another base is absent to it, even to delete or rename
    refused(httpx.delete(f"{url}/api/kbs/{SECRET}", headers=mgr), 404, "mgr deletes secret")
    refused(httpx.post(f"{url}/api/kbs/{SECRET}/rename", json={"name": "mine"}, headers=mgr), 404, "mgr renames")
    refused(httpx.delete(f"{url}/api/kbs/news", headers=mgr), 403, "mgr may read news, not change it")
    assert httpx.post(f"{url}/api/kbs", json={"name": "mine"}, headers=mgr).status_code == 201
    assert [b["name"] for b in httpx.get(f"{url}/api/kbs", headers=mgr).json()] == ["mine", "news"]
    files = [("files", ("m.txt", "我的文件。".encode(), "text/plain"))]
    assert httpx.post(f"{url}/api/documents", params={"kb": "mine"}, files=files, headers=mgr,
                      timeout=120).status_code == 200  # the base it made is its own to write
    assert httpx.delete(f"{url}/api/kbs/mine", headers=mgr).json() == {"deleted": "mine"}
    assert httpx.delete(f"{url}/api/kbs/press", headers=boss).json() == {"deleted": "press"}
    assert next(r for r in ring.records() if r.name == "follower").read == frozenset()  # a deleted base leaves scopes
    assert httpx.post(f"{url}/api/kbs", json={"name": "press"}, headers=boss).status_code == 201
    assert httpx.get(f"{url}/api/documents", params={"kb": "press"}, headers=auth(follower)).status_code == 404
    assert httpx.delete(f"{url}/api/kbs/press", headers=boss).status_code == 200


@pytest.mark.parametrize("name", ["../x", "..", "%2e%2e", "a/b", ".hidden", "x" * 300, "<script>alert(1)</script>",
                                  "<img src=x onerror=alert(1)>", "default", "名字\n", "news\x00"])
def test_names_an_attacker_would_try(server, name):
    url, boss = server.url, auth(server.keys["boss"])
    r = httpx.post(f"{url}/api/kbs", json={"name": name}, headers=boss)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json"), (name, r.text[:200])
    r = httpx.post(f"{url}/api/kbs/news/rename", json={"name": name}, headers=boss)
    assert r.status_code == 400, (name, r.text[:200])
    assert (server.tmp / "kbs" / "news").is_dir() and not (server.tmp / "x").exists()
    for headers, allowed in ((boss, 200 if name == "default" else 400), (auth(server.keys["reader"]), 404 if name == "default" else 400)):
        r = httpx.post(f"{url}/api/ask", json={"question": KITE_Q, "kb": name}, headers=headers, timeout=120)
        assert r.status_code == allowed and SECRET not in r.text, (name, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/json")  # markup in a name comes back as JSON text
    segment = quote(name, safe="")  # in the path as a client may send it: "%2e%2e" arrives as "%252e%252e"
    for method, path in (("DELETE", f"/api/kbs/{segment}"), ("POST", f"/api/kbs/{segment}/rename"),
                         ("DELETE", f"/api/kbs/{name}" if name.isprintable() else "/api/kbs/%2e%2e")):
        r = httpx.request(method, f"{url}{path}", headers=boss, json={"name": "y"})
        assert r.status_code in (400, 404, 405), (path, r.status_code, r.text[:200])
        assert SECRET not in r.text
    assert [b["name"] for b in httpx.get(f"{url}/api/kbs", headers=auth(OP)).json()] == ["default", "news", "policy",
                                                                                         SECRET]


def test_ask_across_bases_needs_every_one_readable(server):
    url, keys = server.url, server.keys
    both = {"question": KITE_Q, "kb": ["news", "policy"]}
    refused(httpx.post(f"{url}/api/ask", json=both, headers=auth(keys["reader"]), timeout=120), 404, "reader both")
    refused(httpx.post(f"{url}/api/search", json=both, headers=auth(keys["other"]), timeout=120), 404, "other both")
    r = httpx.post(f"{url}/api/ask/stream", json=both, headers=auth(keys["boss"]), timeout=120)
    events = parse_sse(r.text)
    assert events[-1]["answer"]["citations"][0]["kb"] == "news"


def test_a_damaged_keys_file_refuses_every_named_key_and_tells_no_more(index_copy, tmp_path):
    from fastapi.testclient import TestClient

    from rag import RAG
    from rag.access import KeyRing
    from rag.http.app import create_api

    path = tmp_path / "keys.json"
    key = KeyRing(path).add("alice", read="*", write="*")
    app = create_api(RAG.open(index_copy, progress=False, keys_file=str(path), kb_root=str(tmp_path / "kbs")), api_key=OP)
    with TestClient(app) as c:
        assert c.get("/api/documents", headers=auth(key)).status_code == 200
        assert c.post("/api/kbs", json={"name": "kept"}, headers=auth(OP)).status_code == 201
        path.write_text(path.read_text(encoding="utf-8")[:-9], encoding="utf-8")  # cut short: not JSON
        files = [("files", ("x.txt", "内容。".encode(), "text/plain"))]
        for r in (c.get("/api/documents", headers=auth(key)), c.post("/api/documents", files=files, headers=auth(key)),
                  c.get("/v1/models", headers=auth(key)), c.post("/api/session", headers=auth(key))):
            assert r.status_code == 503 and "keys cannot be read" in r.text, (r.request.url, r.status_code, r.text)
            assert str(tmp_path) not in r.text and "keys.json" not in r.text and "JSONDecodeError" not in r.text
        assert c.get("/api/documents", headers=auth(OP)).status_code == 200  # the operator key does not need the file
        for r in (c.delete("/api/kbs/kept", headers=auth(OP)),  # the scopes could not follow: nothing is done
                  c.post("/api/kbs/kept/rename", json={"name": "moved"}, headers=auth(OP))):
            assert r.status_code == 503 and "keys.json" not in r.text, r.text
        assert (tmp_path / "kbs" / "kept").is_dir() and not (tmp_path / "kbs" / "moved").exists()
        refused(c.get("/api/documents"), 401, "no key")
        assert c.get("/health").json() == {"status": "ok", "key_required": True}
