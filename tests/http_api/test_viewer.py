"""See the source (rag/http/viewer.py): /view, /api/file and /api/chunks over the real seed index."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shutil
from urllib.parse import quote

import pytest
from conftest import SEED_FILE
from pdfs import make_pdf

from rag.ingest.files import SourceFile, load_file

SEED_Q = "蓝风微短剧基地从签约到试运营用了多少天？"
SEED_DOC = SEED_FILE.name
HOSTILE = "第一段：这是一份测试文件。\n<script>alert(1)</script>后面的文字也要显示。\n最后一段：文件到此结束。\n"
HOSTILE_NAME = "测试 脚本&报告.txt"
PDF_PAGES = [["第一页：长沙市岳麓区概况。", "岳麓山海拔三百米。"], ["第二页：橘子洲大桥全长一千二百五十米。"],
             ["第三页：湘江在长沙境内长七十五公里。"]]


@pytest.fixture(scope="module")
def client(rag):
    from fastapi.testclient import TestClient

    from rag.http.app import create_api

    with TestClient(create_api(rag, api_key="")) as c:
        yield c


@pytest.fixture(scope="module")
def citation(rag):
    answer = rag.ask(SEED_Q)
    assert "47天" in answer.answer and answer.citations
    return answer.citations[0]


def marked(page: str) -> str:
    found = re.findall(r'<mark id="cited">(.*?)</mark>', page, re.S)
    assert len(found) == 1, page[:2000]
    return html.unescape(found[0])


def source_text(path) -> str:
    return load_file(SourceFile(path, path.name)).text


def _hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


# ---- the view page -------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_view_marks_exactly_the_cited_text_with_its_article_and_section(client, citation):
    r = client.get("/view", params={"doc": citation.doc_id, "start": citation.start, "end": citation.end})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert marked(page) == source_text(SEED_FILE)[citation.start:citation.end] == citation.quote
    assert '<html lang="zh">' in page and "文档 Document" in page and "下载原文件" not in page  # a folder's file
    assert f"<h1>{html.escape(citation.article)}</h1>" in page and "小节 Section: " + citation.section in page
    assert f"引文 Cited: 字符 chars {citation.start}–{citation.end}" in page
    assert "蓝风微短剧基地的崛起" in page  # the text around the citation is shown too
    assert "scrollIntoView" in page


@pytest.mark.slow
def test_the_view_allows_only_its_own_script_and_style(client, citation):
    r = client.get("/view", params={"doc": citation.doc_id, "start": citation.start, "end": citation.end})
    csp = r.headers["content-security-policy"]
    script = re.search(r"<script>(.*?)</script>", r.text, re.S)[1]
    style = re.search(r"<style>(.*?)</style>", r.text, re.S)[1]
    assert csp.startswith("default-src 'none';") and "frame-ancestors 'self'" in csp
    assert f"script-src {_hash(script)};" in csp and f"style-src {_hash(style)};" in csp  # nothing else runs
    assert "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"


def test_a_chunk_id_marks_the_chunk(client, rag):
    chunk = next(c for c in rag.state.chunks if "47天" in c.text)
    page = client.get("/view", params={"doc": SEED_DOC, "chunk": chunk.chunk_id}).text
    assert marked(page) == source_text(SEED_FILE)[chunk.start:chunk.end]
    assert client.get("/view", params={"doc": SEED_DOC, "chunk": "nope"}).status_code == 404


def test_without_a_citation_the_whole_text_is_shown_unmarked(client, seed_text):
    page = client.get("/view", params={"doc": SEED_DOC}).text
    assert "<mark" not in page
    assert html.escape(seed_text.strip().splitlines()[-1]) in page  # the last line: nothing cut


def test_a_long_text_is_cut_to_a_window_around_the_citation(client, citation, monkeypatch):
    from rag.http import viewer

    monkeypatch.setattr(viewer, "WINDOW_CHARS", 1500)
    monkeypatch.setattr(viewer, "CONTEXT_CHARS", 400)
    page = client.get("/view", params={"doc": SEED_DOC, "start": citation.start, "end": citation.end}).text
    assert marked(page) == citation.quote
    text = html.unescape(re.search(r'<div class="text">(.*?)</div>', page, re.S)[1])
    assert len(re.sub(r"</?mark[^>]*>", "", text)) <= 1500
    assert "The text is long: showing characters" in page and "of 0–7499" in page


@pytest.mark.parametrize("params", [
    {"start": -1, "end": 5}, {"start": 10, "end": 5}, {"start": 0, "end": 10**9}, {"start": "x", "end": 5},
    {"start": 5}, {"start": 1.5, "end": 5},
])
def test_bad_offsets_are_400(client, params):
    r = client.get("/view", params={"doc": SEED_DOC, **params})
    assert r.status_code == 400, r.text
    assert r.json()["error"]


@pytest.mark.parametrize("route", ["/view", "/api/file", "/api/chunks"])
def test_bad_and_unknown_documents(client, route):
    assert client.get(route, params={"doc": "a\x00b"}).status_code == 400
    assert client.get(route, params={"doc": "x" * 1025}).status_code == 400
    assert client.get(route, params={"doc": SEED_DOC, "kb": "a\x00"}).status_code == 400
    assert client.get(route).status_code == 400  # no doc at all
    r = client.get(route, params={"doc": "../../etc/passwd"})
    assert r.status_code == 404 and "no such document" in r.json()["error"]


def test_reads_need_no_key_even_when_the_server_has_one(rag, citation):
    from fastapi.testclient import TestClient

    from rag.http.app import create_api

    with TestClient(create_api(rag, api_key="s3cret")) as c:
        assert c.get("/view", params={"doc": SEED_DOC, "start": citation.start, "end": citation.end}).status_code == 200
        assert c.get("/api/chunks", params={"doc": SEED_DOC}).status_code == 200


# ---- uploads: escaped, downloadable --------------------------------------------------------------
@pytest.fixture(scope="module")
def hostile_upload(client, rag):
    r = client.post("/api/documents", files=[("files", (HOSTILE_NAME, HOSTILE.encode(), "text/plain"))])
    assert r.status_code == 200, r.text
    assert HOSTILE_NAME in r.json()["added"] or any(HOSTILE_NAME in a for a in r.json()["added"])
    return HOSTILE_NAME


def test_an_upload_is_shown_escaped_with_a_download_link(client, hostile_upload):
    start = HOSTILE.index("<script>")
    page = client.get("/view", params={"doc": hostile_upload, "start": start, "end": start + 25}).text
    assert page.count("<script>") == 1  # only the page's own scroll script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and marked(page) == "<script>alert(1)</script>"
    assert html.escape(hostile_upload) in page and hostile_upload not in page  # the & of its name escaped too
    link = html.unescape(re.search(r'<a class="download" href="([^"]+)">下载原文件 Download the stored file</a>', page)[1])
    assert link == "/api/file?doc=" + quote(hostile_upload, safe="").replace("%20", "+")


def test_the_stored_upload_downloads_as_an_attachment(client, hostile_upload):
    r = client.get("/api/file", params={"doc": hostile_upload})
    assert r.status_code == 200 and r.content == HOSTILE.encode()
    cd = r.headers["content-disposition"]
    assert cd.startswith("attachment; ") and "filename*=UTF-8''" + quote(HOSTILE_NAME, safe="") in cd
    assert r.headers["content-type"] == "text/plain; charset=utf-8" and r.headers["x-content-type-options"] == "nosniff"


def test_a_gb18030_upload_downloads_with_its_charset(client):
    text = "湘江风光带全长五十公里，沿岸有十二座公园。"
    name = "湘江.txt"
    assert client.post("/api/documents", files=[("files", (name, text.encode("gb18030"), "text/plain"))]).status_code == 200
    r = client.get("/api/file", params={"doc": name})
    assert r.content == text.encode("gb18030") and r.headers["content-type"] == "text/plain; charset=gb18030"
    assert r.content.decode(r.charset_encoding) == text


def test_a_folder_indexed_document_has_no_file_to_download(client):
    r = client.get("/api/file", params={"doc": SEED_DOC})
    assert r.status_code == 404 and "was not uploaded" in r.json()["error"]


def test_a_stored_upload_replaced_by_a_symlink_is_not_served(client, rag, tmp_path):
    from rag.uploads import documents_dir

    name = "链接.txt"
    assert client.post("/api/documents", files=[("files", (name, "链接测试的正文内容。".encode(), "text/plain"))]).status_code == 200
    stored = documents_dir(rag) / name
    assert client.get("/api/file", params={"doc": name}).status_code == 200
    secret = tmp_path / "secret.txt"
    secret.write_text("不该被下载的内容", encoding="utf-8")
    stored.unlink()
    stored.symlink_to(secret)
    assert client.get("/api/file", params={"doc": name}).status_code == 404


# ---- where the text comes from -------------------------------------------------------------------
@pytest.mark.slow
def test_a_changed_file_is_shown_as_it_was_indexed(tmp_path):
    from fastapi.testclient import TestClient

    from rag import RAG
    from rag.http.app import create_api

    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(SEED_FILE, folder / SEED_DOC)
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.index([folder])
    quote_text = "从签约到试运营,仅用时47天"
    start = source_text(folder / SEED_DOC).index(quote_text)
    indexed = source_text(folder / SEED_DOC)
    (folder / SEED_DOC).write_text("全部改写了。", encoding="utf-8")  # the file no longer matches the manifest
    with TestClient(create_api(rag, api_key="")) as c:
        page = c.get("/view", params={"doc": SEED_DOC, "start": start, "end": start + len(quote_text)}).text
    assert marked(page) == quote_text and "全部改写了" not in page and "<p class=note>" not in page
    assert html.escape(indexed[:start]) in page  # the kept text: every line break and page marker as indexed


# ---- a PDF: the cited page only ------------------------------------------------------------------

def test_a_pdf_shows_only_the_cited_page_with_links_to_its_neighbours(client, rag, tmp_path):
    pdf = tmp_path / "report.pdf"
    make_pdf(pdf, PDF_PAGES)
    rag.add(pdf)
    text = source_text(pdf)
    start = text.index("橘子洲大桥")
    end = start + len("橘子洲大桥全长一千二百五十米")
    page = client.get("/view", params={"doc": "report.pdf", "start": start, "end": end}).text
    assert marked(page) == "橘子洲大桥全长一千二百五十米"
    assert "页 Page: 2 / 3" in page and "岳麓山" not in page and "湘江" not in page
    prev, nxt = (html.unescape(u) for u in re.findall(r'<a href="([^"]+)">', page)[:2])
    assert prev == "/view?doc=report.pdf&page=1" and nxt == "/view?doc=report.pdf&page=3"
    third = client.get(nxt).text
    assert "湘江在长沙境内长七十五公里" in third and "页 Page: 3 / 3" in third and "下一页" not in third
    assert client.get("/view", params={"doc": "report.pdf", "page": 4}).status_code == 400
    assert client.get("/api/file", params={"doc": "report.pdf"}).status_code == 404  # indexed from a folder


# ---- the chunk list ------------------------------------------------------------------------------
def test_the_chunk_list_is_what_was_indexed_in_order(client, rag):
    rows = client.get("/api/chunks", params={"doc": SEED_DOC}).json()
    entry = next(d for d in rag.documents() if d["doc_id"] == SEED_DOC)
    assert len(rows) == entry["chunks"] and [r["start"] for r in rows] == sorted(r["start"] for r in rows)
    assert set(rows[0]) == {"chunk_id", "start", "end", "article", "section", "page", "n_chars", "first"}
    by_id = {c.chunk_id: c for c in rag.state.chunks}
    for row in rows:
        chunk = by_id[row["chunk_id"]]
        assert row["n_chars"] == len(chunk.text) and (row["start"], row["end"]) == (chunk.start, chunk.end)
        assert len(row["first"]) <= 61 and " ".join(chunk.text.split()).startswith(row["first"].rstrip("…"))
    assert rows[0]["article"] == "数字潮涌产业兴 营商沃土育新机"
    assert any(r["section"] == "文化科技融合,激活产业新动能" for r in rows)


def test_chunk_rows_for_the_documents_tab(rag):
    from rag.errors import DocumentNotFoundError
    from ui.chunks_view import CHUNK_HEADERS, chunk_rows, document_chunk_rows

    rows = document_chunk_rows(rag, SEED_DOC)
    assert len(CHUNK_HEADERS) == 5 and all(len(r) == 5 for r in rows)
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1)) and rows[0][1] == "数字潮涌产业兴 营商沃土育新机"
    assert chunk_rows([{"article": None, "section": None, "page": 3, "first": "开头"}]) == [[1, "", "", 3, "开头"]]
    with pytest.raises(DocumentNotFoundError):
        document_chunk_rows(rag, "nope.txt")


def test_a_pdf_whose_file_is_gone_still_shows_its_cited_page(tmp_path):
    from fastapi.testclient import TestClient

    from rag import RAG
    from rag.http.app import create_api

    folder = tmp_path / "docs"
    folder.mkdir()
    make_pdf(folder / "gone.pdf", PDF_PAGES)
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.index([folder])
    start = source_text(folder / "gone.pdf").index("橘子洲大桥")
    (folder / "gone.pdf").unlink()
    with TestClient(create_api(rag, api_key="")) as c:
        page = c.get("/view", params={"doc": "gone.pdf", "start": start, "end": start + 5}).text
        third = c.get("/view", params={"doc": "gone.pdf", "page": 3}).text
    assert marked(page) == "橘子洲大桥" and "页 Page: 2 / 3" in page and "岳麓山" not in page
    assert "<p class=note>" not in page  # the text kept at indexing, not one rebuilt from the chunks
    assert "湘江在长沙境内长七十五公里" in third and "橘子洲" not in third


def test_a_named_knowledge_base_is_viewed_with_kb(rag, tmp_path):
    from fastapi.testclient import TestClient

    from rag import RAG
    from rag.bases import KnowledgeBases
    from rag.http.app import create_api

    source = tmp_path / "kite-festival.txt"
    source.write_text("紫藤镇风筝节于每年四月十八日举行。\n今年的紫藤镇风筝节吸引游客两万三千人，创历史新高。\n", encoding="utf-8")
    kite = RAG.open(tmp_path / "kbs" / "kite", create=True, progress=False)
    kite.index([source])
    c = kite.ask("紫藤镇风筝节今年吸引了多少游客？").citations[0]
    params = {"doc": c.doc_id, "start": c.start, "end": c.end}
    with TestClient(create_api(rag, api_key="", bases=KnowledgeBases(rag, tmp_path / "kbs", RAG.open))) as client:
        page = client.get("/view", params={**params, "kb": "kite"}).text
        assert marked(page) == c.quote and "两万三千" in c.quote
        assert client.get("/api/chunks", params={"doc": c.doc_id, "kb": "kite"}).json()[0]["first"].startswith("紫藤镇")
        assert client.get("/view", params=params).status_code == 404  # not in the default base
        assert client.get("/view", params={**params, "kb": "nope"}).status_code == 404
        assert client.get("/view", params={**params, "kb": "../kbs"}).status_code == 400  # no path tricks
