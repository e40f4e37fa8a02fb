"""rag feedback export / list: the summary line, the table, atomic output, and the errors' exit codes."""

from __future__ import annotations

import json
import os

import pytest

from rag.evaluation.dataset import load_dataset
from rag.feedback import FEEDBACK_FILE, record_feedback
from ui.cli import main

BIG = 10 * 1024 * 1024


def add(index, **fields):
    return record_feedback(index, {"rating": "up", "question": "问题？", "answer": "答案。 [1]",
                                   "cited_doc_ids": ["a.txt"], **fields}, max_bytes=BIG)


@pytest.fixture
def index(tmp_path):
    path = tmp_path / "index"
    path.mkdir()
    return path


def test_export_writes_a_question_set_and_says_what_it_skipped(index, tmp_path, capsys):
    add(index, question="甲？")
    add(index, question="乙？", rating="down")
    add(index, question="丙？", rating="down", corrected_answer="四十七天")
    add(index, question="甲？", rating="down", not_in_documents=True)
    out = tmp_path / "fb.jsonl"
    assert main(["feedback", "export", "--index-dir", str(index), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line == (f"wrote {out}: 2 questions (1 feedback-corrected, 1 feedback-unanswerable) from 4 records; "
                    "skipped: 1 superseded by a later record of the same question, "
                    "1 thumbs-down without a correction or 'not in the documents'")
    assert [r.question for r in load_dataset(out, strict=True).rows] == ["丙？", "甲？"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_export_replaces_an_existing_file_whole(index, tmp_path, capsys):
    out = tmp_path / "fb.jsonl"
    out.write_text("old\n" * 1000, encoding="utf-8")
    add(index)
    assert main(["feedback", "export", "--index-dir", str(index), "--out", str(out)]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1


def test_nothing_to_export_is_one_line_exit_1_and_no_file(index, tmp_path, capsys):
    out = tmp_path / "fb.jsonl"
    assert main(["feedback", "export", "--index-dir", str(index), "--out", str(out)]) == 1
    assert "error: no feedback recorded in" in capsys.readouterr().err
    add(index, rating="down")
    assert main(["feedback", "export", "--index-dir", str(index), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "none of the 1 feedback records can become a question" in err and "nothing written" in err
    assert not out.exists()


def test_bad_places_are_named_with_their_exit_codes(index, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["feedback", "export", "--index-dir", str(missing), "--out", str(tmp_path / "x.jsonl")]) == 3
    assert f"error: no index folder at {missing}" in capsys.readouterr().err
    assert main(["feedback", "list", "--index-dir", str(missing)]) == 3
    assert main(["feedback", "export", "--index-dir", str(index), "--out", str(tmp_path / "no" / "x.jsonl")]) == 2
    assert "the folder" in capsys.readouterr().err
    assert main(["feedback", "export", "--index-dir", str(index), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_list_prints_a_table_and_json(index, capsys, caplog):
    assert main(["feedback", "list", "--index-dir", str(index)]) == 1
    assert "no feedback recorded" in capsys.readouterr().err
    first = add(index, question="蓝风微短剧基地\n从签约到试运营用了多少天？" + "很" * 50)
    add(index, question="火星？", rating="down", not_in_documents=True)
    with (index / FEEDBACK_FILE).open("ab") as f:
        f.write(b"garbage\n")
    assert main(["feedback", "list", "--index-dir", str(index)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "time\trating\tquestion\tcorrection"
    when, rating, question, correction = lines[1].split("\t")
    assert when == first["time"][:19].replace("T", " ") and rating == "up" and correction == "-"
    assert question.startswith("蓝风微短剧基地 从签约") and len(question) == 40 and question.endswith("…")
    assert lines[2].split("\t")[1:] == ["down", "火星？", "(not in the documents)"]
    assert any("line 3 skipped" in m for m in caplog.messages)
    assert main(["feedback", "list", "--index-dir", str(index), "--json"]) == 0
    assert [r["question"] for r in json.loads(capsys.readouterr().out)][1] == "火星？"


def test_the_index_dir_defaults_to_the_setting(index, capsys, monkeypatch):
    add(index, rating="down", corrected_answer="甲")
    monkeypatch.setenv("RAG_INDEX_DIR", os.fspath(index))
    assert main(["feedback", "list"]) == 0
    assert "\t甲" in capsys.readouterr().out
