"""BM25 beside the dense side (large stores): the same passages as one after the other, whatever the pool does."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import rag.retrieval.retrieve as retrieve_module
from rag.retrieval.retrieve import RetrievalSettings, retrieve
from rag.storage.store import search_store

QUESTIONS = ["蓝风微短剧基地从签约到试运营用了多少天？", "邱沛霖", "What is filmed at the base?", "224家企业"]


def _passages(store, embedder, query):
    found = retrieve(store, embedder, query, 5, RetrievalSettings(explain=True))
    return [(p.chunk.chunk_id, p.score, p.dense_score, p.lexical_score, p.explain) for p in found]


def _spy(store, calls, monkeypatch):
    real = store.lexical

    def lexical(*args):
        calls.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(store, "lexical", lexical)  # the session's store: put back after the test


def test_overlapped_search_equals_sequential(seed_rag, embedder, monkeypatch):
    store = search_store(seed_rag.state)
    sequential = {q: _passages(store, embedder, q) for q in QUESTIONS}
    monkeypatch.setattr(retrieve_module, "OVERLAP_MIN_ROWS", 1)
    calls: list[str] = []
    _spy(store, calls, monkeypatch)
    real_dense = store.dense

    def dense_after_bm25_started(*args):  # the seed index's dense side is too quick to see the pool start
        for _ in range(1000):
            if len(calls) == done[0] + 1:
                break
            threading.Event().wait(0.01)
        return real_dense(*args)

    monkeypatch.setattr(store, "dense", dense_after_bm25_started)
    done = [0]
    for q in QUESTIONS:
        assert _passages(store, embedder, q) == sequential[q]
        done[0] += 1
    assert len(calls) == len(QUESTIONS) and all(name.startswith("rag-bm25") for name in calls)


def test_a_busy_pool_leaves_bm25_to_the_caller(seed_rag, embedder, monkeypatch):
    store = search_store(seed_rag.state)
    want = _passages(store, embedder, QUESTIONS[0])
    busy = ThreadPoolExecutor(max_workers=1)
    release = threading.Event()
    busy.submit(release.wait, 30)  # its one thread is taken: a submitted BM25 would wait in its queue
    monkeypatch.setattr(retrieve_module, "OVERLAP_MIN_ROWS", 1)
    monkeypatch.setattr(retrieve_module, "_LEXICAL_POOL", busy)
    calls: list[str] = []
    _spy(store, calls, monkeypatch)
    try:
        assert _passages(store, embedder, QUESTIONS[0]) == want
        assert calls == [threading.current_thread().name]  # taken back from the queue and run here
    finally:
        release.set()
        busy.shutdown()


def test_a_failing_dense_side_cancels_bm25_and_raises(seed_rag, embedder, monkeypatch):
    store = search_store(seed_rag.state)
    busy = ThreadPoolExecutor(max_workers=1)
    release = threading.Event()
    busy.submit(release.wait, 30)
    monkeypatch.setattr(retrieve_module, "OVERLAP_MIN_ROWS", 1)
    monkeypatch.setattr(retrieve_module, "_LEXICAL_POOL", busy)
    calls: list[str] = []
    _spy(store, calls, monkeypatch)

    def broken(*args):
        raise OSError("vectors unreadable")

    monkeypatch.setattr(store, "dense", broken)
    try:
        with pytest.raises(OSError, match="vectors unreadable"):
            retrieve(store, embedder, QUESTIONS[0], 5, RetrievalSettings())
        release.set()
        busy.shutdown(wait=True)
        assert calls == []  # the queued BM25 was cancelled, never run
    finally:
        release.set()
        busy.shutdown()
