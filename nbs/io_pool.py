"""Threads for concurrent AWS requests, and the rate limiter that bounds them.

S3 and DynamoDB answer in milliseconds, so batched reads, table opens and
multipart parts run concurrently on a bounded pool.  Work submitted from a
pool thread runs inline instead, so nested use can never deadlock the pool.
The threads are started on first use in each process: a forked child gets
its own pool, never the parent's (which has no threads there).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from typing import TypeVar

from nbs.forksafe import ProcessLocal, Semaphore

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_IO_THREADS = 32


def limited(rate_limit: Semaphore | None) -> AbstractContextManager[object]:
    """Hold one slot of ``rate_limit`` (Go's ``rl``) for a request; no limit when None."""
    return rate_limit if rate_limit is not None else nullcontext()


class IOPool:
    """A bounded thread pool for blocking AWS requests."""

    def __init__(self, threads: int = DEFAULT_IO_THREADS, name: str = "nbs-aws") -> None:
        self.threads = threads
        self._local = threading.local()
        self._executor = ProcessLocal(
            lambda: ThreadPoolExecutor(threads, thread_name_prefix=name, initializer=self._mark))

    def _mark(self) -> None:
        self._local.in_pool = True

    def _inline(self) -> bool:
        return bool(getattr(self._local, "in_pool", False))

    def submit(self, fn: Callable[[], R]) -> Future[R]:
        """Run ``fn`` in the background (inline, already finished, when called from a pool thread)."""
        if not self._inline():
            return self._executor.get().submit(fn)
        done: Future[R] = Future()
        try:
            done.set_result(fn())
        except BaseException as err:  # noqa: BLE001 - delivered through the future like a pool failure
            done.set_exception(err)
        return done

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[fn(x) for x in items]`` run concurrently; failures behave as in ``all``."""
        return self.all([functools.partial(fn, item) for item in items])

    def all(self, tasks: Iterable[Callable[[], R]]) -> list[R]:
        """Run every task; on the first failure cancel what has not started, wait, and raise it."""
        tasks = list(tasks)
        if len(tasks) <= 1 or self._inline():
            return [task() for task in tasks]
        executor = self._executor.get()
        futures = [executor.submit(task) for task in tasks]
        finish_all(futures)
        return [f.result() for f in futures]

    def shutdown(self) -> None:
        executor = self._executor.peek()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def finish_all(futures: Sequence[Future[R]]) -> None:
    """Wait for ``futures``; after the first failure cancel the pending ones and wait for the running ones.

    Returns normally only if every future succeeded; otherwise raises the first failure, at a
    point where no task is still running (so a multipart upload can be aborted safely).
    """
    _, pending = wait(futures, return_when=FIRST_EXCEPTION)
    for f in pending:
        f.cancel()
    wait(pending)
    for f in futures:
        err = None if f.cancelled() else f.exception()
        if err is not None:
            raise err
