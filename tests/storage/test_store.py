"""The on-disk index: atomic saves, integrity checks, embedder mismatch, one writer at a time."""

from __future__ import annotations

import json
import multiprocessing as mp
import re

import pytest

from rag import RAG
from rag.errors import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError
from rag.storage.lock import write_lock
from rag.storage.verify import verify


def _files_of(gen) -> set[str]:
    """Every file of a generation, named as in the manifest (found here, not by the code under test)."""
    return {p.relative_to(gen).as_posix() for p in gen.rglob("*") if p.is_file()}


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexNotFoundError, match="no index at"):
        RAG.open(tmp_path / "none")


def test_manifest_describes_the_index(seed_index):
    m = json.loads((seed_index / "manifest.json").read_text())
    assert m["embedder"] == {"name": "multilingual-e5-small", "dim": 384, "engine": "openvino"}
    assert m["chunking"] == {"chunk_tokens": 640, "overlap_tokens": 160, "headers": "none"}
    assert m["counts"]["documents"] == 1 and m["counts"]["chunks"] > 10
    gen = seed_index / m["generation"]
    assert set(m["checksums"]) == _files_of(gen)  # every data file, BM25's included
    assert {"vectors.faiss", "chunks.jsonl", "documents.json", "bm25/params.index.json",
            "bm25/data.csc.index.npy", "bm25/vocab.index.json", "bm25/doc_terms.ids.npy"} <= set(m["checksums"])
    assert "faiss-cpu" in m["versions"]
    assert not list(seed_index.rglob("*.pkl")) and not list(seed_index.rglob("*.pickle"))


def test_a_damaged_file_fails_its_checksum(writable_index):
    gen = writable_index / json.loads((writable_index / "manifest.json").read_text())["generation"]
    with (gen / "chunks.jsonl").open("a") as f:
        f.write("\n")
    with pytest.raises(IndexCorruptError, match="checksum"):
        RAG.open(writable_index)


def _flip_last_byte(path):
    """Damage numpy or JSON can still read: the last byte of an array's data, or a JSON file's
    last digit or brace turned into another character."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "name", ["data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "vocab.index.json", "params.index.json"]
)
def test_a_damaged_bm25_file_is_refused_on_open_and_reported_by_verify(writable_index, name):
    path = writable_index / json.loads((writable_index / "manifest.json").read_text())["generation"] / "bm25" / name
    _flip_last_byte(path)
    with pytest.raises(IndexCorruptError, match=re.escape(f"{path} fails its checksum; rebuild with `rag index --rebuild`")):
        RAG.open(writable_index)
    report = verify(writable_index, check_embedder=False)
    assert not report.ok and any(f"bm25/{name} fails its checksum" in e for e in report.errors), report.errors


def test_rag_verify_names_a_damaged_bm25_file_and_exits_4(writable_index):
    from cli_runner import rag as run_cli

    gen = writable_index / json.loads((writable_index / "manifest.json").read_text())["generation"]
    _flip_last_byte(gen / "bm25" / "data.csc.index.npy")
    out = run_cli("verify", "--quick", "--index-dir", str(writable_index))
    assert out.returncode == 4, out.stdout + out.stderr
    assert f"error: index file {gen / 'bm25' / 'data.csc.index.npy'} fails its checksum" in out.stdout


def test_an_index_saved_before_bm25_was_covered_still_opens_and_is_covered_by_the_next_save(writable_index, tmp_path):
    path = writable_index / "manifest.json"
    m = json.loads(path.read_text())
    m["checksums"] = {k: v for k, v in m["checksums"].items() if not k.startswith("bm25/")}
    path.write_text(json.dumps(m))  # the manifest of a version that hashed the three main files only
    rag = RAG.open(writable_index, progress=False)
    assert rag.search("蓝风微短剧基地", top_k=1)[0].chunk.doc_id == "000_e58332798fe41e73.txt"
    report = verify(writable_index, check_embedder=False)
    assert report.ok and any("not covered" in w and "bm25/data.csc.index.npy" in w for w in report.warnings)
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "kite.txt").write_text("潍坊国际风筝会今年有六十个国家参加。", encoding="utf-8")
    rag.add(tmp_path / "new")
    m = json.loads(path.read_text())
    assert set(m["checksums"]) == _files_of(writable_index / m["generation"])
    assert not [w for w in verify(writable_index, check_embedder=False).warnings if "not covered" in w]


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

    import rag.storage.faiss.snapshot as store

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "fsync_tree", boom)
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


@pytest.mark.subprocess
def test_a_write_builds_on_what_another_process_saved(writable_index, tmp_path):
    """A server (this process) and a CLI `rag index` (another) share one index: the server's next
    upload keeps the CLI's documents, and its readers see them without a restart."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import SEED_FILE

    from rag import RAG

    server = RAG.open(writable_index, progress=False)
    cli_folder = tmp_path / "cli"
    cli_folder.mkdir()
    (cli_folder / "kite.txt").write_text("紫藤镇风筝节今年吸引游客两万三千人，创历史新高。", encoding="utf-8")
    rag_bin = Path(sys.executable).parent / "rag"
    out = subprocess.run([str(rag_bin), "index", str(cli_folder), "--index-dir", str(writable_index)],
                         capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"), timeout=600)
    assert out.returncode == 0, out.stderr
    assert "kite.txt" in {d["doc_id"] for d in server.documents()}  # a reader picks up the new generation
    assert server.search("紫藤镇风筝节今年吸引了多少游客？", top_k=1)[0].chunk.doc_id == "kite.txt"
    upload = tmp_path / "up" / "lantern.txt"
    upload.parent.mkdir()
    upload.write_text("青石村灯会共展出花灯八百盏。", encoding="utf-8")
    server.add(upload)
    on_disk = {d["doc_id"] for d in RAG.open(writable_index, progress=False).documents()}
    assert on_disk == {SEED_FILE.name, "kite.txt", "lantern.txt"}
    server.delete(["kite.txt"])  # a delete, too, starts from the latest generation
    assert {d["doc_id"] for d in RAG.open(writable_index, progress=False).documents()} == {SEED_FILE.name, "lantern.txt"}


def test_the_store_manifest_is_written_as_json_would_write_it():
    """orjson writes the segmented index's manifest (fast at 10M chunks): the same text as json's compact
    form, Chinese unescaped; json's own encoder for what orjson refuses (an integer key)."""
    import json

    from rag.storage.state import manifest_text

    manifest = {"generation": "store-000007", "documents": {"新闻/天心区.txt": {"sha256": "ab" * 32, "chunks": 3}},
                "store": {"kind": "segments", "next_key": 2**40, "segments": [{"name": "seg-000001", "docs": []}]},
                "counts": {"documents": 1, "chunks": 3}, "ratio": 0.25}
    assert manifest_text(manifest) == json.dumps(manifest, ensure_ascii=False, separators=(",", ":"))
    assert manifest_text({1: "一"}) == json.dumps({1: "一"}, ensure_ascii=False, separators=(",", ":"))
