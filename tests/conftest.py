"""Shared fixtures: the real default embedder and a real index built once from seeds/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Imported here, before any test starts a server thread: pytest rewrites anyio (a pytest plugin) on its first
# import, and that compile, done inside a test while its loopback server thread ran, failed once in CI with
# CPython 3.11's "AST constructor recursion depth mismatch" (python/cpython#106905, seen in threaded programs).
import fastapi.testclient  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SEED_FILE = SEEDS / "000_e58332798fe41e73.txt"
SHARED_DATA = ROOT.parent / "shared" / "data"
KITE = "紫藤镇风筝节于每年四月十八日举行。\n今年的紫藤镇风筝节吸引游客两万三千人，创历史新高。\n"


@pytest.fixture
def kite_corpus(tmp_path) -> Path:
    """A folder with the seed document and a two-line kite-festival note (a fact only it holds)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / SEED_FILE.name).write_bytes(SEED_FILE.read_bytes())
    (folder / "kite.txt").write_text(KITE, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def seed_text() -> str:
    return SEED_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def embedder():
    from rag.embedding.backends import load_embedder

    return load_embedder()


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, embedder) -> Path:
    """An index of seeds/ built once per session; tests that modify an index copy it first."""
    from rag import RAG

    path = tmp_path_factory.mktemp("seed-index") / "index"
    RAG.open(path, create=True, progress=False).index([SEEDS])
    return path


@pytest.fixture
def seed_rag(seed_index):
    from rag import RAG

    return RAG.open(seed_index, progress=False)


@pytest.fixture
def writable_index(seed_index, tmp_path) -> Path:
    dst = tmp_path / "index"
    shutil.copytree(seed_index, dst)
    return dst


@pytest.fixture(scope="module")
def index_copy(seed_index, tmp_path_factory) -> Path:
    """A copy of the seed index for one test module, which may change it."""
    dst = tmp_path_factory.mktemp("module-index") / "index"
    shutil.copytree(seed_index, dst)
    return dst


@pytest.fixture(scope="module")
def rag(index_copy):
    from rag import RAG

    return RAG.open(index_copy, progress=False)
