"""The texts kept for the source viewer (rag/storage/sources.py): named by hash, read back exactly or
not at all, swept to the documents in force, and checked by `rag verify`."""

from __future__ import annotations

import gzip
import json

import pytest

from rag.storage.sources import SOURCES_DIR, SourceTexts, forget, keep_text, read_text, sweep, text_path
from rag.types import Document

TEXT = "第一页：长沙。\n\u3000\u3000岳麓山\r\n\f第二页：橘子洲\ud800。\n"  # a lone surrogate counts as one offset


def doc(text: str = TEXT, doc_id: str = "a/报告.pdf", sha: str = "0" * 64) -> Document:
    return Document(doc_id=doc_id, path="/nowhere", text=text, sha256=sha, size=1, encoding="pdf")


def test_a_kept_text_reads_back_exactly(tmp_path):
    keep_text(tmp_path, doc())
    assert read_text(tmp_path, "a/报告.pdf", "0" * 64, len(TEXT)) == TEXT
    assert read_text(tmp_path, "a/报告.pdf", "1" * 64, len(TEXT)) is None  # another version of the file
    assert read_text(tmp_path, "b.pdf", "0" * 64, len(TEXT)) is None  # another document


def test_names_are_hashes_inside_the_sources_folder(tmp_path):
    for doc_id in ("../../etc/passwd", "/abs/x.txt", "a\\..\\b.txt", "名字.md"):
        path = text_path(tmp_path, doc_id, "0" * 64)
        assert path.parent.parent == tmp_path / SOURCES_DIR and path.name[:64].isalnum()
        assert path.name.endswith(".txt.gz") and path.parent.name == path.name[:2]


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "longer", "empty"])
def test_a_damaged_text_reads_as_none(tmp_path, damage):
    keep_text(tmp_path, doc())
    path = text_path(tmp_path, "a/报告.pdf", "0" * 64)
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        raw[len(raw) // 2] ^= 0xFF  # gzip's CRC catches it
    elif damage == "garbage":
        raw = bytearray(b"not gzip at all")
    elif damage == "longer":
        raw = bytearray(gzip.compress((TEXT + "多").encode("utf-8", "surrogatepass")))
    else:
        raw = bytearray()
    path.write_bytes(bytes(raw))
    assert read_text(tmp_path, "a/报告.pdf", "0" * 64, len(TEXT)) is None


def test_a_length_that_is_not_recorded_reads_as_none(tmp_path):
    keep_text(tmp_path, doc())
    for chars in (None, "12", -1, len(TEXT) - 1):
        assert read_text(tmp_path, "a/报告.pdf", "0" * 64, chars) is None


def test_sweep_keeps_only_the_documents_in_force_and_clears_temporaries(tmp_path):
    keep_text(tmp_path, doc(doc_id="keep.txt", sha="1" * 64))
    keep_text(tmp_path, doc(doc_id="keep.txt", sha="2" * 64))  # an older version
    keep_text(tmp_path, doc(doc_id="gone.txt", sha="3" * 64))
    stray = text_path(tmp_path, "x", "y").with_name(".abc.tmp")
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"left by a killed writer")
    assert sweep(tmp_path, {"keep.txt": {"sha256": "1" * 64}}) == 3
    left = [p for p in (tmp_path / SOURCES_DIR).rglob("*") if p.is_file()]
    assert left == [text_path(tmp_path, "keep.txt", "1" * 64)]
    assert sweep(tmp_path / "no-index", {}) == 0


def test_an_unchanged_document_is_kept_only_when_its_length_still_fits(tmp_path):
    texts = SourceTexts(tmp_path)
    texts.keep_missing(doc(), {"chars": len(TEXT) + 1})  # the loaders read it otherwise now: offsets would not fit
    assert read_text(tmp_path, "a/报告.pdf", "0" * 64, len(TEXT)) is None
    texts.keep_missing(doc(), {"chars": len(TEXT)})
    assert read_text(tmp_path, "a/报告.pdf", "0" * 64, len(TEXT)) == TEXT


def test_verify_warns_about_a_missing_or_damaged_text_and_stays_ok(writable_index):
    from rag.storage.verify import verify

    report = verify(writable_index, check_embedder=False)
    assert report.ok and not [w for w in report.warnings if "kept text" in w], report.warnings
    documents = json.loads((writable_index / report.facts["generation"] / "documents.json").read_text(encoding="utf-8"))
    doc_id, meta = next(iter(documents.items()))
    path = text_path(writable_index, doc_id, meta["sha256"])
    path.write_bytes(path.read_bytes()[:40])
    report = verify(writable_index, check_embedder=False)
    assert report.ok and any("1 document(s) have no kept text" in w and doc_id in w for w in report.warnings)
    path.unlink()
    assert any("no kept text" in w for w in verify(writable_index, check_embedder=False).warnings)


def test_forget_removes_only_what_the_commit_replaced_or_removed(tmp_path):
    for doc_id, sha in (("same.txt", "1"), ("changed.txt", "2"), ("deleted.txt", "3")):
        keep_text(tmp_path, doc(doc_id=doc_id, sha=sha * 64))
    after = {"same.txt": {"sha256": "1" * 64}, "changed.txt": {"sha256": "4" * 64}}
    before = {"same.txt": {"sha256": "1" * 64}, "changed.txt": {"sha256": "2" * 64}, "deleted.txt": {"sha256": "3" * 64}}
    assert forget(tmp_path, before, after) == 2
    left = [p for p in (tmp_path / SOURCES_DIR).rglob("*") if p.is_file()]
    assert left == [text_path(tmp_path, "same.txt", "1" * 64)]


def test_a_rebuild_sweeps_the_text_a_failed_write_left(tmp_path, monkeypatch):
    from rag import RAG

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "note.txt").write_text("第一版：会议在一号楼举行。", encoding="utf-8")
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.index([folder])
    (folder / "note.txt").write_text("第二版：会议改在二号楼举行。", encoding="utf-8")
    with monkeypatch.context() as m:
        m.setattr("rag.storage.faiss.save_snapshot", _killed)
        with pytest.raises(RuntimeError):
            rag.index([folder])  # its text was written ahead; no manifest names it
    (folder / "note.txt").write_text("第三版：会议改在三号楼举行。", encoding="utf-8")
    rag = RAG.open(tmp_path / "idx", fresh=True, progress=False)  # as `rag index --rebuild` does
    rag.index([folder], rebuild=True)
    meta = rag.documents()[0]
    left = [p for p in (tmp_path / "idx" / SOURCES_DIR).rglob("*") if p.is_file()]
    assert left == [text_path(tmp_path / "idx", "note.txt", meta["sha256"])]
    assert read_text(tmp_path / "idx", "note.txt", meta["sha256"], meta["chars"]).startswith("第三版")


def _killed(*args, **kwargs):
    raise RuntimeError("killed before the commit")
