"""The per-process pool of threads for per-chunk CPU work: hashing, compression, CRCs, verification.

hashlib (on inputs of 2 KiB and more) and cramjam release the GIL, so threads
working through batches of chunks use every core without copying a chunk.
Processes lose here: every chunk would be pickled to a worker and its
record pickled back (measured on 4 KiB chunks: 2 worker processes encoded at
about half the speed of 2 threads).  Batches amortise the cost of a
task over many chunks.  Work submitted from a pool thread runs inline, and a
forked child starts threads of its own (``IOPool`` does both).
"""

from __future__ import annotations

import functools
import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import TypeVar

from nbs.io_pool import IOPool

T = TypeVar("T")
R = TypeVar("R")

CPU_THREADS = os.cpu_count() or 1
BATCH_CHUNKS = 256  # about 1 MiB of 4 KiB chunks: big enough that a task's overhead is noise

CPU_POOL = IOPool(CPU_THREADS, "nbs-cpu")


def split(items: Sequence[T], size: int = BATCH_CHUNKS) -> list[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def imap_batches(fn: Callable[[Sequence[T]], R], items: Sequence[T], size: int = BATCH_CHUNKS) -> Iterator[R]:
    """``fn`` of each batch of ``items``, yielded in order as they finish on the pool.

    A few batches run ahead of the consumer (so it can write one while the next
    are encoded) but no more: a slow consumer bounds the memory in flight.  A
    single batch runs in the calling thread: handing it over would only add latency.
    """
    batches = split(items, size)
    if len(batches) <= 1 or CPU_THREADS == 1:
        yield from map(fn, batches)
        return
    waiting = iter(batches)
    running: deque[Future[R]] = deque(CPU_POOL.submit(functools.partial(fn, batch))
                                      for batch in itertools.islice(waiting, 2 * CPU_THREADS))
    try:
        while running:
            result = running.popleft().result()
            for batch in itertools.islice(waiting, 1):
                running.append(CPU_POOL.submit(functools.partial(fn, batch)))
            yield result
    finally:
        for future in running:
            future.cancel()


def map_batches(fn: Callable[[Sequence[T]], R], items: Sequence[T], size: int = BATCH_CHUNKS) -> list[R]:
    """``fn`` of each batch of ``items``, in order; batches run concurrently on the pool."""
    return list(imap_batches(fn, items, size))
