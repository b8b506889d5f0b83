"""A size-bounded cache of parsed table indexes, shared by every store in a process.

Opening a table takes the entry lock for its name, so concurrent opens of the
same table read and parse its index once.  Stores' chunk directories (see
nbs.chunk_directory) are charged to the same budget, and found here by the
stores of one location, which share them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from nbs.chunk_directory import ChunkDirectory
from nbs.named_locks import NamedLocks
from nbs.size_cache import SizeCache
from nbs.table_index import TableIndex


class IndexCache:
    """Table name -> ``TableIndex``, charged 36 bytes per chunk."""

    def __init__(self, max_size: int) -> None:
        self._cache: SizeCache[bytes, TableIndex] = SizeCache(max_size)
        self._locks = NamedLocks()
        self.directories: weakref.WeakValueDictionary[str, ChunkDirectory] = weakref.WeakValueDictionary()

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
        """The cached index of ``name``, loading it once under its entry lock on a miss."""
        key = bytes(name)
        with self._locks.holding(key):
            index = self._cache.get(key)
            if index is None:
                index = load()
                self._cache.add(key, index.memory_size, index)
            return index

    def put_locked(self, name: bytes, index: TableIndex) -> None:
        """Store an index under its entry lock (persist paths)."""
        key = bytes(name)
        with self._locks.holding(key):
            self._cache.add(key, index.memory_size, index)
