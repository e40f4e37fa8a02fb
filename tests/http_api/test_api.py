"""The HTTP API through HTTP: FastAPI's TestClient, and a real uvicorn server on a loopback port."""

from __future__ import annotations

import shutil
import threading

import httpx
import pytest
from conftest import SEED_FILE
from servers import parse_sse, serving

SEED_Q = "蓝风微短剧基地从签约到试运营用了多少天？"
SEED_DOC = SEED_FILE.name
NEW_DOC = "紫藤镇风筝节于每年四月十八日举行。\n今年的紫藤镇风筝节吸引游客两万三千人，创历史新高。\n"
NEW_Q = "紫藤镇风筝节今年吸引了多少游客？"


@pytest.fixture(scope="module")
def client(rag):
    from fastapi.testclient import TestClient

    from rag.http.app import create_api

    with TestClient(create_api(rag, api_key="", max_upload_mb=1)) as c:
        yield c


@pytest.fixture(scope="module")
def server(rag):
    """The API with the Gradio UI mounted, served by uvicorn in a thread; yields its base URL."""
    from ui.server import build_app

    with serving(build_app(rag, api_key="")) as base:
        yield base


def upload(c, name: str, data: bytes, **kw):
    return c.post("/api/documents", files=[("files", (name, data, "text/plain"))], **kw)


# ---- reading -----------------------------------------------------------------------------------
def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["documents"] >= 1 and body["chunks"] > 0


def test_api_answers_are_not_cached_but_a_route_keeps_its_own_caching(client):
    """What /api and /v1 answer depends on the caller's key: no browser or proxy may keep it for the next caller."""
    for response in (client.post("/api/search", json={"question": "天心经开区"}), client.get("/api/documents"),
                     client.get("/api/kbs"), client.get("/v1/models"), client.post("/api/ask", json={"question": ""})):
        assert response.headers.get("cache-control") == "no-store", response.request.url
    assert "no-store" not in (client.get("/health").headers.get("cache-control") or "")


def test_ask_answers_the_seed_question_with_a_citation(client):
    r = client.post("/api/ask", json={"question": SEED_Q})
    assert r.status_code == 200, r.text
    d = r.json()
    assert "47天" in d["answer"] and not d["abstained"]
    assert d["citations"] and d["citations"][0]["doc_id"] == SEED_DOC and "47天" in d["citations"][0]["quote"]
    cited = d["passages"][d["citations"][0]["n"] - 1]
    assert d["citations"][0]["quote"] in cited["text"]
    assert set(d) >= {"question", "answer", "abstained", "citations", "passages", "timings", "warnings", "generator"}


def test_ask_options_are_passed_through(client):
    r = client.post("/api/ask", json={"question": SEED_Q, "top_k": 2, "retrieval": "dense", "generator": "extractive"})
    assert r.status_code == 200, r.text
    assert len(r.json()["passages"]) == 2 and "47天" in r.json()["answer"]


@pytest.mark.slow
def test_stream_sends_sources_then_tokens_then_the_answer(server):
    with httpx.stream("POST", f"{server}/api/ask/stream", json={"question": SEED_Q}, timeout=120) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(r.read().decode())
    types = [e["type"] for e in events]
    assert types[0] == "sources" and types[-1] == "answer" and types.count("answer") == 1
    assert "token" in types and set(types[1:-1]) == {"token"}
    assert events[0]["passages"] and events[0]["passages"][0]["n"] == 1
    assert "47天" in "".join(e["text"] for e in events if e["type"] == "token")
    assert "47天" in events[-1]["answer"]["answer"] and events[-1]["answer"]["citations"]


def test_stream_refuses_bad_input_before_streaming(client):
    r = client.post("/api/ask/stream", json={"question": "  "})
    assert r.status_code == 400 and "empty" in r.json()["error"]


def test_search_returns_passages(client):
    r = client.post("/api/search", json={"question": "邱沛霖", "top_k": 3})
    assert r.status_code == 200, r.text
    hits = r.json()
    assert len(hits) == 3 and [h["n"] for h in hits] == [1, 2, 3]
    assert "邱沛霖" in hits[0]["text"] and hits[0]["doc_id"] == SEED_DOC
    assert set(hits[0]) >= {"doc_id", "chunk_id", "text", "score", "start", "end"}


def test_list_documents(client):
    r = client.get("/api/documents")
    assert r.status_code == 200
    docs = {d["doc_id"]: d for d in r.json()}
    assert docs[SEED_DOC]["chunks"] > 0 and {"size", "indexed_at", "sha256"} <= set(docs[SEED_DOC])
    assert docs[SEED_DOC]["path"] == SEED_DOC and docs[SEED_DOC]["uploaded"] is False  # no server paths


def test_openapi_and_docs(client):
    schema = client.get("/openapi.json").json()
    assert {"/health", "/api/ask", "/api/ask/stream", "/api/search", "/api/documents",
            "/api/documents/{doc_id}"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 200


@pytest.mark.slow
def test_the_chat_page_is_mounted_at_root(server):
    r = httpx.get(f"{server}/", timeout=30)
    assert r.status_code == 200 and "gradio" in r.text.lower()
    assert httpx.get(f"{server}/health", timeout=30).json()["status"] == "ok"  # API routes win over the mount


# ---- writing -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_upload_answer_delete(client, index_copy):
    r = upload(client, "kite.txt", NEW_DOC.encode())
    assert r.status_code == 200, r.text
    assert r.json()["added"] == ["kite.txt"] and r.json()["chunks_embedded"] >= 1
    assert (index_copy / "documents" / "kite.txt").read_text(encoding="utf-8") == NEW_DOC
    listed = {d["doc_id"]: d for d in client.get("/api/documents").json()}
    assert listed["kite.txt"]["uploaded"] is True and "/" not in listed["kite.txt"]["path"]

    d = client.post("/api/ask", json={"question": NEW_Q}).json()
    assert "两万三千" in d["answer"] and d["citations"][0]["doc_id"] == "kite.txt"

    r = client.delete("/api/documents/kite.txt")
    assert r.status_code == 200 and r.json() == {"deleted": ["kite.txt"]}
    assert "kite.txt" not in {d["doc_id"] for d in client.get("/api/documents").json()}
    assert not (index_copy / "documents" / "kite.txt").exists()
    for top_k in (5, 20):
        hits = client.post("/api/search", json={"question": NEW_Q, "top_k": top_k}).json()
        assert all(h["doc_id"] != "kite.txt" for h in hits)
    d = client.post("/api/ask", json={"question": NEW_Q}).json()
    assert all(p["doc_id"] != "kite.txt" for p in d["passages"]) and "两万三千" not in d["answer"]


@pytest.mark.slow
def test_upload_several_files_at_once(client):
    files = [("files", ("a.md", "# 甲\n青石桥建于1902年。".encode(), "text/markdown")),
             ("files", ("b.html", "<p>白鹭洲书院始建于1241年。</p>".encode(), "text/html"))]
    r = client.post("/api/documents", files=files)
    assert r.status_code == 200, r.text
    assert sorted(r.json()["added"]) == ["a.md", "b.html"]
    for name in ("a.md", "b.html"):
        assert client.delete(f"/api/documents/{name}").status_code == 200


def test_a_failed_embedding_keeps_the_upload(client, rag, index_copy, monkeypatch):
    from rag.errors import EmbedderError

    def broken(paths):
        raise EmbedderError("the embedding model crashed")

    monkeypatch.setattr(rag, "add", broken)
    r = upload(client, "keep.txt", "保存在磁盘上的上传文件。".encode())
    assert r.status_code == 500 and "crashed" in r.json()["error"]
    assert (index_copy / "documents" / "keep.txt").is_file()
    (index_copy / "documents" / "keep.txt").unlink()


def test_an_unreadable_upload_is_refused_and_not_kept(client, index_copy):
    r = upload(client, "empty.txt", b"")
    assert r.status_code == 400 and "empty.txt" in r.json()["error"]
    assert not (index_copy / "documents" / "empty.txt").exists()


# ---- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [{"question": ""}, {"question": "   \n"}, {}, {"question": 5},
                                  {"question": SEED_Q, "top_k": 0}, {"question": SEED_Q, "retrieval": "magic"},
                                  {"question": SEED_Q, "generator": "no-colon"}])
def test_bad_questions_are_400(client, body):
    r = client.post("/api/ask", json=body)
    assert r.status_code == 400, r.text
    assert isinstance(r.json()["error"], str) and r.json()["error"]


def test_a_huge_question_is_400(client, rag):
    r = client.post("/api/ask", json={"question": "问" * (rag.settings.max_question_chars + 1)})
    assert r.status_code == 400 and "max_question_chars" in r.json()["error"]
    r = client.post("/api/search", json={"question": "问" * (rag.settings.max_question_chars + 1)})
    assert r.status_code == 400


def test_an_oversized_json_body_is_413(client):
    r = client.post("/api/ask", content=b'{"question": "' + b"a" * (2 * 1024 * 1024) + b'"}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and "error" in r.json()


def test_unknown_document_is_404(client):
    r = client.delete("/api/documents/no-such-file.txt")
    assert r.status_code == 404 and "no-such-file.txt" in r.json()["error"]


def test_an_oversized_upload_is_413(client, index_copy):
    r = upload(client, "big.txt", "大".encode() * (600 * 1024))  # 1.8 MB over the 1 MB limit
    assert r.status_code == 413 and "RAG_MAX_UPLOAD_MB" in r.json()["error"]
    assert not (index_copy / "documents" / "big.txt").exists()


def test_the_upload_limit_comes_from_the_environment(index_copy, monkeypatch):
    from fastapi.testclient import TestClient

    from rag import RAG
    from rag.http.app import create_api

    monkeypatch.setenv("RAG_MAX_UPLOAD_MB", "0.01")  # read with every other setting, when the index opens
    with TestClient(create_api(RAG.open(index_copy, progress=False), api_key="")) as c:
        r = upload(c, "medium.txt", b"x" * 20_000)
    assert r.status_code == 413


def test_a_path_in_the_file_name_is_stripped(client, index_copy):
    r = upload(client, "../../etc/passwd.txt", "路径穿越测试文件，内容无害。".encode())
    assert r.status_code == 200, r.text
    assert r.json()["added"] == ["passwd.txt"]
    assert (index_copy / "documents" / "passwd.txt").is_file()
    assert not (index_copy.parent / "etc").exists() and not (index_copy / "etc").exists()
    assert client.delete("/api/documents/passwd.txt").status_code == 200


@pytest.mark.parametrize("name", ["evil.exe", "noext", "..", "../", "...txt"])
def test_unsupported_or_empty_names_are_400(client, name):
    r = upload(client, name, "内容".encode())
    assert r.status_code == 400, r.text
    assert r.json()["error"]


def test_safe_filename():
    from rag.errors import ConfigError
    from rag.uploads import safe_filename

    assert safe_filename("../../etc/passwd.txt") == "passwd.txt"
    assert safe_filename("C:\\Users\\x\\报告.md") == "报告.md"
    assert safe_filename(".hidden.txt") == "hidden.txt"
    assert safe_filename("a\u202etxt.exe.txt") == "atxt.exe.txt"  # no right-to-left override
    assert len(safe_filename("长" * 300 + ".txt").encode()) <= 200
    for bad in ["a\x00.txt", "..", "/", "", "x.TXT.exe", "x.zip", None]:
        with pytest.raises(ConfigError):
            safe_filename(bad)
    assert safe_filename("X.TXT") == "X.TXT"


def test_the_api_key_guards_writes(index_copy, monkeypatch):
    from fastapi.testclient import TestClient

    from rag import RAG
    from rag.http.app import create_api

    monkeypatch.setenv("RAG_API_KEY", "s3cret")
    with TestClient(create_api(RAG.open(index_copy, progress=False))) as c:
        assert upload(c, "k.txt", "钥匙测试。".encode()).status_code == 401
        assert upload(c, "k.txt", "钥匙测试。".encode(), headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.delete("/api/documents/k.txt").status_code == 401
        assert c.delete(f"/api/documents/{SEED_DOC}", headers={"X-API-Key": "nope"}).status_code == 401
        assert "error" in c.delete("/api/documents/k.txt").json()
        # reads stay open
        assert c.get("/api/documents").status_code == 200
        assert c.post("/api/search", json={"question": SEED_Q}).status_code == 200
        r = upload(c, "k.txt", "钥匙测试：铜钥匙藏在第三块石板下。".encode(), headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200, r.text
        assert c.delete("/api/documents/k.txt", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/health").json()["write_protected"] is True


# ---- concurrency -------------------------------------------------------------------------------
@pytest.mark.slow
def test_concurrent_asks_while_a_document_is_added(server):
    results: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(9)

    def asker() -> None:
        try:
            with httpx.Client(base_url=server, timeout=300) as c:
                start.wait()
                for _ in range(2):
                    r = c.post("/api/ask", json={"question": SEED_Q})
                    results.append((r.status_code, r.json().get("answer", r.text)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=asker) for _ in range(8)]
    for t in threads:
        t.start()
    start.wait()
    big = "".join(f"第{i}段：紫藤镇的第{i}号风筝长{i}米，用竹子和丝绸制成。\n" for i in range(200))
    with httpx.Client(base_url=server, timeout=300) as c:
        r = upload(c, "kites-many.txt", big.encode())
        assert r.status_code == 200, r.text
        for t in threads:
            t.join(timeout=600)
        assert not errors, errors
        assert len(results) == 16
        assert all(status == 200 and "47天" in answer for status, answer in results), results
        assert "kites-many.txt" in {d["doc_id"] for d in c.get("/api/documents").json()}
        assert c.delete("/api/documents/kites-many.txt").status_code == 200


def test_metadata_filters_are_passed_through(client):
    r = client.post("/api/search", json={"question": SEED_Q, "filters": {"doc": "000_*.txt"}})
    assert r.status_code == 200 and r.json() and all(h["doc_id"] == SEED_DOC for h in r.json())
    d = client.post("/api/ask", json={"question": SEED_Q, "filters": {"doc": "nothing-*.md"}}).json()
    assert d["passages"] == [] and "47天" not in d["answer"]
    r = client.post("/api/ask", json={"question": SEED_Q, "filters": {"colour": "blue"}})
    assert r.status_code == 400 and "colour" in r.json()["error"]


def test_a_stored_upload_left_unindexed_is_picked_up_at_the_next_start(writable_index):
    from rag import RAG
    from rag.uploads import documents_dir, index_pending_uploads

    rag = RAG.open(writable_index, progress=False)
    folder = documents_dir(rag)
    folder.mkdir(exist_ok=True)
    (folder / "left-over.txt").write_text("上次上传后嵌入失败的文件：湘江新区新建公园三座。", encoding="utf-8")
    report = index_pending_uploads(rag)
    assert report.added == ["left-over.txt"]
    assert RAG.open(writable_index).search("湘江新区新建公园", top_k=1)[0].chunk.doc_id == "left-over.txt"
    assert index_pending_uploads(rag).chunks_embedded == 0  # nothing twice


def test_a_deleted_upload_stays_deleted_after_a_restart_even_in_a_moved_index(writable_index, tmp_path):

    from rag import RAG
    from rag.uploads import delete_document, documents_dir, index_pending_uploads

    rag = RAG.open(writable_index, progress=False)
    folder = documents_dir(rag)
    folder.mkdir(exist_ok=True)
    (folder / "gone.txt").write_text("要删除的上传文件：橘子洲焰火每周六晚上燃放。", encoding="utf-8")
    rag.add(folder / "gone.txt")
    moved = tmp_path / "moved"
    shutil.copytree(writable_index, moved)  # documents.json still names the old absolute path
    rag2 = RAG.open(moved, progress=False)
    delete_document(rag2, "gone.txt")
    assert not (documents_dir(rag2) / "gone.txt").exists() and not list(documents_dir(rag2).glob(".deleted-*"))
    index_pending_uploads(rag2)  # what the next start does
    assert "gone.txt" not in {d["doc_id"] for d in RAG.open(moved).documents()}


@pytest.mark.subprocess
def test_the_library_never_imports_the_ui():
    """Imports go one way, ui → rag: the HTTP layer and the uploads load without ui, and no module
    of rag/ imports it, even late inside a function."""
    import re
    import subprocess
    import sys

    from conftest import ROOT

    code = "import sys, rag.http.app, rag.uploads; print(sorted(m for m in sys.modules if m.split('.')[0] == 'ui'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    imports_ui = re.compile(r"^\s*(from\s+ui(\.\w+)*\s+import|import\s+ui(\.|\s|$))", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "rag").rglob("*.py"))
                 if imports_ui.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_search_explains_the_scores_when_asked(client):
    plain = client.post("/api/search", json={"question": SEED_Q, "top_k": 5})
    r = client.post("/api/search", json={"question": SEED_Q, "top_k": 5, "explain": True})
    assert plain.status_code == 200 and r.status_code == 200, r.text
    hits = r.json()
    assert all("explain" not in h for h in plain.json())
    assert [{k: v for k, v in h.items() if k != "explain"} for h in hits] == plain.json()  # same ranking and scores
    top = hits[0]["explain"]
    assert hits[0]["doc_id"] == SEED_DOC and "47天" in hits[0]["text"]
    assert {"dense", "dense_rank", "bm25", "bm25_rank", "fused", "lexical_weight_used", "rerank_bonus",
            "exact_boost", "score", "rank", "query"} <= set(top)
    assert top["rank"] == 1 and top["score"] == hits[0]["score"] and top["dense_rank"] >= 1 and top["bm25"] > 0
    facts = top["query"]
    assert facts["mode"] == "hybrid" and facts["fusion"] == "convex" and 0 < facts["coverage"] <= 1
    assert facts["lexical_weight_used"] == pytest.approx(0.7 * facts["coverage"], abs=1e-5)


def test_search_controls_reach_the_ranking(client):
    body = {"question": SEED_Q, "top_k": 5, "explain": True, "lexical_weight": 0, "rerank": False}
    hits = client.post("/api/search", json=body).json()
    facts = hits[0]["explain"]["query"]
    assert facts["lexical_weight"] == 0 and facts["lexical_weight_used"] == 0 and facts["rerank_weight_used"] == 0
    assert all(h["explain"]["rerank_bonus"] == 0 for h in hits)
    assert hits[0]["explain"]["fused"] == pytest.approx(1.0)  # the best cosine, min-max normalised
    default = client.post("/api/search", json={"question": SEED_Q, "top_k": 5, "explain": True}).json()
    assert [h["explain"]["fused"] for h in hits] != [h["explain"]["fused"] for h in default]


def test_explained_search_keeps_the_filters(client):
    r = client.post("/api/search", json={"question": SEED_Q, "explain": True, "filters": {"doc": "nothing-*.md"}})
    assert r.status_code == 200 and r.json() == []
    r = client.post("/api/search", json={"question": SEED_Q, "explain": True, "filters": {"doc": "000_*.txt"}})
    assert r.status_code == 200 and r.json() and all(h["doc_id"] == SEED_DOC and "explain" in h for h in r.json())


@pytest.mark.parametrize(("field", "value"), [
    ("lexical_weight", 1.5), ("lexical_weight", -0.2), ("lexical_weight", "0.5"), ("explain", "yes"),
    ("rerank", "no"), ("rerank", 1),
])
def test_bad_search_controls_are_400_naming_the_field(client, field, value):
    r = client.post("/api/search", json={"question": SEED_Q, field: value})
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(f"{field}: "), r.json()
