"""Hostile and broken input: each case gets a clear, specific error (or a sound result) and loses nothing.

The catalogue in docs/robustness.md lists every case with the test that covers it.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag import RAG
from rag.config import Settings
from rag.errors import ConfigError, IndexCorruptError, IndexNotFoundError, LoaderError
from rag.ingest.chunking import ChunkSettings, chunk_document
from rag.ingest.cleaning import clean
from rag.ingest.decoding import decode_bytes
from rag.ingest.files import SourceFile, find_files, load_file
from rag.storage.verify import verify


def _load(path):
    return load_file(SourceFile(path, path.name))


def test_utf16_with_bom(tmp_path):
    p = tmp_path / "u16.txt"
    p.write_bytes("湘江北去，橘子洲头。".encode("utf-16"))
    assert _load(p).text == "湘江北去，橘子洲头。"


def test_utf8_with_one_damaged_byte_is_read_with_a_replacement(tmp_path):
    p = tmp_path / "damaged.txt"
    p.write_bytes("湘江北去，橘子洲头。".encode() * 50 + b"\xff" + "看万山红遍。".encode())
    doc = _load(p)
    assert "\ufffd" in doc.text and "看万山红遍" in doc.text and "damaged" in doc.encoding


def test_utf8_cut_off_mid_character_is_utf8_with_a_replacement(tmp_path):
    """A truncated download: read as GB18030, most of these cuts are valid mojibake (淇\ue1bc\ue632浜嗚嫢骞)."""
    full = "Release 2.4 修复了若干问题".encode()
    cuts = [full[:end] for end in range(13, len(full)) if full[end] & 0xC0 == 0x80]  # inside a character
    p = tmp_path / "cut.txt"
    for raw in cuts:
        p.write_bytes(raw)
        doc = _load(p)
        assert (doc.text, doc.encoding) == (raw.decode("utf-8", errors="replace"), "utf-8 (damaged bytes replaced)")


def test_utf8_with_a_few_bad_bytes_is_read_with_replacements(tmp_path):
    raw = bytearray(("湘江北去，橘子洲头。看万山红遍，层林尽染；漫江碧透，百舸争流。" * 7).encode())
    for i in (10, 200, 401):  # a bad copy: three bytes overwritten, inside characters
        raw[i] = 0xFF
    p = tmp_path / "bad-copy.txt"
    p.write_bytes(bytes(raw))
    doc = _load(p)
    assert doc.text == bytes(raw).decode("utf-8", errors="replace") and doc.encoding == "utf-8 (damaged bytes replaced)"


def test_big5_cut_off_mid_character_is_big5_with_a_replacement(tmp_path):
    text = "臺灣的夜市文化遠近馳名，每到傍晚，攤販便沿著街道擺出各式小吃。"
    p = tmp_path / "cut.txt"
    p.write_bytes(text.encode("cp950") + "吃".encode("cp950")[:1])
    doc = _load(p)
    assert (doc.text, doc.encoding) == (text + "\ufffd", "big5 (damaged bytes replaced)")


@pytest.mark.slow
def test_a_40_mb_big5_file_is_detected_from_a_sample_and_decoded_in_seconds():
    text = "臺灣的夜市文化遠近馳名，每到傍晚，攤販便沿著街道擺出各式小吃，吸引許多觀光客。\n" * 540_000
    raw = text.encode("cp950")
    assert len(raw) > 40 * 2**20
    t0 = time.perf_counter()
    got, encoding = decode_bytes(raw, "big.txt")
    assert time.perf_counter() - t0 < 10
    assert encoding == "big5" and got == text


def test_nul_bytes_inside_text_mean_binary(tmp_path):
    p = tmp_path / "mixed.txt"
    p.write_bytes("正文".encode() + b"\x00\x00\x00" + "正文".encode())
    with pytest.raises(LoaderError, match="binary"):
        _load(p)


def test_a_200_mb_file_is_refused_without_reading_it(tmp_path):
    p = tmp_path / "huge.txt"
    with p.open("wb") as f:  # sparse: no 200 MB written to disk
        f.truncate(200 * 1024 * 1024)
    t0 = time.perf_counter()
    with pytest.raises(LoaderError, match="huge.txt: file is 200.0 MB, over the 50 MB limit"):
        load_file(SourceFile(p, "huge.txt"), max_bytes=50 * 1024 * 1024)
    assert time.perf_counter() - t0 < 5


@pytest.mark.slow
def test_one_5_mb_line_without_punctuation_is_chunked(tmp_path):
    text = ("湘江岳麓橘子洲天心阁" * 500_000)[:1_700_000]  # ~5 MB of UTF-8, one line
    chunks = chunk_document("long.txt", clean(text), ChunkSettings(chunk_tokens=192, overlap_tokens=0))
    assert len(chunks) > 1000
    assert "".join(c.text for c in chunks) == text


def test_deeply_nested_folders_and_odd_entries(tmp_path):
    deep = tmp_path
    for i in range(60):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text("最深处的文件。", encoding="utf-8")
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    files, skipped = find_files([tmp_path])
    assert [f.path.name for f in files] == ["deep.txt"]
    assert {os.path.basename(k) for k in skipped} == {"dangling.txt", "pipe.txt"}


def test_a_document_of_page_markers_only_is_skipped(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "markers.txt").write_text("《上接1版》\n\n《上接1版》\n", encoding="utf-8")
    (tmp_path / "docs" / "ok.txt").write_text("正常的内容。", encoding="utf-8")
    report = RAG.open(tmp_path / "idx", create=True, progress=False).index([tmp_path / "docs"])
    assert report.added == ["ok.txt"] and "no text left after cleaning" in " ".join(report.skipped.values())


def _notes(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.md").write_text(text, encoding="utf-8")
    return folder / "notes.md"


def test_two_notes_md_in_one_call_are_both_indexed(tmp_path):
    a, b = _notes(tmp_path / "a", "甲队的会议纪要：周三交付。"), _notes(tmp_path / "b", "乙队的会议纪要：周五验收。")
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    assert rag.index([b, a]).added == ["a/notes.md", "b/notes.md"]
    assert {d["doc_id"]: d["path"] for d in rag.documents()} == {"a/notes.md": str(a), "b/notes.md": str(b)}


def test_another_file_claiming_an_indexed_id_is_skipped_naming_both_paths(tmp_path):
    a, b = _notes(tmp_path / "a", "甲队的会议纪要：周三交付。"), _notes(tmp_path / "b", "乙队的会议纪要：周五验收。")
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.add(a)
    report = rag.add(b)
    assert not report.added and not report.updated
    reason = report.skipped[str(b)]
    assert str(a) in reason and str(b) in reason and "index a folder holding both" in reason and "rag delete notes.md" in reason
    assert [(d["doc_id"], d["path"]) for d in rag.documents()] == [("notes.md", str(a))]
    assert "甲队" in rag.search("会议纪要", top_k=1)[0].chunk.text


def test_a_moved_folder_or_a_copy_still_updates_its_document(tmp_path):
    a = _notes(tmp_path / "a", "甲队的会议纪要：周三交付。")
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.add(a)
    copy = _notes(tmp_path / "copy", "甲队的会议纪要：周三交付。")  # the same bytes: the same document
    assert rag.add(copy).unchanged == ["notes.md"]
    (tmp_path / "a").rename(tmp_path / "moved")
    moved = tmp_path / "moved" / "notes.md"
    moved.write_text("甲队的会议纪要：改为周四交付。", encoding="utf-8")
    report = rag.add(moved)  # the recorded path is gone: the folder moved, this is its document
    assert report.updated == ["notes.md"] and not report.skipped
    assert [(d["doc_id"], d["path"]) for d in rag.documents()] == [("notes.md", str(moved))]


def test_an_indexed_file_renamed_beside_a_namesake_is_one_document(tmp_path):
    a, b = _notes(tmp_path / "a", "甲队的会议纪要：周三交付。"), _notes(tmp_path / "b", "乙队的会议纪要：周五验收。")
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.add(a)
    report = rag.add([a, b])
    assert report.added == ["a/notes.md", "b/notes.md"] and report.removed == ["notes.md"]
    assert sorted(d["doc_id"] for d in rag.documents()) == ["a/notes.md", "b/notes.md"]
    assert len(rag.search("甲队的会议纪要", top_k=10)) == 2  # not three: a's text is in the index once


@pytest.mark.slow
def test_control_characters_in_a_question_are_removed(seed_rag):
    a = seed_rag.ask("\x00\x07天心经开区有多少家\x1b高新技术企业？\x7f")
    assert "224" in a.answer and "\x00" not in a.question


def test_a_bad_environment_setting_names_the_variable():
    with pytest.raises(ConfigError, match="RAG_TOP_K must be a int. Currently, it is 'abc'"):
        Settings.from_env({"RAG_TOP_K": "abc"})


def test_an_index_path_that_is_a_file(tmp_path):
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    with pytest.raises(IndexNotFoundError):
        RAG.open(f)


def _gen(index_dir):
    return index_dir / json.loads((index_dir / "manifest.json").read_text())["generation"]


def test_a_missing_chunk_store(writable_index):
    (_gen(writable_index) / "chunks.jsonl").unlink()
    with pytest.raises(IndexCorruptError, match="chunks.jsonl is missing"):
        RAG.open(writable_index)
    assert any("chunks.jsonl is missing" in e for e in verify(writable_index).errors)


def test_a_manifest_with_a_wrong_count(writable_index):
    m = json.loads((writable_index / "manifest.json").read_text())
    m["counts"]["chunks"] += 1
    (writable_index / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexCorruptError, match="disagrees with itself"):
        RAG.open(writable_index)
    assert any("chunk counts disagree" in e for e in verify(writable_index, check_embedder=False).errors)


@pytest.mark.slow
def test_verify_passes_a_sound_index_and_finds_a_wrong_embedder(writable_index):
    report = verify(writable_index)
    assert report.ok and report.facts["embedder_check_min_cosine"] > 0.99
    m = json.loads((writable_index / "manifest.json").read_text())
    m["embedder"] = {"name": "all-MiniLM-L6-v2", "dim": 384}  # same dimension, other model
    (writable_index / "manifest.json").write_text(json.dumps(m))
    bad = verify(writable_index)
    assert not bad.ok and any("do not match the embedder 'all-MiniLM-L6-v2'" in e for e in bad.errors)


@pytest.mark.slow
def test_rebuild_repairs_a_damaged_index(writable_index):
    from conftest import SEEDS

    (_gen(writable_index) / "vectors.faiss").write_bytes(b"garbage")
    rag = RAG.open(writable_index, fresh=True, progress=False)
    rag.index([SEEDS], rebuild=True)
    assert verify(writable_index, check_embedder=False).ok and RAG.open(writable_index).size > 10


# ---- properties of cleaning and chunking ---------------------------------------------------

_ALPHABET = st.sampled_from(list("湘江岳麓天心橘子洲头看万山红遍层林尽染。，！？；“”《》 \n\n0123.45%") + ["《上接1版》", "\n\n"])
_TEXTS = st.lists(_ALPHABET, min_size=1, max_size=400).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS)
@pytest.mark.slow
def test_clean_offsets_always_map_back_to_the_source(text):
    c = clean(text)
    assert len(c.offsets) == len(c.text) + 1
    for i, ch in enumerate(c.text):
        if not ch.isspace():
            assert text[c.offsets[i]] == ch


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS, st.integers(min_value=16, max_value=64))
def test_chunks_lose_nothing_and_ids_are_stable(text, size):
    c = clean(text)
    chunks = chunk_document("p.txt", c, ChunkSettings(chunk_tokens=size, overlap_tokens=size // 4))
    again = chunk_document("p.txt", clean(text), ChunkSettings(chunk_tokens=size, overlap_tokens=size // 4))
    assert [x.chunk_id for x in chunks] == [x.chunk_id for x in again]
    covered = set()
    for ch in chunks:
        for i in range(len(ch.text)):
            if not ch.text[i].isspace():
                covered.add(ch.source_span(i, i + 1)[0])
        assert text[ch.start : ch.end].replace("\n", "").replace(" ", "")  # a chunk spans real text
    wanted = {int(c.offsets[i]) for i, ch in enumerate(c.text) if ch.isalnum()}
    assert wanted <= covered  # every word character of the clean text is in some chunk


@pytest.mark.slow
def test_killing_rag_index_leaves_the_old_or_the_new_index(tmp_path):
    """Three SIGKILLs at seeded moments (bench/kill_test.py runs twenty)."""
    import random
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.kill_test import prepare, trial

    corpus, base, old, new = prepare(tmp_path, articles=8)
    seconds = json.loads((tmp_path / "build_seconds").read_text())
    rng = random.Random(3)
    outcomes = [trial(base, corpus, tmp_path, rng.uniform(0.5, seconds), old, new) for _ in range(3)]
    assert all(o.endswith(("old", "new")) for o in outcomes)
