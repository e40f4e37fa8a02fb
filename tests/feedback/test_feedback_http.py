"""POST /api/feedback: stored in the resolved knowledge base, bad fields 400, a full file 507, no key needed."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient
from servers import serving

from rag import RAG
from rag.feedback import FEEDBACK_FILE, read_feedback
from rag.http.app import create_api

BODY = {"rating": "down", "question": "蓝风微短剧基地从签约到试运营用了多少天？", "answer": "用时47天。 [1]",
        "corrected_answer": "47天", "chunk_ids": ["c1"], "doc_ids": ["000_e58332798fe41e73.txt"],
        "kbs": ["default"], "settings": {"top_k": 5, "retrieval": "hybrid", "generator": "extractive"}}


@pytest.fixture
def kb(writable_index):
    return RAG.open(writable_index, progress=False)


def app_for(rag: RAG, **kw):
    """The API as served: POST /api/feedback stores into the base ``kb`` names (the registry's ``get``)."""
    return create_api(rag, **kw)


@pytest.mark.slow
def test_feedback_is_stored_in_the_knowledge_base_without_the_key(kb):
    with TestClient(app_for(kb, api_key="secret")) as c:
        r = c.post("/api/feedback", json={**BODY, "kb": "default"})
        assert r.status_code == 201, r.text
        assert r.json()["stored"] is True
        records = read_feedback(kb.index_dir)
        assert [x["id"] for x in records] == [r.json()["id"]]
        assert records[0]["corrected_answer"] == "47天" and records[0]["kbs"] == ["default"]
        assert c.post("/api/feedback", json=BODY).status_code == 201  # kb omitted: the default one
        assert len(read_feedback(kb.index_dir)) == 2


@pytest.mark.parametrize(("change", "needle"), [
    ({"rating": "meh"}, "rating: Input should be 'up' or 'down'"),
    ({"question": 5}, "question: Input should be a valid string"),
    ({"reason": "x" * 501}, "reason: String should have at most 500 characters"),
    ({"not_in_documents": True}, "both a corrected_answer and not_in_documents"),
    ({"doc_ids": ["d"] * 51}, "doc_ids: List should have at most 50 items"),
    ({"doc_ids": ["a\tb"]}, "feedback doc_ids[0] holds the control character U+0009 at position 1"),
    ({"settings": {"top_k": [1]}}, "feedback settings.top_k must be a string, number, true/false or null, got list"),
    ({"id": "f" * 32}, "id: Extra inputs are not permitted"),
    ({"question": "问\x07题"}, "feedback question holds the control character U+0007 at position 1"),
    ({"kb": "a\x00b"}, "feedback kb holds the control character U+0000 at position 1"),
    ({"kb": " "}, "feedback kb is empty"),
])
@pytest.mark.slow
def test_bad_fields_are_400(kb, change, needle):
    with TestClient(app_for(kb)) as c:
        r = c.post("/api/feedback", json={**BODY, **change})
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]
    assert not (kb.index_dir / FEEDBACK_FILE).exists()


def test_a_lone_surrogate_is_400_naming_the_field(kb):
    raw = json.dumps({**BODY, "reason": "PLACEHOLDER"})
    with TestClient(app_for(kb)) as c:
        for field, text in (("reason", raw.replace("PLACEHOLDER", "\\ud800")),
                            ("kb", raw.replace('"kbs"', '"kb": "\\udfff", "kbs"'))):
            r = c.post("/api/feedback", content=text.encode(), headers={"content-type": "application/json"})
            assert r.status_code == 400, r.text  # pydantic refuses it as "not a valid string"
            assert r.json()["error"].startswith(f"{field}: ")
    assert not (kb.index_dir / FEEDBACK_FILE).exists()


def test_an_unknown_knowledge_base_is_a_404(kb):
    with TestClient(app_for(kb)) as c:
        r = c.post("/api/feedback", json={**BODY, "kb": "elsewhere"})
    assert r.status_code == 404 and "no knowledge base 'elsewhere'" in r.json()["error"]


def test_there_is_no_way_to_read_feedback_over_http(kb):
    with TestClient(app_for(kb)) as c:
        assert c.post("/api/feedback", json=BODY).status_code == 201
        assert c.get("/api/feedback").status_code == 405


@pytest.mark.slow
def test_a_full_file_is_507_over_a_real_server(writable_index):
    kb = RAG.open(writable_index, progress=False, max_feedback_mb=0.001)  # about 1 KB: two records, not three
    with serving(app_for(kb)) as base:
        codes = [httpx.post(f"{base}/api/feedback", json=BODY, timeout=30).status_code for _ in range(3)]
        assert codes == [201, 201, 507]
        r = httpx.post(f"{base}/api/feedback", json=BODY, timeout=30)
        assert r.status_code == 507 and "RAG_MAX_FEEDBACK_MB" in r.json()["error"]
        assert str(writable_index) not in r.json()["error"]  # the server's folders are not the client's business
        cross = httpx.post(f"{base}/api/feedback", json=BODY, timeout=30,
                           headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403
        big = httpx.post(f"{base}/api/feedback", timeout=30, headers={"content-type": "application/json"},
                         content=json.dumps({**BODY, "answer": "长" * 400_000}).encode())
        assert big.status_code == 413
    assert len(read_feedback(kb.index_dir)) == 2
