"""The per-process pool of threads for per-chunk CPU work: hashing, compression, CRCs, verification.

hashlib (on inputs of 2 KiB and more) and cramjam release the GIL, so threads
working through batches of chunks use every core without copying a chunk.
Processes lose here: every chunk would be pickled to a worker and its
record pickled back (measured on 4 KiB chunks: 2 worker processes encode at
about a third of the speed of 2 threads).  Batches amortise the cost of a
task over many chunks.  Work submitted from a pool thread runs inline, and a
forked child starts threads of its own (``IOPool`` does both).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
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


def map_batches(fn: Callable[[Sequence[T]], R], items: Sequence[T], size: int = BATCH_CHUNKS) -> list[R]:
    """``fn`` of each batch of ``items``, in order; batches run concurrently on the pool.

    A single batch runs in the calling thread: handing it over would only add latency.
    """
    batches = split(items, size)
    if len(batches) <= 1 or CPU_THREADS == 1:
        return [fn(batch) for batch in batches]
    return CPU_POOL.map(fn, batches)
