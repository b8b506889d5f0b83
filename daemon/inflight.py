"""Deduplication of concurrent backend fetches.

When several requests miss the cache on the same chunk at once, the first
claims it and fetches; the others wait for that result instead of reading the
backend again.  A waiter uses the result only if the table that served it is
in the waiter's own view; otherwise it fetches for itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future

Result = tuple[bytes, bytes] | None  # (chunk, table name) or None when not found


class InflightFetches:
    def __init__(self) -> None:
        self._pending: dict[bytes, Future[Result]] = {}
        self._lock = threading.Lock()
        self.shared = 0  # chunks a request received from another request's fetch

    def claim(self, addrs: Iterable[bytes]) -> tuple[list[bytes], dict[bytes, Future[Result]]]:
        """Split ``addrs`` into those this caller must fetch and those already being fetched."""
        mine: list[bytes] = []
        waiting: dict[bytes, Future[Result]] = {}
        with self._lock:
            for a in addrs:
                key = bytes(a)
                future = self._pending.get(key)
                if future is None:
                    self._pending[key] = Future()
                    mine.append(a)
                else:
                    waiting[a] = future
        return mine, waiting

    def finish(self, mine: Iterable[bytes], found: Mapping[bytes, bytes], origins: Mapping[bytes, bytes]) -> None:
        with self._lock:
            futures = [(a, self._pending.pop(bytes(a))) for a in mine]
        for a, future in futures:
            chunk, origin = found.get(a), origins.get(a)
            future.set_result((chunk, bytes(origin)) if chunk is not None and origin is not None else None)

    def fail(self, mine: Iterable[bytes], err: BaseException) -> None:
        with self._lock:
            futures = [self._pending.pop(bytes(a)) for a in mine]
        for future in futures:
            future.set_exception(err)

    def __len__(self) -> int:
        return len(self._pending)
