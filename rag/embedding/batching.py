"""Micro-batching of small model calls: concurrent questions share one OpenVINO call, with the same bits.

A server answering many questions at once calls the embedder (one question's vector) and the reader
(three windows) from many request threads. Run one by one, each small call pays the model's fixed
cost (thread wake-ups, weights streamed through the cache) and the calls fight over the cores.
``MicroBatcher`` gives each model one worker thread: a caller queues its padded input and waits; the
worker runs every queued input *of the same width* as one call, then splits the output rows back.

Same width only, because that keeps the answer bit for bit what it is when asked alone: OpenVINO's
CPU kernels give each row the same result whatever rows sit beside it (checked for both networks in
tests/embedding/test_batching.py), but a row padded wider comes out different in the last bits.

``INFERENCE`` is the one lock every worker takes around its model call: a process runs one network at
a time, on all its cores (the compiled models' LATENCY hint), instead of two networks each spreading
threads over the same two cores.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

INFERENCE = threading.Lock()  # one model call at a time in this process: see the module docstring
BUSY_S = 0.05  # a call this soon after another thread's waits ``wait_s`` for others; a lone caller does not


@dataclass
class _Job:
    inputs: tuple[np.ndarray, ...]  # each (rows, width, ...); the first one's width is the batching key
    done: threading.Event = field(default_factory=threading.Event)
    outputs: tuple[np.ndarray, ...] | None = None
    error: BaseException | None = None
    busy: bool = False  # another call came shortly before this one: more may be on their way

    @property
    def rows(self) -> int:
        return int(self.inputs[0].shape[0])

    @property
    def width(self) -> int:
        return int(self.inputs[0].shape[1])


class MicroBatcher:
    """``batcher(*inputs)`` returns ``run(*inputs)``'s outputs, computed in one call with the inputs of the
    same width that other threads queued meanwhile. ``run`` takes arrays whose first axis is the row,
    returns arrays whose first axis is the row; it runs on the batcher's worker thread only.

    ``wait_s`` is how long the worker waits after the first input for others to join, when others are
    queued or another thread called within ``BUSY_S`` before (one caller, a command or ``rag eval`` asking
    one question after another, never waits); ``max_rows`` caps a call's rows.
    """

    def __init__(self, run: Callable[..., Sequence[np.ndarray]], *, name: str, max_rows: int = 32,
                 wait_s: float = 0.002) -> None:
        self._run, self.name, self.max_rows, self.wait_s = run, name, max_rows, wait_s
        self._pending: list[_Job] = []
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._pid = os.getpid()
        self._last_call, self._last_thread = float("-inf"), 0
        self.calls = 0  # model calls made, and the rows they held (for bench/ and the tests)
        self.rows = 0

    def __call__(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        job = _Job(tuple(inputs))
        with self._cond:
            now, me = time.monotonic(), threading.get_ident()
            job.busy = now - self._last_call < BUSY_S and me != self._last_thread  # another thread just called
            self._last_call, self._last_thread = now, me
            self._start_worker()
            self._pending.append(job)
            self._cond.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.outputs is not None
        return job.outputs

    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive() or self._pid != os.getpid():  # a forked child has none
            self._pid = os.getpid()
            self._worker = threading.Thread(target=self._loop, name=f"batcher-{self.name}", daemon=True)
            self._worker.start()

    def _take(self) -> list[_Job]:
        """The oldest queued job and the queued jobs of its width, up to ``max_rows`` rows in all."""
        with self._cond:
            while not self._pending:
                self._cond.wait()
        with self._cond:
            others = len(self._pending) > 1 or self._pending[0].busy
        if self.wait_s > 0 and others:  # a lone question (a command, a quiet server) does not wait for company
            time.sleep(self.wait_s)  # others asking at the same moment join this call
        with self._cond:
            width, rows = self._pending[0].width, 0
            batch, rest = [], []
            for job in self._pending:
                if job.width == width and (not batch or rows + job.rows <= self.max_rows):
                    batch.append(job)
                    rows += job.rows
                else:
                    rest.append(job)
            self._pending = rest
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            try:
                joined = [np.concatenate(parts) if len(batch) > 1 else parts[0]
                          for parts in zip(*(job.inputs for job in batch))]
                with INFERENCE:
                    outputs = [np.array(o) for o in self._run(*joined)]  # a copy: the next call reuses the buffers
                self.calls += 1
                self.rows += len(joined[0])
                start = 0
                for job in batch:
                    job.outputs = tuple(o[start : start + job.rows] for o in outputs)
                    start += job.rows
            except BaseException as exc:  # the callers raise it; the worker lives on for the next ones
                for job in batch:
                    job.error = exc
            finally:
                for job in batch:
                    job.done.set()


class Memo:
    """A small thread-safe LRU of computed arrays, for work a server repeats: the same question asked
    again, the same passages read again. Keys are whatever decides the result bit for bit. Threads that
    miss the same key at once compute it once: the others wait for the first (a burst of one question)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, tuple[np.ndarray, ...]] = OrderedDict()
        self._computing: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def peek(self, key: Hashable) -> tuple[np.ndarray, ...] | None:
        """The arrays for ``key`` (copies) when remembered, else None; computes nothing (for callers that
        compute their misses together, then ``put`` them)."""
        with self._lock:
            return self._hit(key)

    def put(self, key: Hashable, arrays: tuple[np.ndarray, ...]) -> None:
        with self._lock:
            self._keep(key, tuple(arrays))

    def get(self, key: Hashable, compute: Callable[[], tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
        """The arrays for ``key`` (copies: callers may change theirs), computed on a miss."""
        while True:
            with self._lock:
                found = self._hit(key)
                if found is not None:
                    return found
                running = self._computing.get(key)
                if running is None:
                    running = self._computing[key] = threading.Event()
                    self.misses += 1
                    break
            running.wait()  # another thread computes it; if that failed, the loop computes it here
        try:
            found = tuple(compute())
            with self._lock:
                self._keep(key, found)
        finally:
            with self._lock:
                del self._computing[key]
            running.set()
        return tuple(a.copy() for a in found)

    def _hit(self, key: Hashable) -> tuple[np.ndarray, ...] | None:
        """Under the lock: copies of ``key``'s arrays, counted as a hit, or None."""
        found = self._items.get(key)
        if found is None:
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return tuple(a.copy() for a in found)

    def _keep(self, key: Hashable, arrays: tuple[np.ndarray, ...]) -> None:
        """Under the lock: remember ``arrays``, forgetting the least recently used past ``size``."""
        self._items[key] = arrays
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


__all__ = ["INFERENCE", "Memo", "MicroBatcher"]
