"""`rag ask --json` through a running `rag serve` on the same index: the same JSON, or the in-process answer.

A real uvicorn server on loopback (tests/servers.py) with the API over the index, announced in the index
folder as `rag serve` announces itself, and `rag ask` run in this process (tests/cli_runner.py): it finds the
server by the folder's announcement as a separate process would. The real `rag serve`, its announcement and
its withdrawal on Ctrl-C, is one slow test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cli_runner import RAG_BIN, rag
from conftest import ROOT
from servers import free_port, serving

from rag.http.app import INSTANCE_HEADER, create_api, instance_token
from ui import commands
from ui.commands import SERVE_FILE, ServerAnnouncement

Q = "蓝风微短剧基地从签约到试运营用了多少天？"


def ask(index: Path, *args: str, env: dict[str, str] | None = None) -> tuple[dict, str]:
    """``rag ask Q --json --verbose`` with ``env`` set: (the JSON, stderr)."""
    done = rag("ask", *(args or (Q,)), "--index-dir", str(index), "--json", "--verbose", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def without_timings(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "timings"}


class Recorder:
    """ASGI wrapper that notes each request's path and API key header, then lets the app answer."""

    def __init__(self, app) -> None:
        self.app, self.seen = app, []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.seen.append((scope["path"], headers.get("x-api-key")))
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def server(rag, index_copy):
    """The API over the module's index on a loopback port, announced in the index folder."""
    recorder = Recorder(create_api(rag, api_key=""))
    with serving(recorder) as base:
        port = int(base.rsplit(":", 1)[1])
        announcement = ServerAnnouncement(index_copy, "127.0.0.1", port).start()
        deadline = time.monotonic() + 30
        while not (index_copy / SERVE_FILE).is_file():
            assert time.monotonic() < deadline, "the server was not announced"
            time.sleep(0.05)
        record = json.loads((index_copy / SERVE_FILE).read_text(encoding="utf-8"))
        yield {"base": base, "port": port, "record": record, "recorder": recorder, "announcement": announcement}
        announcement.withdraw()


@pytest.fixture
def announced(server, index_copy):
    """The announcement as the server wrote it, restored after a test that changed it."""
    path = index_copy / SERVE_FILE
    original = path.read_bytes()
    yield path
    path.write_bytes(original)
    path.chmod(0o600)


def test_the_announcement_is_the_users_own_and_names_this_server(server, index_copy):
    path = index_copy / SERVE_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert server["record"] == {"host": "127.0.0.1", "port": server["port"], "pid": os.getpid(),
                                "index_dir": str(index_copy.resolve()), "token": instance_token()}
    assert commands.INSTANCE_HEADER == INSTANCE_HEADER


def test_the_instance_route_answers_only_with_the_token(server, index_copy):
    url = f"{server['base']}/api/instance"
    assert httpx.get(url, timeout=10).status_code == 404
    assert httpx.get(url, headers={INSTANCE_HEADER: "guess"}, timeout=10).status_code == 404
    info = httpx.get(url, headers={INSTANCE_HEADER: instance_token()}, timeout=10).json()
    assert info["pid"] == os.getpid() and info["index_dir"] == str(index_copy.resolve())
    assert "api_key" not in info["settings"] and info["settings"]["top_k"] == 5


@pytest.mark.parametrize("args", [(Q,), (Q, "--top-k", "3", "--retrieval", "lexical"),
                                  ("邱沛霖是谁？", "--filter", "doc=000_*")])
@pytest.mark.slow
def test_the_server_s_json_is_the_in_process_json(server, index_copy, args):
    seen = server["recorder"].seen
    before = len(seen)
    via_server, notes = ask(index_copy, *args)
    assert "answered by the server" in notes
    assert [p for p, _ in seen[before:]] == ["/api/instance", "/api/ask"]
    hidden = index_copy / "hidden.json"
    os.replace(index_copy / SERVE_FILE, hidden)  # no server announced: answered in this process
    try:
        in_process, notes = ask(index_copy, *args)
    finally:
        os.replace(hidden, index_copy / SERVE_FILE)
    assert "answered by the server" not in notes and len(seen) == before + 2
    assert without_timings(via_server) == without_timings(in_process)
    assert via_server["citations"] and via_server["passages"]


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


@pytest.mark.parametrize("change, reason", [
    ({"pid": "dead"}, "is gone"),
    ({"token": "a-guess"}, "does not confirm"),
    ({"host": "10.1.2.3"}, "not a loopback address"),
    ({"host": "localhost.example.com"}, "not a loopback address"),
    ({"index_dir": "/elsewhere/index"}, "another folder's"),
    ({"port": "closed"}, "failed"),
    ({"mode": 0o644}, "readable by others"),
])
@pytest.mark.slow
def test_anything_amiss_and_the_answer_is_made_in_process(server, announced, index_copy, change, reason):
    record = dict(server["record"])
    if change.get("pid") == "dead":
        change = {"pid": _dead_pid()}
    if change.get("port") == "closed":
        change = {"port": free_port()}
    mode = change.pop("mode", 0o600)
    record.update(change)
    announced.write_text(json.dumps(record), encoding="utf-8")
    announced.chmod(mode)
    seen = server["recorder"].seen
    before = len(seen)
    answer, notes = ask(index_copy)
    assert reason in notes and "answered by the server" not in notes
    assert "/api/ask" not in [p for p, _ in seen[before:]]
    assert "47天" in answer["answer"]


@pytest.mark.slow
def test_other_settings_are_answered_in_process(server, index_copy):
    before = len(server["recorder"].seen)
    answer, notes = ask(index_copy, env={"RAG_TOP_K": "2"})
    assert "settings differ (top_k)" in notes
    assert [p for p, _ in server["recorder"].seen[before:]] == ["/api/instance"]
    assert len(answer["passages"]) <= 2


@pytest.mark.slow
def test_the_api_key_is_sent_when_set(server, index_copy):
    before = len(server["recorder"].seen)
    _, notes = ask(index_copy, env={"RAG_API_KEY": "k3y"})
    assert "answered by the server" in notes
    assert ("/api/ask", "k3y") in server["recorder"].seen[before:]


def test_withdraw_removes_only_its_own_announcement(tmp_path):
    mine = ServerAnnouncement(tmp_path, "127.0.0.1", 1)
    (tmp_path / SERVE_FILE).write_text(json.dumps({"token": "another server's"}), encoding="utf-8")
    mine.withdraw()
    assert (tmp_path / SERVE_FILE).is_file()
    (tmp_path / SERVE_FILE).write_text(json.dumps({"token": mine.token}), encoding="utf-8")
    mine.withdraw()
    assert not (tmp_path / SERVE_FILE).exists()
    assert ServerAnnouncement(tmp_path, "192.168.1.20", 1).start()._thread.ident is None  # not on loopback


@pytest.mark.server
def test_rag_serve_announces_itself_and_withdraws_on_exit(seed_index, tmp_path):
    """The real `rag serve`: the file appears once it answers, `rag ask` uses it, and it goes on Ctrl-C."""
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    port = free_port()
    serve = subprocess.Popen([str(RAG_BIN), "serve", "--index-dir", str(index), "--port", str(port)], cwd=ROOT,
                             env=dict(os.environ, HF_HUB_OFFLINE="1"), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (index / SERVE_FILE).is_file():
            assert serve.poll() is None, serve.stdout.read()
            assert time.monotonic() < deadline, "rag serve did not announce itself"
            time.sleep(0.2)
        record = json.loads((index / SERVE_FILE).read_text(encoding="utf-8"))
        assert (record["pid"], record["port"], record["host"]) == (serve.pid, port, "127.0.0.1")
        answer, notes = ask(index)
        assert f"answered by the server on 127.0.0.1:{port} (pid {serve.pid})" in notes
        assert "47天" in answer["answer"]
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=60)
    assert not (index / SERVE_FILE).exists()
    _, notes = ask(index)
    assert "answered by the server" not in notes
