"""The OpenAI chat API, asked by the official ``openai`` client over a real loopback server."""

from __future__ import annotations

import httpx
import openai
import pytest
from servers import serving

SEED_Q = "蓝风微短剧基地从签约到试运营用了多少天？"
KEY = "sk-test-key"


@pytest.fixture(scope="module")
def base(rag):
    from rag.http.guard import loopback_hosts
    from ui.server import build_app

    # as `rag serve` builds it on loopback: the Host check on
    with serving(build_app(rag, api_key=KEY, allowed_hosts=loopback_hosts("127.0.0.1", []))) as url:
        yield url


@pytest.fixture
def client(base):
    return openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=60)


@pytest.mark.slow
def test_models_list_the_knowledge_base(client):
    assert [m.id for m in client.models.list().data] == ["rag"]


@pytest.mark.slow
def test_a_plain_completion_answers_with_its_sources(client):
    r = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": SEED_Q}])
    text = r.choices[0].message.content
    assert "47天" in text and r.choices[0].finish_reason == "stop"
    assert "来源 Sources:\n[1] 000_e58332798fe41e73.txt" in text  # any client shows the sources
    extra = r.model_extra
    assert extra["abstained"] is False and extra["references"][0]["doc_id"] == "000_e58332798fe41e73.txt"
    assert "47天" in extra["references"][0]["quote"] and extra["answer_span"]["text"] == "47天"


@pytest.mark.slow
def test_a_streamed_completion_is_openai_chunks_with_the_same_answer(client):
    stream = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": SEED_Q}], stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "47天" in text and "来源 Sources:" in text
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["references"] and chunks[-1].model_extra["abstained"] is False


@pytest.mark.slow
def test_a_follow_up_uses_the_history(client):
    messages = [{"role": "system", "content": "你是助手"},
                {"role": "user", "content": "蓝风微短剧基地有多少个实景棚？"},
                {"role": "assistant", "content": "已建成60多个实景棚。"},
                {"role": "user", "content": [{"type": "text", "text": "它从签约到试运营用了多少天？"}]}]
    r = client.chat.completions.create(model="rag", messages=messages)
    assert "47天" in r.choices[0].message.content


@pytest.mark.slow
def test_an_unanswerable_question_abstains(client):
    r = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": "天心经开区管委会主任余磊是哪一年出生的？"}])
    assert r.model_extra["abstained"] is True and r.model_extra["references"] == []
    assert "资料中没有找到相关信息" in r.choices[0].message.content


def test_errors_have_openais_shape(base, client):
    bad = openai.OpenAI(base_url=f"{base}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        bad.models.list()
    assert exc.value.status_code == 401 and exc.value.body["type"] == "authentication_error"
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": SEED_Q}])
    assert "does not exist" in exc.value.body["message"]
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="rag", messages=[{"role": "assistant", "content": "hi"}])
    assert exc.value.body["message"] == "the last message must be the user's question"
    r = httpx.post(f"{base}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                   json={"model": "rag", "messages": [{"role": "user", "content": "x" * 5000}]})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert "over the limit" in r.json()["error"]["message"]
    assert httpx.get(f"{base}/health").json()["status"] == "ok"  # the rest of the API keeps its own shape
    assert httpx.post(f"{base}/api/ask", json={}).json()["error"].startswith("question")


def test_the_guards_refusals_have_openais_shape_too(base):
    """Refused before any route runs (wrong Host, cross-site, oversized body): still an OpenAI error."""
    auth = {"Authorization": f"Bearer {KEY}"}
    body = {"model": "rag", "messages": [{"role": "user", "content": SEED_Q}]}
    rebound = httpx.post(f"{base}/v1/chat/completions", json=body, headers={**auth, "Host": "evil.example:80"})
    cross = httpx.post(f"{base}/v1/chat/completions", json=body,
                       headers={**auth, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    huge = httpx.post(f"{base}/v1/chat/completions", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                      headers={**auth, "Content-Type": "application/json"})
    for r, status, kind in ((rebound, 421, "invalid_request_error"), (cross, 403, "permission_error"),
                            (huge, 413, "invalid_request_error")):
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert error["type"] == kind and error["message"] and set(error) == {"message", "type", "param", "code"}
    assert httpx.post(f"{base}/api/ask", json={"question": SEED_Q},
                      headers={"Host": "evil.example:80"}).json()["error"].startswith("this server does not answer")


@pytest.mark.slow
def test_browsers_on_listed_origins_may_call_the_api(rag, monkeypatch):
    """CORS for the origins RAG_ALLOWED_ORIGINS lists (a web chat app), none for the others."""
    from rag.http.app import create_api

    monkeypatch.setenv("RAG_ALLOWED_ORIGINS", "http://chat.example:3000")
    from rag import RAG

    listed = RAG.open(rag.index_dir, progress=False)
    with serving(create_api(listed, api_key=KEY)) as url:
        pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
        ok = httpx.options(f"{url}/v1/chat/completions", headers={"Origin": "http://chat.example:3000", **pre})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://chat.example:3000"
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        other = httpx.options(f"{url}/v1/chat/completions", headers={"Origin": "http://evil.example", **pre})
        assert "access-control-allow-origin" not in other.headers
        r = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                       json={"model": "rag", "messages": [{"role": "user", "content": SEED_Q}]},
                       headers={"Authorization": f"Bearer {KEY}", "Origin": "http://chat.example:3000",
                                "Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 200 and "47天" in r.json()["choices"][0]["message"]["content"]
        assert r.headers["access-control-allow-origin"] == "http://chat.example:3000"
    with serving(create_api(rag, api_key=KEY)) as url:  # no origins listed: no CORS at all
        r = httpx.options(f"{url}/v1/chat/completions", headers={"Origin": "http://chat.example:3000", **pre})
        assert "access-control-allow-origin" not in r.headers


def test_a_stream_sends_each_piece_when_the_next_comes_and_document_text_escaped():
    """An LLM's pieces stream as written (one piece behind); a piece that is the whole extractive answer
    (the fallback after an LLM failed) is sent as the final reply shows it: a document's markup escaped."""
    import json

    from rag.http.openai_api import stream_chunks
    from rag.types import Answer, AnswerEvent, Chunk, Citation, Passage

    def deltas(pieces: list[str], final: str, quote: str) -> list[str]:
        chunk = Chunk("c1", "a.md", quote, 0, len(quote))
        answer = Answer("q", final, False, [Citation(1, "a.md", "c1", quote, 0, len(quote))],
                        [Passage(chunk, 0.9, 1)], {})
        events = [AnswerEvent("token", text=p) for p in pieces] + [AnswerEvent("answer", answer=answer)]
        sent = [json.loads(line[6:]) for line in stream_chunks(iter(events), "rag") if line.startswith("data: {")]
        return [c["choices"][0]["delta"].get("content") for c in sent if c["choices"][0]["delta"].get("content")]

    llm = deltas(["游客", "**两万三千人**", " [1]"], "游客**两万三千人** [1]", "游客两万三千人。")
    assert llm[:2] == ["游客", "**两万三千人**"] and llm[2].startswith(" [1]\n\n来源 Sources:\n[1] a.md: 游客两万三千人。")
    evil = "见[点此](javascript:alert(1))<img src=x onerror=alert(1)>。"
    fallback = deltas([f"{evil} [1]"], f"{evil} [1]", evil)
    assert len(fallback) == 1 and "<img" not in fallback[0] and "](javascript" not in fallback[0]
    assert fallback[0].startswith("见\\[点此\\]\\(javascript\\:alert\\(1\\)\\)&lt;img src=x onerror=alert\\(1\\)&gt;。 [1]")
