"""The I/O pool: concurrency, nested use without deadlock, fail-fast with no task left running."""

from __future__ import annotations

import threading
import time

import pytest

from nbs.io_pool import IOPool


def test_map_runs_concurrently_and_keeps_order() -> None:
    pool = IOPool(4)
    barrier = threading.Barrier(4, timeout=5)

    def task(i: int) -> int:
        barrier.wait()  # only passes if all four run at once
        return i * i

    assert pool.map(task, range(4)) == [0, 1, 4, 9]
    pool.shutdown()


def test_nested_use_runs_inline_instead_of_deadlocking() -> None:
    pool = IOPool(1)
    outer = pool.submit(lambda: pool.map(lambda i: i + 1, [1, 2, 3]))
    assert outer.result(timeout=5) == [2, 3, 4]
    inner = pool.submit(lambda: pool.submit(lambda: threading.current_thread().name).result())
    assert inner.result(timeout=5).startswith("nbs-aws")
    pool.shutdown()


def test_first_failure_waits_for_running_tasks_and_cancels_the_rest() -> None:
    pool = IOPool(2)
    finished: list[str] = []

    def slow() -> None:
        time.sleep(0.2)
        finished.append("slow")

    def fail() -> None:
        raise RuntimeError("boom")

    def never() -> None:
        finished.append("never")

    with pytest.raises(RuntimeError, match="boom"):
        pool.all([slow, fail, *[never] * 20])
    assert "slow" in finished and finished.count("never") < 20
    pool.shutdown()
