"""Cache fills behind the reply: a cold read answers its client first and fills the LMDB cache after.

Filling the cache is the largest part of a cold read through nbsd (a 4 KiB
chunk takes two LMDB pages, written through the page cache: about 190 ms per
100 MB, of some 650). On a thread of its own it overlaps the client's handling
of the reply and the daemon's reading of the next request's chunks.

Fills queued while one runs go in one write transaction.  The bytes waiting
are bounded: past the bound a request fills the cache itself, as it did before
fills were deferred, so a burst of cold reads slows down rather than growing
the daemon's memory.  Whoever defers a fill keeps its chunks claimed until it
is done (``then``), so a request for them meanwhile is served from the fetch's
result instead of reading the store again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from nbsd.cache import ChunkCache

log = logging.getLogger(__name__)

MAX_PENDING_BYTES = 32 << 20
IDLE_WAIT_S = 1.0  # how often an idle filler looks whether it is closed

Entry = tuple[bytes, bytes, bytes]  # (address, chunk, table), as ChunkCache.put_many takes them


@dataclass
class _Fill:
    entries: list[Entry]
    size: int
    then: Callable[[], None]


class CacheFiller:
    def __init__(self, cache: ChunkCache, max_pending_bytes: int = MAX_PENDING_BYTES) -> None:
        self.cache = cache
        self.max_pending_bytes = max_pending_bytes
        self.pending_bytes = 0  # chunk bytes queued or being written
        self.deferred = 0  # fills queued to be done behind the reply
        self._written = 0  # of those, how many are done: they are written in the order queued
        self.inline = 0  # fills done by the request itself: the queue was full, or the filler closed
        self._queue: list[_Fill] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def fill(self, entries: list[Entry], then: Callable[[], None]) -> None:
        """Put ``entries`` in the cache, then call ``then``: later on the filler's thread if there is room in
        the queue, else now, on the caller's."""
        size = sum(len(chunk) for _, chunk, _ in entries)
        with self._cond:
            queued = not self._closed and self.pending_bytes + size <= self.max_pending_bytes
            if queued:
                self._queue.append(_Fill(entries, size, then))
                self.pending_bytes += size
                self.deferred += 1
                self._start()
                self._cond.notify()
            else:
                self.inline += 1
        if not queued:
            _write(self.cache, [_Fill(entries, size, then)])

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the fills queued so far to be written (not those queued meanwhile,
        which a steady stream of cold reads would never let end); whether they were."""
        deadline = time.monotonic() + timeout
        with self._cond:
            queued = self.deferred
            while self._written < queued:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float) -> None:
        """Write what is queued (waiting up to ``timeout`` seconds) and stop; later fills run on the caller."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if not self.drain(timeout):
            log.warning("cache fills still pending after %.0f s at shutdown; their chunks stay uncached", timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def _start(self) -> None:
        """Start the filler thread on first use (caller holds the condition)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="nbsd-cache-fill", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait(IDLE_WAIT_S)
                if not self._queue:
                    return  # closed and nothing left
                batch, self._queue = self._queue, []
            _write(self.cache, batch)
            with self._cond:
                self.pending_bytes -= sum(f.size for f in batch)
                self._written += len(batch)
                self._cond.notify_all()


def _write(cache: ChunkCache, fills: list[_Fill]) -> None:
    """Write ``fills`` in one transaction, then call each one's ``then``, whatever happened to the write: the
    cache degrades on LMDB errors itself, and anything else is a bug to log, not to leave claims held for."""
    try:
        cache.put_many(entry for f in fills for entry in f.entries)
    except Exception:
        log.exception("cache fill failed; its chunks stay uncached")
    finally:
        for f in fills:
            f.then()
