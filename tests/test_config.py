"""One settings object: every value checked at open, the index's recorded settings respected out loud,
RAG_* read in one module, and no model download unless the user opts in."""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import ROOT

from rag import RAG
from rag.config import Settings
from rag.errors import ConfigError

RAG_BIN = Path(sys.executable).parent / "rag"


@pytest.mark.parametrize(("setting", "value", "words"), [
    ("retrieval", "magic", "retrieval (RAG_RETRIEVAL) must be one of hybrid, dense, lexical. Currently, it is 'magic'"),
    ("headers", "all", "must be one of none, dense, both"),
    ("overlap_tokens", 700, "smaller than chunk_tokens"),
    ("candidates", 0, "candidates (RAG_CANDIDATES) must be a whole number of at least 1"),
    ("llm_timeout", -1, "a positive number"),
    ("faiss_ann", "lsh", "must be one of ivf, ivf-sq8, hnsw"),
    ("embed_engine", "gpu", "must be one of auto, openvino, torch"),
])
def test_every_setting_is_checked_at_open(tmp_path, setting, value, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        RAG.open(tmp_path / "index", create=True, **{setting: value})


def test_an_unknown_setting_is_refused(seed_index):
    with pytest.raises(ConfigError, match="unknown setting"):
        RAG.open(seed_index, faiss_magic="yes")


def test_chunk_settings_that_differ_from_the_index_are_an_error(seed_index):
    with pytest.raises(ConfigError, match=r"chunk_tokens=256 \(the index has 640\).*rebuild"):
        RAG.open(seed_index, chunk_tokens=256)
    assert RAG.open(seed_index, chunk_tokens=640, progress=False).settings.chunk_tokens == 640  # the same is fine


@pytest.mark.subprocess
def test_an_environment_value_the_index_cannot_use_is_a_notice(seed_index, monkeypatch):
    monkeypatch.setenv("RAG_CHUNK_TOKENS", "256")
    rag = RAG.open(seed_index, progress=False)
    assert rag.settings.chunk_tokens == 640
    assert rag.notices == ["RAG_CHUNK_TOKENS is not used: chunk_tokens=256 (the index has 640)"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", RAG_CHUNK_TOKENS="256")
    out = subprocess.run([str(RAG_BIN), "search", "天心经开区", "--index-dir", str(seed_index)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0 and "note: RAG_CHUNK_TOKENS is not used" in out.stderr, out.stderr
    env["RAG_CHUNK_TOKENS"] = "lots"
    bad = subprocess.run([str(RAG_BIN), "search", "天心经开区", "--index-dir", str(seed_index)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert bad.returncode == 2 and "RAG_CHUNK_TOKENS must be a int. Currently, it is 'lots'" in bad.stderr


@pytest.mark.subprocess
def test_the_cli_refuses_other_chunking_on_a_built_index(writable_index):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run([str(RAG_BIN), "index", str(ROOT / "seeds"), "--index-dir", str(writable_index),
                          "--chunk-tokens", "256"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 2 and "chunk_tokens=256 (the index has 640)" in out.stderr, out.stderr


def test_faiss_settings_are_settings_of_rag_open(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"d{i}.txt").write_text(f"第{i}篇文档讲述青石村的第{i}次灯会，共展出花灯{i + 3}百盏。", encoding="utf-8")
    rag = RAG.open(tmp_path / "index", create=True, progress=False, faiss_flat_max=0, faiss_ann="hnsw")
    rag.add(docs)
    assert RAG.open(tmp_path / "index").size == 3
    import json

    assert json.loads((tmp_path / "index" / "manifest.json").read_text())["faiss"]["kind"] == "hnsw"


def test_rag_variables_are_read_in_one_module():
    readers = []
    for path in sorted((ROOT / "rag").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if re.search(r"(environ(\.get)?|getenv)\W+[\"']RAG_", text) and path.name != "config.py":
            readers.append(path.name)
    assert readers == []


def test_settings_from_the_environment_cover_every_field():
    s = Settings.from_env({"RAG_API_KEY": "s3cr3t-key", "RAG_FAISS_FLAT_MAX": "1_000", "RAG_ALLOW_DOWNLOADS": "yes",
                           "RAG_ALLOWED_GENERATORS": "openai:m"})
    assert (s.api_key, s.faiss_flat_max, s.allow_downloads) == ("s3cr3t-key", 1000, True)
    assert s.network_generators() == ["extractive", "openai:m"]
    assert "s3cr3t" not in repr(s)  # the key never lands in a log line


# ---- no download unless asked ---------------------------------------------------------------
class _Hub(http.server.BaseHTTPRequestHandler):
    """Stands in for the model hub on loopback: counts requests and answers 404."""

    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_hub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hub.hits = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


SCRIPT = """
import sys
from rag import RAG
from rag.errors import EmbedderError
try:
    RAG.open(sys.argv[1], create=True, embedder="someorg/not-on-this-machine", embed_engine="torch",
             allow_downloads=sys.argv[2] == "yes")
except EmbedderError as exc:
    print(exc)
"""


@pytest.mark.subprocess
@pytest.mark.parametrize("allowed", ["no", "yes"])
def test_the_python_api_does_not_reach_the_hub_unless_allowed(tmp_path, fake_hub, allowed):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env |= {"HF_ENDPOINT": fake_hub, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_ETAG_TIMEOUT": "5",
            "HF_HUB_DOWNLOAD_TIMEOUT": "5"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "index"), allowed],
                         capture_output=True, text=True, env=env, timeout=600)
    assert "cannot load sentence-transformers model 'someorg/not-on-this-machine'" in out.stdout, out.stdout + out.stderr
    if allowed == "no":
        assert _Hub.hits == [] and "RAG_ALLOW_DOWNLOADS=1" in out.stdout
    else:  # the opt-in really asks the hub: the test above can tell the difference
        assert any("not-on-this-machine" in h for h in _Hub.hits)


def test_the_readme_settings_table_names_real_settings_and_links_the_reference():
    """The README shows the settings most users change; every name in its table is a setting, and it
    points to docs/settings.md, which lists them all (written from `Settings`, checked below)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}
    assert named and named <= set(Settings.model_fields), named - set(Settings.model_fields)
    assert "(docs/settings.md)" in section


# ---- the model: precedence, types, messages, the reference page ------------------------------
def test_an_argument_wins_over_the_environment_and_the_environment_over_the_default(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "7")
    assert Settings().top_k == 5  # Settings(...) alone never reads the environment
    env = Settings.from_env()
    assert env.top_k == 7
    assert env.with_overrides(top_k=3, retrieval=None).top_k == 3
    assert env.with_overrides(top_k=None).top_k == 7  # None keeps a value
    assert Settings.from_env({"RAG_RETRIEVAL": " dense ", "RAG_TOP_K": ""}) == Settings(retrieval="dense")


def test_settings_are_frozen_and_an_override_is_checked_again():
    s = Settings()
    with pytest.raises(ValueError):
        s.top_k = 1  # type: ignore[misc]
    with pytest.raises(ConfigError, match=re.escape("top_k (RAG_TOP_K) must be a whole number of at least 1. Currently, it is 0")):
        s.with_overrides(top_k=0)
    assert s.top_k == 5


@pytest.mark.parametrize(("values", "words"), [
    ({"top_k": "5"}, "top_k (RAG_TOP_K) must be a whole number of at least 1. Currently, it is '5'"),
    ({"batch_size": True}, "batch_size (RAG_BATCH_SIZE) must be a whole number of at least 1. Currently, it is True"),
    ({"progress": "no"}, "progress (RAG_PROGRESS) must be true or false. Currently, it is 'no'"),
    ({"embedder": "  "}, "embedder (RAG_EMBEDDER) must be a non-empty string. Currently, it is '  '"),
])
def test_an_argument_of_another_type_is_refused_not_converted(values, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        Settings(**values)


def test_every_bad_value_is_named_at_once():
    with pytest.raises(ConfigError) as refused:
        Settings(top_k=0, faiss_ann="lsh")
    assert str(refused.value) == ("top_k (RAG_TOP_K) must be a whole number of at least 1. Currently, it is 0; "
                                  "faiss_ann (RAG_FAISS_ANN) must be one of ivf, ivf-sq8, hnsw. Currently, it is 'lsh'")


@pytest.mark.parametrize(("variable", "text", "words"), [
    ("RAG_PROGRESS", "maybe", "RAG_PROGRESS must be a bool. Currently, it is 'maybe'"),
    ("RAG_LLM_TIMEOUT", "soon", "RAG_LLM_TIMEOUT must be a float. Currently, it is 'soon'"),
    ("RAG_OVERLAP_TOKENS", "640", "overlap_tokens (RAG_OVERLAP_TOKENS) must be smaller than chunk_tokens (640). Currently, it is 640"),
    ("RAG_HEADERS", "all", "headers (RAG_HEADERS) must be one of none, dense, both. Currently, it is 'all'"),
])
def test_a_bad_variable_is_named_with_its_text(variable, text, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        Settings.from_env({variable: text})


def test_the_mode_constants_are_the_allowed_values():
    from rag.config import EMBED_ENGINES, FAISS_ANN_KINDS, HEADER_MODES, RETRIEVAL_MODES

    for name, allowed in (("retrieval", RETRIEVAL_MODES), ("headers", HEADER_MODES),
                          ("embed_engine", EMBED_ENGINES), ("faiss_ann", FAISS_ANN_KINDS)):
        assert Settings.from_env({f"RAG_{name.upper()}": allowed[-1]}).model_dump()[name] == allowed[-1]
        with pytest.raises(ConfigError, match=re.escape(f"must be one of {', '.join(allowed)}")):
            Settings(**{name: "other"})


def test_every_setting_is_described():
    undescribed = [name for name, field in Settings.model_fields.items() if not (field.description or "").strip()]
    assert undescribed == []


def test_the_settings_reference_is_written_from_the_model():
    from rag.settings_doc import settings_markdown

    page = settings_markdown()
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert [re.findall(r"`([a-z_]+)`", row.split("|")[1]) for row in rows] == [[name] for name in Settings.model_fields]
    assert "| `retrieval` | `RAG_RETRIEVAL` | one of `hybrid`, `dense`, `lexical` | `hybrid` |" in page
    assert "| `max_feedback_mb` | `RAG_MAX_FEEDBACK_MB` | a positive number | `20` |" in page
    written = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert written == page, "docs/settings.md is stale: regenerate it with `python -m rag.settings_doc` (from the repository root)"


def test_the_reference_command_checks_and_writes(tmp_path):
    from rag.settings_doc import main, settings_markdown

    page = tmp_path / "settings.md"
    assert main([str(page), "--check"]) == 1  # missing
    assert main([str(page)]) == 0 and page.read_text(encoding="utf-8") == settings_markdown()
    assert main([str(page), "--check"]) == 0
