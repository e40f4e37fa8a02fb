"""``rag index --watch`` / ``rag serve --watch``: a folder kept in step with the index by file events."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rag import RAG
from rag.errors import ConfigError
from rag.watch import indexable, watch, watch_in_background
from ui.cli import build_parser

NOTE = "紫藤镇风筝节于每年四月十八日举行，今年吸引游客两万三千人。"


def test_only_files_rag_index_reads_count(tmp_path):
    roots = [tmp_path.resolve()]
    assert indexable(tmp_path / "a.txt", roots) and indexable(tmp_path / "sub" / "b.PDF", roots)
    assert not indexable(tmp_path / "a.exe", roots)
    assert not indexable(tmp_path / ".hidden.txt", roots) and not indexable(tmp_path / ".git" / "a.md", roots)
    assert not indexable(tmp_path.parent / "elsewhere.txt", roots)
    hidden_root = tmp_path / ".cache" / "docs"  # a hidden folder above the watched one does not matter
    assert indexable(hidden_root / "a.txt", [hidden_root.resolve()])


def test_a_missing_folder_is_refused_before_anything_is_indexed(tmp_path):
    with pytest.raises(ConfigError, match="cannot watch"):
        watch(object(), [tmp_path / "nope"])


def _until(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_added_changed_and_removed_files_reach_the_index(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text(NOTE, encoding="utf-8")
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    reports = []
    thread, stop = watch_in_background(rag, [folder], debounce_ms=300, on_report=reports.append)
    try:
        assert _until(lambda: len(reports) >= 1)  # the first indexing
        assert [d["doc_id"] for d in rag.documents()] == ["a.txt"]
        (folder / "b.md").write_text("# 新规\n\n图书馆周一闭馆，周二至周日九点开放。", encoding="utf-8")
        (folder / "ignored.bin").write_bytes(b"\x00\x01")
        assert _until(lambda: {d["doc_id"] for d in rag.documents()} == {"a.txt", "b.md"})
        (folder / "a.txt").write_text(NOTE.replace("两万三千", "三万一千"), encoding="utf-8")
        assert _until(lambda: any("三万一千" in p.chunk.text for p in rag.search("风筝节游客", 3)))
        (folder / "b.md").unlink()
        assert _until(lambda: [d["doc_id"] for d in rag.documents()] == ["a.txt"])
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert sum(len(r.added) for r in reports) == 2 and any(r.updated for r in reports) and any(r.removed for r in reports)


def test_the_commands_take_watch():
    parser = build_parser()
    assert parser.parse_args(["index", "docs", "--watch"]).watch
    assert parser.parse_args(["serve", "docs", "--watch"]).watch
    assert not parser.parse_args(["serve"]).watch


def test_the_watcher_stops_when_told(tmp_path):
    folder = Path(tmp_path)
    thread, stop = watch_in_background(_NoIndex(), [folder], initial=False, debounce_ms=100)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


class _NoIndex:
    def index(self, paths):  # never called: nothing changes and initial=False
        raise AssertionError("indexed without a change")
