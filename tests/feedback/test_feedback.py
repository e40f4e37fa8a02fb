"""rag.feedback: records checked field by field, appended whole by many writers, read past damage, capped."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT

from rag.config import Settings
from rag.errors import ConfigError, IndexNotFoundError, RagError
from rag.feedback import FEEDBACK_FILE, FeedbackFullError, max_feedback_bytes, read_feedback, record_feedback

BIG = 10 * 1024 * 1024


def entry(**fields):
    base = {"rating": "up", "question": "蓝风微短剧基地从签约到试运营用了多少天？", "answer": "用时47天。 [1]",
            "abstained": False, "chunk_ids": ["c1"], "doc_ids": ["a.txt"], "cited_doc_ids": ["a.txt"],
            "kbs": ["seeds"], "settings": {"top_k": 5, "retrieval": "hybrid", "generator": "extractive"}}
    return {**base, **fields}


def test_a_record_is_stored_with_an_id_and_a_utc_time(tmp_path):
    stored = record_feedback(tmp_path, entry(reason="  准确  "), max_bytes=BIG)
    assert len(stored["id"]) == 32 and int(stored["id"], 16) >= 0
    assert stored["time"].endswith("+00:00")
    assert stored["reason"] == "准确" and stored["corrected_answer"] is None and stored["not_in_documents"] is False
    line = (tmp_path / FEEDBACK_FILE).read_text(encoding="utf-8")
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line) == stored
    assert read_feedback(tmp_path) == [stored]


@pytest.mark.parametrize(("fields", "message"), [
    ({"rating": "meh"}, "rating must be 'up' or 'down'"),
    ({"rating": None}, "rating must be 'up' or 'down'"),
    ({"question": "  "}, "question is empty"),
    ({"question": None}, "feedback needs the question that was asked"),
    ({"question": 5}, "question must be a string, got int"),
    ({"reason": "x" * 501}, "reason is 501 characters, over the limit of 500"),
    ({"corrected_answer": "y" * 2001}, "corrected_answer is 2001 characters, over the limit of 2000"),
    ({"corrected_answer": "47天", "not_in_documents": True}, "both a corrected_answer and not_in_documents"),
    ({"not_in_documents": "yes"}, "not_in_documents must be true or false"),
    ({"abstained": 1}, "abstained must be true or false"),
    ({"reason": "bad\ud800"}, "reason holds a lone UTF-16 surrogate"),
    ({"question": "问\x00题"}, "question holds the control character U+0000 at position 1"),
    ({"reason": "a\x1bb"}, "reason holds the control character U+001B"),
    ({"chunk_ids": "c1"}, "chunk_ids must be a list of strings, got str"),
    ({"doc_ids": [f"d{i}" for i in range(51)]}, "doc_ids has 51 entries, over the limit of 50"),
    ({"doc_ids": ["x" * 1025]}, "doc_ids[0] is 1025 characters, over the limit of 1024"),
    ({"cited_doc_ids": ["a\nb"]}, "cited_doc_ids[0] holds the control character U+000A"),
    ({"kbs": [""]}, "kbs[0] is empty"),
    ({"settings": []}, "settings must be an object"),
    ({"settings": {"top_k": [5]}}, "settings.top_k must be a string, number, true/false or null, got list"),
    ({"settings": {"bad key": 1}}, "settings key 'bad key' must be a name"),
    ({"settings": {"t": float("nan")}}, "settings.t must be a finite number"),
    ({"settings": {f"k{i}": i for i in range(21)}}, "settings has 21 entries, over the limit of 20"),
    ({"id": "ff" * 16}, "unknown feedback field(s) 'id'"),
])
def test_bad_fields_are_refused_by_name(tmp_path, fields, message):
    with pytest.raises(ConfigError) as err:
        record_feedback(tmp_path, entry(**fields), max_bytes=BIG)
    assert message in str(err.value)
    str(err.value).encode("utf-8")  # the message itself never carries the lone surrogate
    assert not (tmp_path / FEEDBACK_FILE).exists()


def test_free_text_keeps_newlines_and_tabs(tmp_path):
    stored = record_feedback(tmp_path, entry(rating="down", reason="第一行\n第二行\t完", corrected_answer="47天"),
                             max_bytes=BIG)
    assert stored["reason"] == "第一行\n第二行\t完"
    assert read_feedback(tmp_path)[0]["reason"] == "第一行\n第二行\t完"


def test_a_missing_index_folder_is_named(tmp_path):
    with pytest.raises(IndexNotFoundError, match="no index folder"):
        record_feedback(tmp_path / "nowhere", entry(), max_bytes=BIG)
    with pytest.raises(IndexNotFoundError, match="no index folder"):
        read_feedback(tmp_path / "nowhere")
    assert read_feedback(tmp_path) == []


def test_threads_append_whole_lines(tmp_path):
    def write(n: int) -> None:
        for i in range(20):
            record_feedback(tmp_path, entry(question=f"线程{n}问题{i}", answer="长" * 5000), max_bytes=BIG)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / FEEDBACK_FILE).read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 121
    assert all(json.loads(line)["answer"] == "长" * 5000 for line in lines[:-1])
    assert {r["question"] for r in read_feedback(tmp_path)} == {f"线程{n}问题{i}" for n in range(6) for i in range(20)}


WRITER = """
import sys
from pathlib import Path
from rag.feedback import record_feedback
for i in range(60):
    record_feedback(Path(sys.argv[1]), {"rating": "down", "question": f"进程{sys.argv[2]}问题{i}",
                    "answer": "答" * 20000, "not_in_documents": True}, max_bytes=50 * 1024 * 1024)
"""


@pytest.mark.subprocess
def test_two_processes_append_whole_lines(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), name], env=env) for name in "AB"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    raw = (tmp_path / FEEDBACK_FILE).read_bytes()
    lines = raw.split(b"\n")
    assert len(lines) == 121 and lines[-1] == b""
    records = [json.loads(line) for line in lines[:-1]]
    assert all(r["answer"] == "答" * 20000 for r in records)
    assert sorted(r["question"] for r in records) == sorted(f"进程{p}问题{i}" for p in "AB" for i in range(60))


def test_a_torn_line_is_skipped_with_its_number_and_the_next_append_starts_a_new_line(tmp_path, caplog):
    first = record_feedback(tmp_path, entry(question="第一"), max_bytes=BIG)
    with (tmp_path / FEEDBACK_FILE).open("ab") as f:
        f.write(b'{"id": "abc", "rating": "u')  # a writer killed mid-line
    third = record_feedback(tmp_path, entry(question="第三"), max_bytes=BIG)
    with (tmp_path / FEEDBACK_FILE).open("ab") as f:
        f.write(b"\xff\xfe not utf-8\n[1, 2]\n" + json.dumps({**first, "rating": "sideways"}).encode() + b"\n")
    with caplog.at_level(logging.WARNING, logger="rag.feedback"):
        records = read_feedback(tmp_path)
    assert [r["id"] for r in records] == [first["id"], third["id"]]
    skipped = [m for m in caplog.messages if "skipped" in m]
    assert [m.split(" line ")[1].split(" ")[0] for m in skipped] == ["2", "4", "5", "6"]
    assert "not a whole JSON record" in skipped[0] and "rating must be" in skipped[3]


def test_the_file_is_capped(tmp_path):
    one = len(json.dumps(record_feedback(tmp_path, entry(), max_bytes=BIG), ensure_ascii=False,
                         separators=(",", ":")).encode()) + 1
    record_feedback(tmp_path, entry(), max_bytes=2 * one + 10)
    with pytest.raises(FeedbackFullError, match=r"is full .*RAG_MAX_FEEDBACK_MB.*rag feedback export"):
        record_feedback(tmp_path, entry(), max_bytes=2 * one + 10)
    assert len(read_feedback(tmp_path)) == 2


def test_max_feedback_mb_is_a_checked_setting():
    assert Settings().max_feedback_mb == 20.0
    assert max_feedback_bytes(Settings.from_env({"RAG_MAX_FEEDBACK_MB": "0.5"}).max_feedback_mb) == 512 * 1024
    for bad in ("0", "-1"):
        with pytest.raises(ConfigError, match=r"max_feedback_mb \(RAG_MAX_FEEDBACK_MB\) must be a positive number"):
            Settings.from_env({"RAG_MAX_FEEDBACK_MB": bad})


def test_a_symlink_in_place_of_the_file_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("", encoding="utf-8")
    index = tmp_path / "index"
    index.mkdir()
    (index / FEEDBACK_FILE).symlink_to(target)
    with pytest.raises(RagError, match="cannot write the feedback file .*symbolic links"):
        record_feedback(index, entry(), max_bytes=BIG)
    assert target.read_text(encoding="utf-8") == ""


def test_settings_scalars_are_kept(tmp_path):
    stored = record_feedback(tmp_path, entry(settings={"top_k": 3, "hybrid": True, "t": 0.5, "filter": None}),
                             max_bytes=BIG)
    assert read_feedback(Path(tmp_path))[0]["settings"] == {"top_k": 3, "hybrid": True, "t": 0.5, "filter": None}
    assert stored["settings"]["hybrid"] is True
