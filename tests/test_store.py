"""The on-disk index: atomic saves, integrity checks, embedder mismatch, one writer at a time."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from rag import RAG
from rag.errors import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError
from rag.store import write_lock


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexNotFoundError, match="no index at"):
        RAG.open(tmp_path / "none")


def test_manifest_describes_the_index(seed_index):
    m = json.loads((seed_index / "manifest.json").read_text())
    assert m["embedder"] == {"name": "multilingual-e5-small", "dim": 384, "engine": "openvino"}
    assert m["chunking"] == {"chunk_tokens": 192, "overlap_tokens": 48, "headers": "none"}
    assert m["counts"]["documents"] == 1 and m["counts"]["chunks"] > 10
    assert set(m["checksums"]) == {"vectors.faiss", "chunks.jsonl", "documents.json"}
    assert "faiss-cpu" in m["versions"]
    assert not list(seed_index.rglob("*.pkl")) and not list(seed_index.rglob("*.pickle"))


def test_a_damaged_file_fails_its_checksum(writable_index):
    gen = writable_index / json.loads((writable_index / "manifest.json").read_text())["generation"]
    with (gen / "chunks.jsonl").open("a") as f:
        f.write("\n")
    with pytest.raises(IndexCorruptError, match="checksum"):
        RAG.open(writable_index)


def test_a_truncated_faiss_file_is_reported(writable_index):
    gen = writable_index / json.loads((writable_index / "manifest.json").read_text())["generation"]
    data = (gen / "vectors.faiss").read_bytes()
    (gen / "vectors.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError):
        RAG.open(writable_index)


def test_a_hand_edited_manifest_is_reported(writable_index):
    (writable_index / "manifest.json").write_text("{ not json")
    with pytest.raises(IndexCorruptError, match="not valid JSON"):
        RAG.open(writable_index)


def test_another_embedder_is_refused(seed_index):
    with pytest.raises(IndexMismatchError, match="built with embedder 'multilingual-e5-small'"):
        RAG.open(seed_index, embedder="all-MiniLM-L6-v2")


def test_a_failed_save_leaves_the_previous_index_intact(writable_index, tmp_path, monkeypatch):
    rag = RAG.open(writable_index, progress=False)
    before = rag.size
    new = tmp_path / "new"
    new.mkdir()
    (new / "extra.txt").write_text("一段新的文字，讲述长沙的湘江。" * 5, encoding="utf-8")

    import rag.store as store

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_fsync_tree", boom)
    with pytest.raises(OSError, match="No space"):
        rag.add(new)
    monkeypatch.undo()
    reopened = RAG.open(writable_index)
    assert reopened.size == before
    assert [d["doc_id"] for d in reopened.documents()] == ["000_e58332798fe41e73.txt"]
    assert not [p for p in writable_index.iterdir() if p.name.endswith(".tmp")]


def _hold_lock(path, ready, release):
    with write_lock(path):
        ready.set()
        release.wait(30)


def test_a_second_writer_gets_a_clear_message(tmp_path):
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(tmp_path, ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        with pytest.raises(IndexLockedError, match=f"pid {proc.pid}"), write_lock(tmp_path):
            pass
    finally:
        release.set()
        proc.join(30)
    with write_lock(tmp_path):  # free again once the first writer is done
        pass
