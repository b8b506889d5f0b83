"""Deduplication of concurrent backend fetches.

When several requests miss the cache on the same chunk at once, the first
claims it and fetches; the others wait for that result instead of reading the
backend again.  A waiter uses the result only if the table that served it is
in the waiter's own view; otherwise it fetches for itself.

A fetch has one future for all the addresses it claimed, completed with the
fetch's whole result: a future per address cost 2.6 us per chunk to make and
complete (65 ms per 100 MB of cold reads), and a waiter now waits once per
fetch it shares, not once per chunk.

The result is served as soon as it is read; the claims stay until the fetcher
releases them, after its chunks are in the cache, so a request that claims
them meanwhile takes them from the result instead of reading them again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass


@dataclass(frozen=True)
class Fetched:
    """What one fetch read: chunks and the table each came from, keyed by address."""

    found: Mapping[bytes, bytes]
    origins: Mapping[bytes, bytes]

    def served(self, addr: bytes) -> tuple[bytes, bytes] | None:
        """``(chunk, table name)`` if the fetch found ``addr`` in a table, else None (absent, or found only in
        a memtable, which names no table)."""
        chunk, origin = self.found.get(addr), self.origins.get(addr)
        return None if chunk is None or origin is None else (chunk, bytes(origin))


Shared = list[tuple["Future[Fetched]", list[bytes]]]  # another fetch's future, and the addresses awaited from it


class InflightFetches:
    def __init__(self) -> None:
        self._pending: dict[bytes, Future[Fetched]] = {}
        self._lock = threading.Lock()

    def claim(self, addrs: Iterable[bytes]) -> tuple[list[bytes], Shared]:
        """Split ``addrs`` into those this caller must fetch (then ``serve`` and ``release``, or ``fail``) and those
        already being fetched, grouped by the fetch that has them.  An address asked twice is claimed once."""
        mine: list[bytes] = []
        theirs: dict[Future[Fetched], list[bytes]] = {}
        fetch: Future[Fetched] = Future()
        with self._lock:
            for a in dict.fromkeys(addrs):
                future = self._pending.setdefault(a, fetch)
                if future is fetch:
                    mine.append(a)
                else:
                    theirs.setdefault(future, []).append(a)
        return mine, list(theirs.items())

    def serve(self, mine: list[bytes], found: Mapping[bytes, bytes], origins: Mapping[bytes, bytes]) -> None:
        """Hand the fetch's result to those waiting for it, and to those who claim its addresses until
        ``release``."""
        if mine:
            with self._lock:
                future = self._pending[mine[0]]
            future.set_result(Fetched(found, origins))

    def release(self, mine: list[bytes]) -> None:
        """Forget the claims (once their chunks are in the cache), so a later miss fetches again."""
        self._release(mine)

    def fail(self, mine: list[bytes], err: BaseException) -> None:
        self._release(mine).set_exception(err)

    def _release(self, mine: list[bytes]) -> Future[Fetched]:
        """Forget the claims, so a later miss fetches again (a result is never kept); their future."""
        if not mine:
            return Future()  # claimed nothing: no one waits on it
        with self._lock:
            for a in mine:
                future = self._pending.pop(a)
        return future

    def __len__(self) -> int:
        return len(self._pending)
