"""A size-bounded cache of parsed table indexes, shared by every store in a process.

Concurrent opens of one table read and parse its index once: the first
caller loads it and the others wait for that load's outcome, its index or its
exception (the same instance, as ``concurrent.futures`` hands one failure to
every waiter).  Sharing the failure matters when the table is slow to fail (S3
unreachable: each attempt is bounded only by the client's timeouts and
retries); if every waiter ran a load of its own in turn, the n-th would fail
after n such attempts, holding a thread all along.  A caller that arrives
after a load ended starts a new one, so a failure is never cached.  Waits are
bounded by the loader's own bounded I/O.

Stores' chunk directories (see nbs.chunk_directory) are charged to the same
budget, and found here by the stores of one location, which share them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future

from nbs.chunk_directory import ChunkDirectory
from nbs.forksafe import register
from nbs.size_cache import SizeCache
from nbs.table_index import TableIndex


class IndexCache:
    """Table name -> ``TableIndex``, charged 36 bytes per chunk."""

    def __init__(self, max_size: int) -> None:
        self._cache: SizeCache[bytes, TableIndex] = SizeCache(max_size)
        self._loading: dict[bytes, Future[TableIndex]] = {}
        self._loading_lock = threading.Lock()
        self.directories: weakref.WeakValueDictionary[str, ChunkDirectory] = weakref.WeakValueDictionary()
        register(self)

    def after_fork_in_child(self) -> None:
        """Loads the parent's other threads were running never finish in a child: forget them."""
        self._loading = {}
        self._loading_lock = threading.Lock()

    @property
    def max_size(self) -> int:
        return self._cache.max_size

    @property
    def total_size(self) -> int:
        return self._cache.total_size

    def __len__(self) -> int:
        return len(self._cache)

    def charge(self, delta: int) -> None:
        """Count ``delta`` bytes held outside the cache (chunk directories) against its budget."""
        self._cache.reserve(delta)

    def get(self, name: bytes) -> TableIndex | None:
        return self._cache.get(bytes(name))

    def put(self, name: bytes, index: TableIndex) -> None:
        self._cache.add(bytes(name), index.memory_size, index)

    def get_or_load(self, name: bytes, load: Callable[[], TableIndex]) -> TableIndex:
        """The cached index of ``name``; on a miss, the outcome of the one load in flight for it."""
        key = bytes(name)
        index = self._cache.get(key)
        if index is not None:
            return index
        mine: Future[TableIndex] = Future()
        with self._loading_lock:
            pending = self._loading.setdefault(key, mine)
        if pending is not mine:
            return pending.result()
        try:
            index = self._cache.get(key)  # a load that ended between our miss and our claim
            if index is None:
                index = load()
                self._cache.add(key, index.memory_size, index)
        except BaseException as error:
            self._settle(key)
            mine.set_exception(error)
            raise
        self._settle(key)
        mine.set_result(index)
        return index

    def _settle(self, key: bytes) -> None:
        """End ``key``'s load: callers from now on find the index cached, or load again after a failure."""
        with self._loading_lock:
            self._loading.pop(key, None)
