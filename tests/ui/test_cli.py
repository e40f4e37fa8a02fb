"""The `rag` command end to end: in this process (tests/cli_runner.py), and the installed console script in a
new process for what only a process shows (its entry point, what importing the libraries prints, PYTHONWARNINGS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cli_runner import RAG_BIN, rag, rag_process
from conftest import ROOT
from llm_faults import PARTIAL, QUESTION, failing_llm

from ui.commands import REPLACED


@pytest.mark.subprocess
def test_the_console_script_answers_as_in_process_and_fails_with_one_line(seed_index):
    """The installed `rag` in a new process: the output of `rag` in this process, and an error on one line of
    stderr (nothing printed while torch, OpenVINO and the rest import)."""
    assert RAG_BIN.exists()
    args = ("search", "邱沛霖", "--json", "--top-k", "3", "--index-dir", str(seed_index))
    out = rag_process(*args)
    assert out.returncode == 0, out.stderr
    assert [(h["doc_id"], h["text"]) for h in json.loads(out.stdout)] == [
        (h["doc_id"], h["text"]) for h in json.loads(rag(*args).stdout)]
    err = rag_process("ask", "问题", "--index-dir", "/nonexistent/idx")
    assert err.returncode == 3 and err.stderr.startswith("error: no index at") and err.stderr.strip().count("\n") == 0


@pytest.mark.slow
def test_ask_json_matches_the_python_api(seed_index, seed_rag):
    out = rag("ask", "蓝风微短剧基地从签约到试运营用了多少天？", "--json", "--index-dir", str(seed_index))
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    api = seed_rag.ask("蓝风微短剧基地从签约到试运营用了多少天？").to_dict()
    assert d["answer"] == api["answer"] and d["citations"] == api["citations"]
    assert "47天" in d["answer"] and d["citations"][0]["doc_id"] == "000_e58332798fe41e73.txt"


@pytest.mark.slow
def test_human_output_shows_answer_then_sources(seed_index):
    out = rag("ask", "福建福州市军门社区的老党员叫什么名字？", "--index-dir", str(seed_index))
    assert out.returncode == 0, out.stderr
    answer, sources = out.stdout.split("来源 Sources:")
    assert ("邱沛霖" in answer and "[1]" in sources) or "[2]" in sources


def test_search_json(seed_index):
    out = rag("search", "邱沛霖", "--json", "--top-k", "3", "--index-dir", str(seed_index))
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert len(hits) == 3 and "邱沛霖" in hits[0]["text"]


def test_index_then_update_from_the_command_line(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("岳麓书院始建于公元976年。", encoding="utf-8")
    idx = tmp_path / "idx"
    first = rag("index", str(docs), "--index-dir", str(idx), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["added"] == ["a.txt"]
    second = rag("index", str(docs), "--index-dir", str(idx), "--json")
    assert json.loads(second.stdout)["chunks_embedded"] == 0
    rebuilt = rag("index", str(docs), "--index-dir", str(idx), "--rebuild", "--json")
    assert json.loads(rebuilt.stdout)["added"] == ["a.txt"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("ask", "问题", "--index-dir", "/nonexistent/idx"), 3, "no index at"),
        (("ask", "   ", "--index-dir", "{seed}"), 2, "question is empty"),
        (("search", "问题", "--top-k", "0", "--index-dir", "{seed}"), 2, "top_k is 0"),
        (("delete", "nope.txt", "--index-dir", "{seed}"), 6, "nope.txt"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(seed_index, args, code, message):
    out = rag(*[a.format(seed=seed_index) for a in args])
    assert out.returncode == code
    assert message in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0


def test_verify_folds_many_warnings_into_one_line(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):
        (docs / f"note{i:02d}.txt").write_text(f"第{i}号通知：会议改在{i + 1}号楼举行。", encoding="utf-8")
    idx = str(tmp_path / "idx")
    assert rag("index", str(docs), "--index-dir", idx).returncode == 0
    for f in docs.iterdir():
        f.unlink()
    out = rag("verify", "--quick", "--index-dir", idx)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("warning:")]
    assert len(lines) == 11 and "… and 2 more" in lines[-1]
    every = rag("verify", "--quick", "--all", "--index-dir", idx)
    assert sum(ln.startswith("warning:") and "no longer exists" in ln for ln in every.stdout.splitlines()) == 12


@pytest.mark.parametrize("when", ["before", "midway"])
@pytest.mark.slow
def test_ask_stream_prints_the_extractive_answer_when_the_llm_fails(seed_index, seed_rag, monkeypatch, when):
    extractive = seed_rag.ask(QUESTION).answer
    with failing_llm(when, monkeypatch):
        out = rag("ask", QUESTION, "--stream", "--generator", "openai:test-model", "--index-dir", str(seed_index))
    assert out.returncode == 0, out.stderr
    text, sources = out.stdout.split("来源 Sources:")
    assert text.count(extractive) == 1 and "[1]" in sources
    assert "warning: LLM openai:test-model failed" in out.stderr
    if when == "before":  # streamed as it came, printed once
        assert text.strip() == extractive
    else:  # the LLM's partial text was printed first: say it is replaced, then print the answer
        assert text.strip() == f"{PARTIAL}\n{REPLACED}\n{extractive}"


@pytest.mark.slow
def test_ask_stream_prints_an_answer_once_when_it_was_streamed_whole(seed_index, seed_rag):
    out = rag("ask", QUESTION, "--stream", "--index-dir", str(seed_index))
    assert out.returncode == 0, out.stderr
    text, _ = out.stdout.split("来源 Sources:")
    assert text.strip() == seed_rag.ask(QUESTION).answer and REPLACED not in out.stdout


@pytest.mark.subprocess  # PYTHONWARNINGS is read when an interpreter starts
@pytest.mark.parametrize("user_options", [None, "default"])
def test_the_cli_hides_the_libraries_warnings_only(user_options):
    """`rag` keeps library warnings off the terminal, but not the user's own, and none when the user
    chose what to see (PYTHONWARNINGS)."""
    code = (
        "import warnings\n"
        "from ui.cli import quiet_libraries\n"
        "quiet_libraries(allow_downloads=False)\n"
        "warnings.warn_explicit('LIBRARY-NOISE', FutureWarning, 'modeling_utils.py', 1, module='transformers.modeling_utils')\n"
        "warnings.warn_explicit('USER-WARNING', UserWarning, 'mine.py', 1, module='mine')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    if user_options:
        env["PYTHONWARNINGS"] = user_options
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "USER-WARNING" in out.stderr
    assert ("LIBRARY-NOISE" in out.stderr) == bool(user_options)


COLLECTOR_PROBE = r"""
import gc, json, sys
import ui.cli, ui.launch
seen = {}
def fake(args):
    seen["during"] = gc.isenabled()
    return 0
ui.cli.cmd_search = ui.cli.cmd_documents = fake  # the parser is built by main: it takes these
sys.argv = ["rag", *sys.argv[1:]]
code = ui.launch.main()
print(json.dumps({"code": code, "during": seen["during"], "after": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


@pytest.mark.parametrize(("args", "paused"), [(["search", "问题"], True), (["documents"], False)])
def test_the_program_pauses_the_cycle_collector_only_for_one_question(tmp_path, args, paused):
    """``rag`` (ui.launch) starts with the collector paused; a one-question command keeps it paused to its
    end (what it made frozen before exit), any other resumes it once it is known."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", COLLECTOR_PROBE, *args, "--index-dir", str(tmp_path / "none")],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["code"] == 0 and out["frozen"] > 10_000  # the start-up's objects, frozen
    assert out["during"] is not paused and out["after"] is not paused
