"""The source viewer shows the text kept when a document was indexed (rag/storage/sources.py), over a
real server on loopback, for every store kind: a view never parses the source file (a 10,000-page PDF
cost 6.4 s of CPU a view, no key needed), an update replaces the kept text, a delete removes it, a
write that fails before its commit changes nothing, and an index built before texts were kept still
views (rebuilt from its chunks, without parsing) until the next `rag index` keeps them."""

from __future__ import annotations

import contextlib
import html
import importlib.util
import re
import shutil
from pathlib import Path

import httpx
import pytest
from pdfs import make_pdf
from servers import serving

from rag.ingest.files import SourceFile, load_file

PAGES = [["第一页：长沙市岳麓区概况。", "岳麓山海拔三百米。"], ["第二页：橘子洲大桥全长一千二百五十米。"],
         ["第三页：湘江在长沙境内长七十五公里。"]]
V1 = "第一版：紫藤镇风筝节于每年四月十八日举行。\n\n\n今年的紫藤镇风筝节吸引游客两万三千人。\n"
V2 = "第二版：紫藤镇风筝节改在每年五月一日举行。\n\n\n\n今年的紫藤镇风筝节吸引游客三万一千人，创历史新高。\n"
V3 = "第三版：从未被索引的改写。\n"
REBUILT = "rebuilt from its chunks"  # the viewer's note when it has no kept text
NOTE = "<p class=note>"  # any note: the text shown may differ from what was indexed
STORES = ["faiss", "segments", "milvus"]
COMMITS = {"faiss": "rag.storage.faiss.save_snapshot", "segments": "rag.storage.segments.index.commit",
           "milvus": "rag.storage.milvus.collection.save_store_manifest"}


def open_index(path: Path, store: str):
    from rag import RAG

    if store == "milvus" and any(importlib.util.find_spec(m) is None for m in ("pymilvus", "milvus_lite")):
        pytest.skip("pymilvus and milvus-lite are not installed (pip install '.[milvus]')")
    kind = {"faiss": {}, "segments": {"store": "segments"}, "milvus": {"store": f"milvus:{path.parent}/m.db"}}[store]
    return RAG.open(path, create=True, progress=False, **kind)


@pytest.fixture
def served():
    """``served(rag)``: the API over ``rag`` on a loopback port; yields an httpx client on it."""
    from rag.http.app import create_api

    with contextlib.ExitStack() as stack:

        def start(rag, **kw) -> httpx.Client:
            base = stack.enter_context(serving(create_api(rag, api_key="", **kw)))
            return stack.enter_context(httpx.Client(base_url=base, timeout=60))

        yield start


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """Every PDF parse from here on, by document (the loaders' own parser, counted)."""
    from rag.ingest import files

    calls: list[str] = []
    real = files.read_pdf

    def counted(raw, name, *args, **kwargs):
        calls.append(name)
        return real(raw, name, *args, **kwargs)

    monkeypatch.setattr(files, "read_pdf", counted)
    return calls


def shown(page: str) -> str:
    """The document text the page shows (marks removed, unescaped)."""
    body = re.search(r'<div class="text">(.*?)</div>', page, re.S)
    assert body, page[:2000]
    return html.unescape(re.sub(r"</?mark[^>]*>", "", body[1]))


def marked(page: str) -> str:
    found = re.findall(r'<mark id="cited">(.*?)</mark>', page, re.S)
    assert len(found) == 1, page[:2000]
    return html.unescape(found[0])


def kept_files(index_dir: Path) -> list[Path]:
    root = index_dir / "sources"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def text_of(path: Path) -> str:
    return load_file(SourceFile(path, path.name)).text


@pytest.mark.parametrize("store", STORES)
def test_a_view_shows_the_kept_text_and_never_parses_the_file(store, tmp_path, served, parses):
    folder = tmp_path / "docs"
    folder.mkdir()
    make_pdf(folder / "report.pdf", PAGES)
    text = text_of(folder / "report.pdf")
    rag = open_index(tmp_path / "idx", store)
    rag.index([folder])
    parses.clear()
    client = served(rag)
    start = text.index("橘子洲大桥")
    end = start + len("橘子洲大桥全长一千二百五十米")
    for _ in range(3):  # a reader pages back and forth
        page = client.get("/view", params={"doc": "report.pdf", "start": start, "end": end}).text
        assert marked(page) == text[start:end] and "页 Page: 2 / 3" in page and NOTE not in page
        assert shown(page) == text.split("\f")[1] and "岳麓山" not in page  # the cited page, exactly as read
        third = client.get("/view", params={"doc": "report.pdf", "page": 3}).text
        assert shown(third) == text.split("\f")[2]
    assert parses == []  # nothing was parsed to show it
    (folder / "report.pdf").unlink()  # and the file is not needed at all
    page = client.get("/view", params={"doc": "report.pdf", "start": start, "end": end}).text
    assert marked(page) == text[start:end] and NOTE not in page and "gone" not in page
    assert parses == []


def _indexed_note(store: str, tmp_path, served):
    """``docs/note.txt`` (V1) indexed in a ``store`` index, and a client of a server over it."""
    folder = tmp_path / "docs"
    folder.mkdir()
    note = folder / "note.txt"
    note.write_text(V1, encoding="utf-8")
    rag = open_index(tmp_path / "idx", store)
    rag.index([folder])
    return folder, note, rag, served(rag)


@pytest.mark.parametrize("store", STORES)
@pytest.mark.slow
def test_an_update_replaces_the_kept_text_and_a_delete_removes_it(store, tmp_path, served):
    folder, note, rag, client = _indexed_note(store, tmp_path, served)
    assert shown(client.get("/view", params={"doc": "note.txt"}).text) == V1
    assert len(kept_files(tmp_path / "idx")) == 1
    note.write_text(V2, encoding="utf-8")
    assert rag.index([folder]).updated == ["note.txt"]
    page = client.get("/view", params={"doc": "note.txt"}).text
    assert shown(page) == V2 and NOTE not in page
    assert len(kept_files(tmp_path / "idx")) == 1  # the first version's text went with it
    note.write_text(V3, encoding="utf-8")  # changed after indexing: the view shows what the index cites
    page = client.get("/view", params={"doc": "note.txt"}).text
    assert shown(page) == V2 and NOTE not in page and "从未被索引" not in page
    assert rag.delete("note.txt") == ["note.txt"]
    assert kept_files(tmp_path / "idx") == []
    assert client.get("/view", params={"doc": "note.txt"}).status_code == 404


@pytest.mark.parametrize("store", STORES)
@pytest.mark.slow
def test_a_write_that_fails_before_its_commit_leaves_the_view_as_it_was(store, tmp_path, served, monkeypatch):
    folder, note, rag, client = _indexed_note(store, tmp_path, served)
    note.write_text(V2, encoding="utf-8")
    with monkeypatch.context() as m:  # the writer dies between writing the new text and its commit
        m.setattr(COMMITS[store], _killed)
        with pytest.raises(RuntimeError, match="killed"):
            rag.index([folder])
    page = client.get("/view", params={"doc": "note.txt"}).text
    assert shown(page) == V1 and NOTE not in page  # the manifest in force still names the first version
    assert rag.index([folder]).updated == ["note.txt"]
    assert shown(client.get("/view", params={"doc": "note.txt"}).text) == V2
    assert len(kept_files(tmp_path / "idx")) == 1


def _killed(*args, **kwargs):
    raise RuntimeError("killed before the commit")


@pytest.mark.parametrize("store", ["faiss", "segments"])
def test_an_index_without_kept_texts_views_from_chunks_then_keeps_them_at_the_next_index(
        store, tmp_path, served, parses):
    folder = tmp_path / "docs"
    folder.mkdir()
    make_pdf(folder / "report.pdf", PAGES)
    text = text_of(folder / "report.pdf")
    rag = open_index(tmp_path / "idx", store)
    rag.index([folder])
    shutil.rmtree(tmp_path / "idx" / "sources")  # as an index built before texts were kept
    parses.clear()
    client = served(rag)
    start = text.index("橘子洲大桥")
    page = client.get("/view", params={"doc": "report.pdf", "start": start, "end": start + 5}).text
    assert marked(page) == "橘子洲大桥" and "页 Page: 2 / 3" in page and REBUILT in page
    assert parses == []  # even then, a view does not parse
    report = rag.index([folder])  # unchanged: nothing re-embedded, but its text is kept now
    assert report.unchanged == ["report.pdf"] and report.chunks_embedded == 0
    page = client.get("/view", params={"doc": "report.pdf", "start": start, "end": start + 5}).text
    assert marked(page) == "橘子洲大桥" and shown(page) == text.split("\f")[1] and NOTE not in page


def test_a_knowledge_base_keeps_its_own_texts(rag, tmp_path, served):
    from rag import RAG
    from rag.bases import KnowledgeBases

    source = tmp_path / "kite-festival.txt"
    source.write_text(V1, encoding="utf-8")
    kite = RAG.open(tmp_path / "kbs" / "kite", create=True, progress=False)
    kite.index([source])
    source.unlink()
    client = served(rag, bases=KnowledgeBases(rag, tmp_path / "kbs", RAG.open))  # the base opens on first use
    page = client.get("/view", params={"doc": "kite-festival.txt", "kb": "kite"}).text
    assert shown(page) == V1 and NOTE not in page
    assert len(kept_files(tmp_path / "kbs" / "kite")) == 1
    assert client.get("/view", params={"doc": "kite-festival.txt"}).status_code == 404  # not the default base's


def _rebuilt_per_character(chunks, n_chars: int, pdf: bool) -> str:
    """The definition: each chunk character at ``source_span``'s offset, a later chunk over an earlier one."""
    from rag.http.viewer import _page_starts_of

    size = max([n_chars, *(c.end for c in chunks)])
    chars = ["\n"] * size
    for c in chunks:
        for i, ch in enumerate(c.text):
            chars[c.source_span(i, i + 1)[0]] = ch
    for pos in _page_starts_of(chunks) if pdf else []:
        if 0 < pos <= size and chars[pos - 1] == "\n":
            chars[pos - 1] = "\f"
    return "".join(chars)


@pytest.mark.slow
def test_the_text_rebuilt_from_chunks_is_exact_and_costs_little(seed_text):
    """Without a kept text the viewer rebuilds one from the chunks: per character that took 2 s a view
    for a 750k-character document (anyone may ask, no key); by runs it is the same text in a few % of that."""
    import time

    from rag.http.viewer import text_from_chunks
    from rag.ingest.chunking import ChunkSettings, chunk_source

    pages = "\f".join(f"第{i}页：岳麓山海拔三百米。\n\n" + seed_text for i in range(100))  # 750k characters
    chunks = chunk_source("big.pdf", pages, ChunkSettings())
    assert len({c.meta.get("page") for c in chunks}) == 100 and any(c.meta.get("offset_runs") for c in chunks)
    t0 = time.perf_counter()
    rebuilt = text_from_chunks(chunks, len(pages), True)
    seconds = time.perf_counter() - t0
    assert rebuilt == _rebuilt_per_character(chunks, len(pages), True)
    assert rebuilt.count("\f") == 99 and len(rebuilt) == len(pages)
    assert seconds < 0.75, seconds  # per character: 2 s on the same machine
