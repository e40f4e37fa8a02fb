"""Micro-batching and memos of model calls (rag.embedding.batching): concurrent calls share a model call,
and every caller gets the bits it would get alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rag.embedding.backends import load_embedder
from rag.embedding.batching import Memo, MicroBatcher
from rag.generation import reader as reader_module
from rag.generation.reader import load_reader

QUESTIONS = [
    "蓝风微短剧基地从签约到试运营用了多少天？",
    "天心经开区有多少家高新技术企业？",
    "福建福州市军门社区的老党员叫什么名字？",
    "How many drama shoots per year can the Lanfeng micro-drama base handle?",
    "短",
]


def _concurrently(fn, args: list) -> list:
    """fn over args, each on its own thread, all released at once."""
    start = threading.Barrier(len(args))

    def call(a):
        start.wait()
        return fn(a)

    with ThreadPoolExecutor(len(args)) as pool:
        return list(pool.map(call, args))


def test_concurrent_calls_of_one_width_share_a_call_and_get_their_own_rows():
    seen: list[int] = []
    gate = threading.Event()

    def run(x):
        seen.append(len(x))
        gate.wait(10)  # the first call holds the worker until every other caller has queued
        return [x * 2, x.sum(axis=1)]

    batcher = MicroBatcher(run, name="test", max_rows=64, wait_s=0.0)
    inputs = [np.full((2, 3), i, np.int64) for i in range(10)]
    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(batcher, x) for x in inputs]
        deadline = time.monotonic() + 10
        while sum(seen) + 2 * len(batcher._pending) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        gate.set()
        outs = [f.result(timeout=10) for f in futures]
    for x, (doubled, sums) in zip(inputs, outs, strict=True):
        assert np.array_equal(doubled, x * 2) and np.array_equal(sums, x.sum(axis=1))
    assert sum(seen) == 20 and len(seen) <= 2  # the rows queued meanwhile went in one call


def test_inputs_of_other_widths_are_never_joined_and_errors_reach_their_caller():
    widths: list[int] = []

    def run(x):
        if x.shape[1] == 5:
            raise ValueError("width five")
        widths.append(x.shape[1])
        return [x + 1]

    batcher = MicroBatcher(run, name="test", wait_s=0.01)
    shapes = [(1, 2), (1, 3), (2, 2), (1, 5), (1, 3)]

    def call(shape):
        try:
            return batcher(np.zeros(shape))[0].shape
        except ValueError as exc:
            return str(exc)

    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(call, shapes))
    assert results == [(1, 2), (1, 3), (2, 2), "width five", (1, 3)]
    assert set(widths) == {2, 3}  # each call held one width
    assert batcher(np.zeros((1, 4)))[0].shape == (1, 4)  # the worker survived the error


def test_memo_remembers_gives_copies_and_forgets_the_oldest():
    memo, computed = Memo(2), []

    def compute(k):
        computed.append(k)
        return (np.array([k, k]),)

    a = memo.get("a", lambda: compute(1))[0]
    a[0] = 99  # the caller's copy
    assert memo.get("a", lambda: compute(1))[0].tolist() == [1, 1]
    memo.get("b", lambda: compute(2))
    memo.get("c", lambda: compute(3))  # "a" is the oldest now: forgotten
    memo.get("a", lambda: compute(1))
    assert computed == [1, 2, 3, 1] and memo.hits == 1


@pytest.mark.slow
def test_questions_embedded_together_equal_each_alone():
    embedder = load_embedder()
    alone = {q: embedder.embed_queries([q])[0] for q in QUESTIONS}
    batcher = embedder._encoder._batcher
    calls_before = batcher.calls
    together = _concurrently(lambda q: (q, embedder.embed_queries([q + "？"])[0]), QUESTIONS)
    fresh = {q + "？": embedder._encoder.encode([embedder.query_prompt + q + "？"])[0] for q in QUESTIONS}
    for q, vec in together:
        assert np.array_equal(vec, fresh[q + "？"]), q
    assert batcher.calls > calls_before
    assert all(np.array_equal(embedder.embed_queries([q])[0], v) for q, v in alone.items())  # remembered


@pytest.mark.slow
def test_windows_read_together_equal_each_question_read_alone():
    reader = load_reader("")
    rng = np.random.default_rng(7)
    # three windows per question, of the reader's full width (long passages) and of shorter ones
    rows = [[[0, *rng.integers(5, 9000, size=n - 2).tolist(), 2] for n in sizes]
            for sizes in ((192, 192, 192), (192, 192, 192), (150, 120, 150), (150, 150, 90), (60, 60, 60))]
    alone = []
    for r in rows:
        ids = np.full((len(r), max(map(len, r))), 1, np.int64)
        valid = np.zeros_like(ids)
        for k, row in enumerate(r):
            ids[k, : len(row)], valid[k, : len(row)] = row, 1
        alone.append([np.array(o) for o in reader._infer(ids, valid)])
    together = _concurrently(lambda i: (i, reader._logits(rows[i])), list(range(len(rows))))
    for i, (s, e) in together:
        assert np.array_equal(s, alone[i][0]) and np.array_equal(e, alone[i][1]), i


def test_memo_computes_a_key_missed_by_many_threads_at_once_only_once():
    memo, computed = Memo(8), []

    def compute():
        computed.append(1)
        time.sleep(0.2)
        return (np.arange(3),)

    results = _concurrently(lambda _: memo.get("same", compute)[0].tolist(), list(range(6)))
    assert results == [[0, 1, 2]] * 6 and len(computed) == 1


@pytest.mark.slow
def test_threads_asking_for_the_reader_at_once_share_one():
    reader_module._load_reader.cache_clear()  # a first load, as a server's first questions met it
    readers = _concurrently(lambda _: load_reader(""), list(range(4)))
    assert all(r is readers[0] for r in readers)


def test_a_lone_caller_does_not_wait_for_company_and_a_call_right_after_another_threads_does():
    batcher = MicroBatcher(lambda x: [x + 1], name="test", wait_s=0.3)

    def timed() -> float:
        t0 = time.monotonic()
        batcher(np.zeros((1, 2)))
        return time.monotonic() - t0

    alone = [timed(), timed(), timed()]  # one thread, one call after another: nobody to wait for
    with ThreadPoolExecutor(1) as pool:
        after_another_thread = pool.submit(timed).result()
    assert max(alone) < 0.25 <= after_another_thread, (alone, after_another_thread)


def test_a_memo_can_be_read_and_filled_without_computing():
    """``peek`` computes nothing and counts a hit only when remembered; ``put`` keeps at most ``size``, the
    least recently used forgotten; what is handed out is a copy."""
    memo = Memo(2)
    assert memo.peek("a") is None and memo.hits == 0
    memo.put("a", (np.arange(3),))
    memo.put("b", (np.arange(2),))
    (a,) = memo.peek("a")
    a[0] = 99
    assert memo.peek("a")[0].tolist() == [0, 1, 2] and memo.hits == 2
    memo.put("c", (np.zeros(1),))  # "b" is the least recently used now
    assert memo.peek("b") is None and memo.peek("c") is not None and memo.peek("a") is not None
    assert memo.get("a", lambda: (np.ones(1),))[0].tolist() == [0, 1, 2]  # get sees what put kept
