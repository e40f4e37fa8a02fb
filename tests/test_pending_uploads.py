"""What a start finds in ``documents/``: a bad stored upload is refused and removed (never stops the start),
writes a crash interrupted are finished or undone. Checked in process and across a real restart of
`rag serve`, for the server's own index and for a knowledge base opened on first use."""

from __future__ import annotations

import io
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from cli_runner import RAG_BIN
from conftest import KITE, ROOT
from docxs import make_docx, malformed_docx
from servers import free_port, serving

from rag import RAG
from rag.uploads import add_uploads, documents_dir, index_pending_uploads

NEW = "紫藤镇风筝节今年改在五月二日举行，为期三天。\n".encode()


def _leftover(folder: Path, name: str, kind: str, content: bytes) -> Path:
    """A file as ``rag.uploads._save`` names its temporary copy (``part``) or the version it replaces (``bak``)."""
    path = folder / f".{name}.{uuid.uuid4().hex}.{kind}"
    path.write_bytes(content)
    return path


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_bad_stored_upload_is_refused_and_removed_and_the_others_indexed(writable_index, caplog):
    rag = RAG.open(writable_index, progress=False)
    folder = documents_dir(rag)
    folder.mkdir()
    (folder / "bad.docx").write_bytes(malformed_docx())
    (folder / "kite.txt").write_bytes(KITE.encode())
    with caplog.at_level(logging.WARNING, logger="rag.uploads"):
        report = index_pending_uploads(rag)
    assert report.added == ["kite.txt"]
    assert [Path(k).name for k in report.skipped] == ["bad.docx"]
    assert sorted(p.name for p in folder.iterdir()) == ["kite.txt"]
    assert "bad.docx: damaged or unreadable DOCX" in caplog.text and "removed" in caplog.text


def test_an_upload_indexed_earlier_is_kept_even_if_refused_now(writable_index):
    rag = RAG.open(writable_index, progress=False)
    add_uploads(rag, [("kite.txt", io.BytesIO(KITE.encode()))])
    stored = documents_dir(rag) / "kite.txt"
    stored.write_bytes(b"")  # now unreadable (empty), but its document is in the index
    report = index_pending_uploads(rag)
    assert list(report.skipped) and stored.is_file()
    assert "kite.txt" in {d["doc_id"] for d in rag.documents()}


@pytest.mark.slow
def test_writes_a_crash_interrupted_are_finished_or_undone(writable_index):
    rag = RAG.open(writable_index, progress=False)
    add_uploads(rag, [("kept.txt", io.BytesIO(KITE.encode())), ("stale.txt", io.BytesIO(KITE.encode())),
                      ("old.docx", io.BytesIO(make_docx("旧版的正文。")))])
    folder = documents_dir(rag)
    _leftover(folder, "partial.txt", "part", b"half an upl")  # a copy cut short: removed
    _leftover(folder, "gone.txt", "bak", KITE.encode())  # replaced, but the new version never arrived: restored
    backup = _leftover(folder, "kept.txt", "bak", KITE.encode())  # the new version is in place: the backup goes
    (folder / "kept.txt").write_bytes(NEW)
    old = (folder / "old.docx").read_bytes()
    _leftover(folder, "old.docx", "bak", old)  # the new version is in place but refused: the old one comes back
    (folder / "old.docx").write_bytes(malformed_docx())
    rag.delete(["stale.txt"])
    os.replace(folder / "stale.txt", folder / ".deleted-stale.txt")  # deleted from the index, tombstone left

    report = index_pending_uploads(rag)

    assert _hidden(folder) == [], "no hidden leftover survives the start"
    assert sorted(p.name for p in folder.iterdir()) == ["gone.txt", "kept.txt", "old.docx"]
    assert (folder / "old.docx").read_bytes() == old and not backup.exists()
    assert (report.added, report.updated) == (["gone.txt"], ["kept.txt"])
    assert [Path(k).name for k in report.skipped] == ["old.docx"]
    assert {"gone.txt", "kept.txt", "old.docx"} <= {d["doc_id"] for d in rag.documents()}
    assert "五月二日" in rag.search("风筝节什么时候举行", top_k=1)[0].chunk.text


def test_an_undone_delete_gets_its_file_back(writable_index):
    rag = RAG.open(writable_index, progress=False)
    add_uploads(rag, [("kite.txt", io.BytesIO(KITE.encode()))])
    folder = documents_dir(rag)
    os.replace(folder / "kite.txt", folder / ".deleted-kite.txt")  # the crash came before the index was changed
    index_pending_uploads(rag)
    assert sorted(p.name for p in folder.iterdir()) == ["kite.txt"]
    assert "kite.txt" in {d["doc_id"] for d in rag.documents()}


@pytest.mark.slow
def test_a_malformed_docx_upload_is_refused_and_not_kept(writable_index):
    from ui.server import build_app

    rag = RAG.open(writable_index, progress=False)
    with serving(build_app(rag)) as base:
        r = httpx.post(f"{base}/api/documents", files={"files": ("bad.docx", malformed_docx())}, timeout=120)
    assert r.status_code in (400, 422), r.text
    assert "bad.docx" in r.text and "damaged or unreadable DOCX" in r.text
    assert not any(documents_dir(rag).iterdir())


@pytest.mark.server
def test_rag_serve_starts_past_bad_uploads_and_settles_leftovers(writable_index, seed_index, tmp_path):
    """The real `rag serve`, restarted on folders a crash and a hostile upload left: it comes up, the bad
    files are gone, interrupted writes are settled; a knowledge base opened on first use likewise."""
    folder = writable_index / "documents"
    folder.mkdir()
    (folder / "bad.docx").write_bytes(malformed_docx())
    _leftover(folder, "gone.txt", "bak", KITE.encode())
    _leftover(folder, "partial.txt", "part", b"half")
    kbs = tmp_path / "kbs"
    shutil.copytree(seed_index, kbs / "news")
    (kbs / "news" / "documents").mkdir()
    (kbs / "news" / "documents" / "hostile.docx").write_bytes(malformed_docx())
    _leftover(kbs / "news" / "documents", "hostile.docx", "part", b"half")

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAG_API_KEY"} | {"HF_HUB_OFFLINE": "1", "RAG_KB_ROOT": str(kbs)}
    serve = subprocess.Popen([str(RAG_BIN), "serve", "--index-dir", str(writable_index), "--port", str(port)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(serve, f"{base}/health")
        docs = httpx.get(f"{base}/api/documents", timeout=60).json()
        assert "gone.txt" in {d["doc_id"] for d in docs}
        assert sorted(p.name for p in folder.iterdir()) == ["gone.txt"]
        r = httpx.get(f"{base}/api/documents", params={"kb": "news"}, timeout=300)  # opened now, on first use
        assert r.status_code == 200, r.text
        assert list((kbs / "news" / "documents").iterdir()) == []
        assert serve.poll() is None
    finally:
        serve.send_signal(signal.SIGINT)
        output = serve.communicate(timeout=60)[0]
    assert "bad.docx: damaged or unreadable DOCX" in output and "hostile.docx: damaged" in output


def _wait_for(proc: subprocess.Popen, url: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, f"rag serve exited ({proc.returncode}):\n{proc.communicate()[0]}"
        assert time.monotonic() < deadline, "rag serve did not answer"
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)


@pytest.mark.server
def test_a_killed_servers_staging_folder_is_reclaimed_at_the_next_start(writable_index, tmp_path):
    """kill -9 a real `rag serve` holding a staged chat upload; the next start removes what it left."""
    cache = tmp_path / "gradio-cache"
    env = {k: v for k, v in os.environ.items() if k != "RAG_API_KEY"} | {"HF_HUB_OFFLINE": "1",
                                                                         "GRADIO_TEMP_DIR": str(cache)}

    def start() -> tuple[subprocess.Popen, str]:
        port = free_port()
        proc = subprocess.Popen([str(RAG_BIN), "serve", "--index-dir", str(writable_index), "--port", str(port)],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _wait_for(proc, f"http://127.0.0.1:{port}/health")
        return proc, f"http://127.0.0.1:{port}"

    first, base = start()
    try:
        r = httpx.post(f"{base}/gradio_api/upload", files={"files": ("kite.txt", KITE.encode())}, timeout=60)
        assert r.status_code == 200, r.text
        left = [p for p in cache.glob("rag-gradio-*") if list(p.rglob("kite.txt"))]
        assert len(left) == 1
    finally:
        first.kill()  # SIGKILL: no shutdown, no atexit
        first.communicate(timeout=60)
    assert left[0].is_dir()
    second, _ = start()
    try:
        assert not left[0].exists()
        assert len(list(cache.glob("rag-gradio-*"))) == 1  # the new server's own
    finally:
        second.send_signal(signal.SIGINT)
        second.communicate(timeout=60)
    assert list(cache.glob("rag-gradio-*")) == []  # and it removes its own when it stops
