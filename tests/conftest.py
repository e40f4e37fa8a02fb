"""Shared fixtures (the real default embedder, a real index built once from seeds/), the test tiers and
what a test needs from outside the repository (../shared/data, Chromium)."""

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

# The slow tier: `make test-fast` runs `-m "not slow"`, and a test of any of these kinds is slow by its kind.
SLOW_KINDS = ("browser", "server", "subprocess", "train", "milvus", "ray")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(kind) for kind in SLOW_KINDS):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures, which may read the files
def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.shared_data(NAME, ...)``: the test reads these files of ../shared/data."""
    for mark in item.iter_markers("shared_data"):
        for name in mark.args:
            shared_data(name)


def missing(what: str) -> None:
    """Skip a test for lack of ``what`` here; fail it in CI (CI is set), which has everything the tests need:
    ../shared beside the clone and Chromium from `make test-deps`, so a skip there would hide a broken set-up."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(what)


def shared_data(name: str) -> Path:
    """The file ``name`` of ../shared/data (beside the clone, never in it), or the test is skipped (failed in CI)."""
    path = SHARED_DATA / name
    if not path.is_file():
        missing(f"shared data {path} is missing")
    return path


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
