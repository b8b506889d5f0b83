"""Cache fills behind the reply: deferred, batched, bounded, and never leaving a claim held."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from nbsd.cache import ChunkCache
from nbsd.cache_filler import CacheFiller, Entry

TABLE = b"t" * 20


def entries(n: int, size: int = 100, first: int = 0) -> list[Entry]:
    return [(bytes([first + i]) * 20, b"c" * size, TABLE) for i in range(n)]


class HeldCache:
    """A cache whose writes each wait for a permit (``allow``), or fail with ``error``, recording who wrote what."""

    def __init__(self) -> None:
        self.permits = threading.Semaphore(0)
        self.entered = threading.Event()
        self.writers: list[str] = []  # the threads that began a write, in order
        self.writes: list[tuple[str, list[Entry]]] = []
        self.error: Exception | None = None

    def allow(self, writes: int = 100) -> None:
        self.permits.release(writes)

    def put_many(self, items: Iterable[Entry]) -> None:
        items = list(items)
        self.writers.append(threading.current_thread().name)
        self.entered.set()
        assert self.permits.acquire(timeout=10)
        self.writes.append((threading.current_thread().name, items))
        if self.error is not None:
            raise self.error


def filler_over(cache: HeldCache, max_pending_bytes: int = 1 << 20) -> CacheFiller:
    return CacheFiller(cache, max_pending_bytes)  # type: ignore[arg-type]


def writing_one() -> tuple[HeldCache, CacheFiller]:
    """A filler whose thread is writing ``entries(1)``, held up until the cache allows it."""
    cache = HeldCache()
    filler = filler_over(cache)
    filler.fill(entries(1), lambda: None)
    assert cache.entered.wait(5)
    return cache, filler


def test_a_fill_is_written_after_it_returns_and_then_released() -> None:
    cache, released = HeldCache(), threading.Event()
    filler = filler_over(cache)
    filler.fill(entries(3), released.set)
    assert filler.pending_bytes == 300 and not released.is_set()  # returned with the write held up
    assert not filler.drain(0.05)
    cache.allow()
    assert filler.drain(5) and released.is_set()
    assert cache.writes == [("nbsd-cache-fill", entries(3))]
    assert (filler.pending_bytes, filler.deferred, filler.inline) == (0, 1, 0)
    filler.close(5)


def test_fills_queued_behind_a_write_go_in_one_transaction() -> None:
    cache, filler = writing_one()
    released: list[int] = []
    filler.fill(entries(2, first=10), lambda: released.append(2))
    filler.fill(entries(2, first=20), lambda: released.append(3))
    cache.allow()
    assert filler.drain(5)
    assert [items for _, items in cache.writes] == [entries(1), entries(2, first=10) + entries(2, first=20)]
    assert released == [2, 3]
    filler.close(5)


def test_drain_waits_for_the_fills_queued_before_it_not_after() -> None:
    cache, filler = writing_one()
    drained: list[bool] = []
    waiter = threading.Thread(target=lambda: drained.append(filler.drain(5)))
    waiter.start()
    deadline = time.monotonic() + 5
    while not filler._cond._waiters:  # type: ignore[attr-defined]  # CPython's Condition: the drain is waiting
        assert time.monotonic() < deadline
        time.sleep(0.001)
    filler.fill(entries(2, first=10), lambda: None)  # queued after the drain began
    cache.allow(1)  # the first fill only; the second stays held
    waiter.join(5)
    assert drained == [True] and filler.pending_bytes == 200
    cache.allow(1)
    assert filler.drain(5) and filler.pending_bytes == 0
    filler.close(5)


def test_past_the_bound_the_caller_fills_itself() -> None:
    cache = HeldCache()
    filler = filler_over(cache, max_pending_bytes=250)
    filler.fill(entries(2), lambda: None)  # 200 bytes queued, held up
    done = threading.Event()
    inline = threading.Thread(target=filler.fill, args=(entries(1, first=5), done.set), name="request")
    inline.start()  # 300 would pass the bound: the request writes its own fill
    deadline = time.monotonic() + 5
    while "request" not in cache.writers:  # allowed any sooner, the first fill could be done and make room
        assert time.monotonic() < deadline
        time.sleep(0.001)
    cache.allow()
    inline.join(5)
    assert done.is_set() and ("request", entries(1, first=5)) in cache.writes
    assert filler.drain(5)
    assert (filler.deferred, filler.inline) == (1, 1)
    filler.close(5)


def test_a_failing_write_still_releases_and_the_filler_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    cache = HeldCache()
    cache.allow()
    cache.error = RuntimeError("a bug in the cache")
    filler = filler_over(cache)
    released: list[int] = []
    with caplog.at_level(logging.ERROR, logger="nbsd.cache_filler"):
        filler.fill(entries(1), lambda: released.append(1))
        assert filler.drain(5)
    assert released == [1] and "cache fill failed" in caplog.text
    cache.error = None
    filler.fill(entries(1, first=9), lambda: released.append(2))
    assert filler.drain(5) and released == [1, 2]
    filler.close(5)


def test_close_writes_what_is_queued_and_later_fills_run_on_the_caller() -> None:
    cache = HeldCache()
    filler = filler_over(cache)
    filler.fill(entries(2), lambda: None)
    cache.allow()
    filler.close(5)
    assert filler.pending_bytes == 0 and cache.writes[0][1] == entries(2)
    filler.fill(entries(1, first=7), lambda: None)
    assert cache.writes[-1] == (threading.current_thread().name, entries(1, first=7))
    assert filler.inline == 1


def test_fills_land_in_a_real_cache(tmp_path: Path) -> None:
    cache = ChunkCache(str(tmp_path), 16 << 20)
    filler = CacheFiller(cache)
    released = threading.Event()
    filler.fill(entries(5, size=4096), released.set)
    assert filler.drain(5) and released.is_set()
    assert cache.entries() == 5 and cache.counters.inserts == 5
    filler.close(5)
    cache.close()
