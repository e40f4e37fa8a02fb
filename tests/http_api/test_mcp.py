"""The MCP server (rag.http.mcp_server), driven by the SDK's own client: `rag mcp` over stdio in a subprocess, and
`/mcp` of the HTTP API (streamable HTTP) on loopback, behind the API key and the host guard."""

from __future__ import annotations

import json
import logging
import sys
from types import SimpleNamespace

import anyio
import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import ROOT
from tests.servers import serving

QUESTION = "蓝风微短剧基地从签约到试运营用了多少天？"
KEY = "mcp-test-key"
TOOLS = {"search", "ask", "list_knowledge_bases", "get_passage"}


def http_client(headers: dict[str, str]) -> httpx2.AsyncClient:
    """The MCP client's HTTP client (the SDK's transport uses httpx2) with the key's header; a long read for ``ask``."""
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300))


def text_of(result) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def payload(result) -> dict:
    assert not result.is_error, text_of(result)
    return result.structured_content if isinstance(result.structured_content, dict) else json.loads(text_of(result))


async def exercise(session: ClientSession, index_dir) -> dict:
    """Every tool, good and bad arguments; returns what the caller checks further."""
    await session.initialize()
    assert {t.name for t in (await session.list_tools()).tools} == TOOLS

    bases = payload(await session.call_tool("list_knowledge_bases", {}))["knowledge_bases"]
    default = next(b for b in bases if b["name"] == "default")
    assert default["documents"] > 0 and default["chunks"] > 0

    answer = payload(await session.call_tool("ask", {"question": QUESTION}))
    assert "47" in answer["answer"] and not answer["abstained"]
    assert answer["citations"] and answer["citations"][0]["quote"]
    cited = answer["citations"][0]
    assert "/view?" in cited["view_url"] and cited["doc_id"]

    passages = payload(await session.call_tool("search", {"question": QUESTION, "top_k": 3}))["passages"]
    assert 1 <= len(passages) <= 3
    first = passages[0]
    assert {"doc_id", "chunk_id", "start", "end", "score", "kb", "text", "article"} <= first.keys()
    assert first["kb"] == "default"
    assert any("47天" in p["text"] for p in passages)

    passage = payload(await session.call_tool("get_passage", {"doc_id": first["doc_id"], "chunk_id": first["chunk_id"]}))
    assert passage["text"] == first["text"] and (passage["start"], passage["end"]) == (first["start"], first["end"])

    bad = {
        "top_k 0": ("search", {"question": QUESTION, "top_k": 0}, "top_k must be a whole number from 1 to 50"),
        "top_k 1000": ("search", {"question": QUESTION, "top_k": 1000}, "top_k must be a whole number from 1 to 50"),
        "long question": ("ask", {"question": "长" * 100_000}, "over the limit"),
        "long search": ("search", {"question": "长" * 100_000}, "over the limit"),
        "unknown kb": ("search", {"question": QUESTION, "kb": "nosuchbase"}, "nosuchbase"),
        "path kb": ("ask", {"question": QUESTION, "kb": "../etc"}, "knowledge base"),
        "path doc": ("get_passage", {"doc_id": "../x", "chunk_id": "c0"}, "no such document"),
        "bad filter": ("search", {"question": QUESTION, "filters": {"owner": "x"}}, "unknown filter"),
        "unknown chunk": ("get_passage", {"doc_id": first["doc_id"], "chunk_id": "nope"}, "has no chunk"),
    }
    for name, (tool, arguments, expected) in bad.items():
        result = await session.call_tool(tool, arguments)
        message = text_of(result)
        assert result.is_error, (name, message)
        assert expected in message, (name, message)
        assert "Traceback" not in message and str(index_dir) not in message and len(message) < 2000, (name, message)
    return answer


@pytest.mark.subprocess
def test_rag_mcp_over_stdio(index_copy, tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT),
           "RAG_KB_ROOT": str(tmp_path / "kbs")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "ui.cli", "mcp", "--index-dir", str(index_copy)],
                                   env=env, cwd=str(ROOT))
    errors = (tmp_path / "stderr.txt").open("w+", encoding="utf-8")

    async def main() -> dict:
        async with stdio_client(params, errlog=errors) as (read, write), ClientSession(read, write) as session:
            return await exercise(session, index_copy)

    answer = anyio.run(main)
    assert answer["citations"][0]["view_url"].startswith("/view?")  # no public_url: relative
    errors.seek(0)
    assert "MCP over stdin/stdout" in errors.read()  # the banner went to stderr, the protocol had stdout alone


@pytest.mark.slow
def test_mcp_over_http_behind_the_key_and_the_host_guard(index_copy, kite_corpus, tmp_path):
    from rag import RAG
    from rag.bases import KnowledgeBases
    from rag.http.app import create_api

    rag = RAG.open(index_copy, progress=False)
    bases = KnowledgeBases(rag, tmp_path / "kbs", lambda path, **o: RAG.open(path, progress=False, **o))
    bases.create("kite").add(kite_corpus / "kite.txt")
    app = create_api(rag, api_key=KEY, allowed_hosts=frozenset({"127.0.0.1", "localhost"}), bases=bases)
    with serving(app) as base:
        url = f"{base}/mcp"

        async def main(headers: dict[str, str]) -> dict:
            client = http_client(headers)
            async with client, streamable_http_client(url, http_client=client) as (read, write), \
                    ClientSession(read, write) as session:
                return await exercise(session, index_copy)

        anyio.run(main, {"Authorization": f"Bearer {KEY}"})

        async def list_only() -> set[str]:
            client = http_client({"X-API-Key": KEY})
            async with client, streamable_http_client(url, http_client=client) as (read, write), \
                    ClientSession(read, write) as session:
                await session.initialize()
                return {t.name for t in (await session.list_tools()).tools}

        assert anyio.run(list_only) == TOOLS

        async def named_base() -> None:
            client = http_client({"Authorization": f"Bearer {KEY}"})
            async with client, streamable_http_client(url, http_client=client) as (read, write), \
                    ClientSession(read, write) as session:
                await session.initialize()
                listed = payload(await session.call_tool("list_knowledge_bases", {}))["knowledge_bases"]
                assert {"name": "kite", "documents": 1, "chunks": 1, "default": False} in listed
                found = payload(await session.call_tool("search", {"question": "紫藤镇风筝节哪天举行？", "kb": "kite"}))
                hit = found["passages"][0]
                assert (hit["kb"], hit["doc_id"]) == ("kite", "kite.txt") and "四月十八日" in hit["text"]
                shown = payload(await session.call_tool("get_passage", {"doc_id": "kite.txt", "chunk_id": hit["chunk_id"],
                                                                        "kb": "kite"}))
                assert shown["text"] == hit["text"] and "kb=kite" in shown["view_url"]
                missing = await session.call_tool("get_passage", {"doc_id": "kite.txt", "chunk_id": hit["chunk_id"]})
                assert missing.is_error and "no such document" in text_of(missing)  # not in the default base

        anyio.run(named_base)

        hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                            "clientInfo": {"name": "t", "version": "1"}}}
        accept = {"Accept": "application/json, text/event-stream"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}):
            r = httpx.post(url, json=hello, headers={**accept, **headers})
            assert r.status_code == 401, (headers, r.text)
            assert r.headers.get("www-authenticate") == "Bearer"
        r = httpx.post(url, json=hello, headers={**accept, "Authorization": f"Bearer {KEY}", "Host": "evil.example"})
        assert r.status_code == 421
        r = httpx.post(url, json=hello, headers={**accept, "Authorization": f"Bearer {KEY}",
                                                  "Origin": "https://evil.example"})
        assert r.status_code == 403


@pytest.mark.slow
def test_citation_links_are_absolute_with_public_url(seed_rag, tmp_path):
    from rag.bases import KnowledgeBases
    from rag.http.mcp_server import Tools

    tools = Tools(KnowledgeBases(seed_rag, tmp_path / "kbs", lambda p, **o: None), "https://rag.example/base/")
    answer = tools.ask(QUESTION)
    assert answer["citations"]
    assert all(c["view_url"].startswith("https://rag.example/base/view?doc=") for c in answer["citations"])


def test_building_the_server_leaves_the_process_logging_alone():
    """MCPServer calls logging.basicConfig; `rag serve` builds one at start-up and keeps its own logging."""
    from rag.http.mcp_server import Tools, build_server

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = []  # as in a process that configured none (pytest adds its own)
    try:
        server = build_server(Tools(SimpleNamespace(folders=list), ""))
        assert root.handlers == [] and root.level == saved[1]
    finally:
        root.handlers[:] = saved[0]
    assert {t.name for t in anyio.run(server.list_tools)} == TOOLS
