"""A least-recently-used cache bounded by the total size of its entries (Go's ``sizecache``)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar
from collections.abc import Hashable

from nbs.forksafe import register

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SizeCache(Generic[K, V]):
    """Entries carry a size; adding past ``max_size`` evicts from the LRU end.

    An entry larger than the whole cache is ignored; ``add`` of a present key only
    bumps it (the value is not replaced), ``put`` replaces it.  ``on_expire`` runs for evicted keys.
    Bytes ``reserve``d for memory kept outside the cache count against the
    budget too, so entries make room for them.
    """

    def __init__(self, max_size: int, on_expire: Callable[[K, V], None] | None = None) -> None:
        self.max_size = max_size
        self._on_expire = on_expire
        self._entries: OrderedDict[K, tuple[int, V]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()
        register(self)

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    @property
    def total_size(self) -> int:
        return self._total

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def keys(self) -> list[K]:
        with self._lock:
            return list(self._entries)

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def add(self, key: K, size: int, value: V) -> bool:
        """Insert ``key``; returns False when it was too large to keep.  A present key is only bumped."""
        return self._insert(key, size, value, replace=False)

    def put(self, key: K, size: int, value: V) -> bool:
        """Insert ``key`` or replace its value (an entry too large to keep only removes the old one)."""
        return self._insert(key, size, value, replace=True)

    def _insert(self, key: K, size: int, value: V, replace: bool) -> bool:
        with self._lock:
            if replace:
                self._remove(key)
            if size > self.max_size:
                return False
            if key in self._entries:
                self._entries.move_to_end(key)
                return True
            self._entries[key] = (size, value)
            self._total += size
            expired = self._evict()
        self._expired(expired)
        return True

    def reserve(self, delta: int) -> None:
        """Count ``delta`` more bytes (negative: fewer) held outside the cache, evicting entries to fit."""
        with self._lock:
            self._total += delta
            expired = self._evict()
        self._expired(expired)

    def _evict(self) -> list[tuple[K, V]]:
        expired: list[tuple[K, V]] = []
        while self._total > self.max_size and self._entries:
            old_key, (old_size, old_value) = self._entries.popitem(last=False)
            self._total -= old_size
            expired.append((old_key, old_value))
        return expired

    def _expired(self, expired: list[tuple[K, V]]) -> None:
        if self._on_expire is not None:
            for old_key, old_value in expired:
                self._on_expire(old_key, old_value)

    def drop(self, key: K) -> None:
        """Remove ``key`` without calling ``on_expire``."""
        with self._lock:
            self._remove(key)

    def _remove(self, key: K) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._total -= entry[0]
