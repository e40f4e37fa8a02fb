"""Issue 23, bugs 7-10 and 12 (API parts), tried as an attacker would against a real server on loopback.

7: a lone surrogate in a filter key was a 500; 8: knowledge-base names were limited in characters, not
in the bytes a folder name takes; 9: server paths reached clients; 10: document text shaped what was
rendered (citation markers, links, HTML); 12: a damaged base was "does not exist" and offered as a model,
a full feedback file said "0.0 MB". Each test here failed before its fix.
"""

from __future__ import annotations

import html
import json
import re
import shutil

import httpx
import pytest
from markdown_it import MarkdownIt
from servers import parse_sse, serving

KEY = "h0les-k3y"
AUTH = {"Authorization": f"Bearer {KEY}"}
KITE_Q = "紫藤镇风筝节今年吸引了多少游客？"
EVIL_NAME = "[点此查看原文](https:evil.example).md"
EVIL_TEXT = ("# 风筝节\n\n紫藤镇风筝节今年吸引游客两万三千人，详见[3]与[点此](javascript:alert(1))"
             "<img src=x onerror=alert(1)>。\n\n另有说明：灯会展出彩灯八百组。\n")
WIDE = "\U00010400"  # 𐐀: one letter, four bytes in UTF-8


@pytest.fixture(scope="module")
def served(index_copy, tmp_path_factory):
    """`rag serve` with a key over the seed index and a root of bases: ``evil`` (a hostile Markdown file)
    and ``broken`` (a manifest that is not JSON)."""
    from rag import RAG
    from rag.bases import create_base
    from ui.server import build_app

    root = tmp_path_factory.mktemp("kbs")
    source = tmp_path_factory.mktemp("evil-src") / EVIL_NAME
    source.write_text(EVIL_TEXT, encoding="utf-8")
    create_base(root, "evil", RAG.open, progress=False).index([source])
    (root / "broken").mkdir()
    (root / "broken" / "manifest.json").write_text("{not json", encoding="utf-8")
    rag = RAG.open(index_copy, progress=False, kb_root=str(root))
    with serving(build_app(rag, api_key=KEY)) as url:
        yield url, root


def _post(url: str, path: str, body: dict | str, **kw) -> httpx.Response:
    if isinstance(body, str):  # raw JSON: what an attacker sends, lone surrogates included
        kw.setdefault("headers", {})["Content-Type"] = "application/json"
        return httpx.post(f"{url}{path}", content=body.encode(), timeout=120, **kw)
    return httpx.post(f"{url}{path}", json=body, timeout=120, **kw)


def _no_server_path(text: str, root) -> None:
    for path in (str(root), str(root.resolve()), str(root.parent), "/tmp/", "pytest-of-"):
        assert path not in text, (path, text)


# ---- 7. lone surrogates in filters -----------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/ask", "/api/search", "/api/ask/stream"])
@pytest.mark.parametrize(("filters", "says"), [
    ('{"\\ud800": "x"}', "unknown filter(s) '\\ud800'"),
    ('{"doc": "a", "\\udfff\\ud800x": "y"}', "unknown filter(s) '\\udfff\\ud800x'"),
    ('{"doc": "\\ud800"}', "filter doc contains a lone UTF-16 surrogate"),
    ('{"\\ud800": {"a": 1}}', "Input should be a valid string"),
    ('{"' + "k" * 5000 + '": "x"}', "unknown filter(s) '" + "k" * 40 + "'"),
])
@pytest.mark.slow
def test_a_lone_surrogate_in_a_filter_is_a_400_that_names_it(served, path, filters, says):
    url, _ = served
    r = _post(url, path, '{"question": "x", "filters": ' + filters + "}")
    assert r.status_code == 400, r.text
    message = json.loads(r.content.decode("utf-8"))["error"]  # valid UTF-8 JSON
    assert says in message and len(message) < 500


# ---- 8. knowledge-base names by their bytes on disk --------------------------------------------
@pytest.mark.parametrize("letters", [64, 63, 62])
@pytest.mark.slow
def test_a_name_too_long_in_bytes_is_a_clear_400_on_every_route(served, letters):
    url, root = served
    name = WIDE * letters  # 256, 252 and 248 bytes: ".NAME.deleting" would not fit in 255
    made = _post(url, "/api/kbs", {"name": name}, headers=AUTH)
    assert made.status_code == 400 and "bytes in UTF-8, over the limit of 245" in made.json()["error"], made.text
    assert name not in {p.name for p in root.iterdir()}  # (a stat of the path itself fails: ENAMETOOLONG)
    for r in (httpx.get(f"{url}/api/documents", params={"kb": name}, timeout=60),
              _post(url, "/api/ask", {"question": KITE_Q, "kb": name}),
              _post(url, "/api/search", {"question": KITE_Q, "kb": [name]}),
              httpx.delete(f"{url}/api/kbs/{name}", headers=AUTH, timeout=60)):
        assert r.status_code in (400, 404), r.text  # 64 letters: over NAME_MAX (400); 62-63: no such base (404)
        assert "internal error" not in r.text


@pytest.mark.slow
def test_the_longest_name_that_fits_is_created_and_deleted(served):
    url, root = served
    name = WIDE * 61  # 244 bytes
    assert _post(url, "/api/kbs", {"name": name}, headers=AUTH).status_code == 201
    gone = httpx.delete(f"{url}/api/kbs/{name}", headers=AUTH, timeout=60)
    assert gone.status_code == 200 and not (root / name).exists()
    assert not [p for p in root.iterdir() if p.name.endswith(".deleting")]


def test_a_base_made_before_the_byte_limit_can_still_be_deleted(served):
    """62 four-byte letters were accepted before (248 bytes): such a base is opened, listed and deleted."""
    url, root = served
    name = WIDE * 62
    shutil.copytree(root / "evil", root / name)
    assert any(row["name"] == name for row in httpx.get(f"{url}/api/kbs", timeout=60).json())
    assert httpx.get(f"{url}/api/documents", params={"kb": name}, timeout=60).json()[0]["doc_id"] == EVIL_NAME
    gone = httpx.delete(f"{url}/api/kbs/{name}", headers=AUTH, timeout=60)
    assert gone.status_code == 200, gone.text
    assert not (root / name).exists() and not [p for p in root.iterdir() if p.name.endswith(".deleting")]


def test_the_cli_refuses_a_name_too_long_in_bytes_and_deletes_an_old_one(tmp_path, seed_index):
    from cli_runner import rag

    made = rag("kb", "create", "--root", str(tmp_path), WIDE * 64)
    assert made.returncode == 2 and "bytes in UTF-8" in made.stderr and not list(tmp_path.iterdir())
    old = tmp_path / (WIDE * 63)  # 252 bytes, as an older version made it
    shutil.copytree(seed_index, old)
    gone = rag("kb", "delete", "--root", str(tmp_path), "--yes", old.name)
    assert gone.returncode == 0, gone.stderr
    assert not list(tmp_path.iterdir())


# ---- 9. no server path reaches a client ---------------------------------------------------------
def test_base_errors_name_no_server_folder(served):
    url, root = served
    assert _post(url, "/api/kbs", {"name": "evil"}, headers=AUTH).json() == {
        "error": "knowledge base 'evil' already exists"}
    for r in (httpx.delete(f"{url}/api/kbs/nope", headers=AUTH, timeout=60),
              httpx.get(f"{url}/api/documents", params={"kb": "nope"}, timeout=60)):
        assert r.status_code == 404 and "no knowledge base 'nope'" in r.json()["error"]
        _no_server_path(r.text, root)
    listed = {row["name"]: row for row in httpx.get(f"{url}/api/kbs", timeout=60).json()}
    assert "manifest.json is not valid JSON" in listed["broken"]["error"]
    _no_server_path(json.dumps(listed, ensure_ascii=False), root)
    asked = _post(url, "/api/ask", {"question": KITE_Q, "kb": ["evil", "broken"]})
    assert asked.status_code == 500, asked.text
    assert asked.json()["error"].startswith("knowledge base 'broken' is damaged: manifest.json is not valid JSON")
    _no_server_path(asked.text, root)


def test_a_locked_base_says_so_without_its_folder(served):
    from rag.storage.lock import write_lock

    url, root = served
    files = [("files", ("lantern.txt", "灯会在元宵节举行。".encode(), "text/plain"))]
    with write_lock(root / "evil"):
        r = httpx.post(f"{url}/api/documents", params={"kb": "evil"}, files=files, headers=AUTH, timeout=120)
    assert r.status_code == 503 and "index at evil is being written by another process" in r.json()["error"], r.text
    _no_server_path(r.text, root)


def test_the_upload_report_names_skipped_files_not_their_paths(served):
    url, root = served
    files = [("files", ("empty.txt", b"", "text/plain")),
             ("files", ("lantern.txt", "灯会在元宵节举行，共展出彩灯八百组。".encode(), "text/plain"))]
    r = httpx.post(f"{url}/api/documents", params={"kb": "evil"}, files=files, headers=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["skipped"] == {"empty.txt": "empty.txt: file is empty"} and r.json()["added"] == ["lantern.txt"]
    _no_server_path(r.text, root)
    httpx.delete(f"{url}/api/documents/lantern.txt", params={"kb": "evil"}, headers=AUTH, timeout=60)


def test_messages_keep_names_and_routes_but_not_server_paths(tmp_path):
    from rag.http.redact import public_message
    from ui.messages import bilingual

    folder = tmp_path / "kbs" / "news"
    assert public_message(f"index at {folder} is being written by another process (pid 7)") == \
        "index at news is being written by another process (pid 7)"
    assert public_message(f"{folder}/manifest.json is not valid JSON") == "manifest.json is not valid JSON"
    assert public_message("index at data/kbs/news is busy", ["data/kbs"]) == "index at news is busy"
    assert public_message("see GET /api/kbs and http://127.0.0.1:8000/v1/models") == \
        "see GET /api/kbs and http://127.0.0.1:8000/v1/models"  # routes and URLs are no server paths
    assert public_message("bad key \ud800") == "bad key \\ud800"
    # the wording rag.storage.lock writes: the chat recognises it whole (rag.catalogue "index.locked")
    shown = bilingual(f"index at {folder} is being written by another process (pid 7); "
                      "wait for it to finish and try again")
    assert str(tmp_path) not in shown and shown.startswith("索引正被另一个进程写入")


# ---- 10 and 12. /v1: plain text from documents, a damaged base -------------------------------------
def _rendered(markdown: str) -> str:
    """The HTML a CommonMark chat app makes of a reply."""
    return MarkdownIt("commonmark").render(markdown)


@pytest.mark.slow
def test_v1_shows_document_markdown_and_html_as_text(served):
    url, _ = served
    body = {"model": "kb:evil", "messages": [{"role": "user", "content": KITE_Q}]}
    content = _post(url, "/v1/chat/completions", body, headers=AUTH).json()["choices"][0]["message"]["content"]
    stream = _post(url, "/v1/chat/completions", {**body, "stream": True}, headers=AUTH).text
    assert stream.endswith("data: [DONE]\n\n")
    events = parse_sse(stream.removesuffix("data: [DONE]\n\n"))
    streamed = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if "choices" in e)
    assert streamed == content  # the stream ends with the same reply
    rendered = _rendered(content)
    for markup in ("<img", "<em>", "<strong>"):
        assert markup not in rendered, (markup, rendered)
    # the one live link per source is the server's own viewer at the cited place (issue 27); the
    # document's own link, image and the file name's brackets are shown as text or left out, never rendered
    hrefs = re.findall(r'<a href="([^"]*)"', rendered)
    assert len(hrefs) == rendered.count("<a ") == 1 and hrefs[0].startswith(f"{url}/view?doc=%5B"), hrefs
    text = html.unescape(rendered)
    assert "详见[3]与点此。 [1]" in text  # the quote without the document's markup (rag.text.display)
    assert f"[1] evil · {EVIL_NAME} 《风筝节》: 紫藤镇风筝节" in text
    assert "javascript:" not in content and "https://" not in content and "www." not in content


def test_a_damaged_base_is_not_offered_and_says_it_is_damaged(served):
    url, root = served
    models = [m["id"] for m in httpx.get(f"{url}/v1/models", headers=AUTH, timeout=60).json()["data"]]
    assert models == ["rag", "kb:evil"]
    r = _post(url, "/v1/chat/completions", {"model": "kb:broken", "messages": [{"role": "user", "content": KITE_Q}]},
              headers=AUTH)
    assert r.status_code == 503, r.text
    message = r.json()["error"]["message"]
    assert "knowledge base 'broken' is damaged" in message and "available: rag, kb:evil" in message
    _no_server_path(r.text, root)
    missing = _post(url, "/v1/chat/completions", {"model": "kb:nope", "messages": [{"role": "user", "content": "x"}]},
                    headers=AUTH)
    assert missing.status_code == 404 and "does not exist" in missing.json()["error"]["message"]


def test_a_full_feedback_file_gives_its_size_in_bytes(writable_index):
    from rag import RAG
    from rag.http.app import create_api

    kb = RAG.open(writable_index, progress=False, max_feedback_mb=0.00001)  # 10 bytes
    with serving(create_api(kb, api_key="")) as url:
        r = _post(url, "/api/feedback", {"rating": "up", "question": KITE_Q})
    assert r.status_code == 507, r.text
    message = r.json()["error"]
    assert "0.0 MB" not in message and "it holds 0 bytes" in message and "the limit of 10 bytes" in message
