"""Read-only access to the daemon's LMDB chunk cache from a client process.

A cache hit costs a few microseconds here, against 70-110 us for a request to
the daemon.  The daemon stays the only writer and the only process that sizes
the map; this side opens the environment with the daemon's map size and
reader-table size, uses one short read transaction per call, and treats any
damaged entry as a miss that it reports so the daemon can drop it.  An LMDB
error (a full reader table, say) is a miss too: the store asks the daemon
instead, and the fast path stays off until it is worth trying again (see
nbsclient.cache_health).

Fork: LMDB forbids using an environment in a forked child, and py-lmdb
refuses to open one twice in a process.  So a fork waits until no read
transaction is open (each holds ``_guard`` for microseconds), and the child
closes its inherited copies before opening its own.  With no transaction
open and none cached (``max_spare_txns=0``), closing in the child touches
no reader slot of the parent's: LMDB frees only slots of the closing pid.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Set
from typing import Any

import lmdb

from nbsclient.cache_health import READ, CacheHealth
from nbsclient.cache_record import CorruptRecordError, visible_chunk

log = logging.getLogger(__name__)


class ReadOnlyCache:
    def __init__(self, info: dict[str, Any]) -> None:
        self.cache_id = str(info["cache_id"])
        self.env = lmdb.open(str(info["path"]), readonly=True, lock=True, create=False, subdir=True,
                             map_size=int(info["map_size"]), max_readers=int(info["max_readers"]),
                             max_dbs=4, readahead=False, max_spare_txns=0)
        self.db = self.env.open_db(b"chunks", create=False)
        self.hits = 0
        self.misses = 0
        self.health = CacheHealth(log, f"fast path to the daemon's cache {info['path']}")
        self._corrupt: list[bytes] = []
        self._lock = threading.Lock()
        self._guard = threading.Lock()  # held while a read transaction is open (see the module notes)

    @classmethod
    def try_open(cls, info: Any) -> ReadOnlyCache | None:
        """This process's handle on the cache the daemon's hello describes (``info``), or None when there is
        none (``info`` is not a map) or it cannot be read here.

        LMDB allows one open of an environment per process, so every store of
        the process shares one handle (kept until the process ends).
        """
        if not isinstance(info, dict) or not info:
            return None
        key = (str(info.get("path")), str(info.get("cache_id")))
        with _OPEN_LOCK:
            cache = _OPEN.get(key)
            if cache is None:
                try:
                    cache = cls(info)
                except (lmdb.Error, OSError, KeyError, TypeError, ValueError) as err:
                    log.info("daemon cache not readable here (%s); using requests only", err)
                    return None
                for old_key in [k for k in _OPEN if k[0] == key[0]]:
                    _OPEN.pop(old_key).env.close()  # the daemon recreated the cache
                _OPEN[key] = cache
            return cache

    def get_many(self, addrs: Iterable[bytes], view: Set[bytes], found: dict[bytes, bytes]) -> list[bytes]:
        """Serve what the cache holds for this view into ``found``; return the rest."""
        addrs = list(addrs)
        if not self.health.usable(READ):
            return addrs
        missing: list[bytes] = []
        try:
            with self._guard:
                txn = self.env.begin(db=self.db, buffers=True)
                try:
                    get = txn.get
                    for a in addrs:
                        value = get(a)
                        chunk = None
                        if value is not None:
                            try:
                                chunk = visible_chunk(a, value, view)
                            except CorruptRecordError:
                                self._note_corrupt(a)
                        if chunk is None:
                            missing.append(a)
                        else:
                            found[a] = chunk
                finally:
                    txn.abort()
        except lmdb.Error as err:
            self.health.failed(READ, err)
            return [a for a in addrs if a not in found]
        self.health.succeeded(READ)
        self.hits += len(found)
        self.misses += len(missing)
        return missing

    def get(self, addr: bytes, view: Set[bytes]) -> bytes | None:
        """One chunk, or None (the hot path of a cache hit: one short read transaction)."""
        if not self.health.usable(READ):
            return None
        chunk = None
        try:
            with self._guard:
                txn = self.env.begin(db=self.db, buffers=True)
                try:
                    value = txn.get(addr)
                    if value is not None:
                        try:
                            chunk = visible_chunk(addr, value, view)
                        except CorruptRecordError:
                            self._note_corrupt(addr)
                finally:
                    txn.abort()
        except lmdb.Error as err:
            self.health.failed(READ, err)
            return None
        self.health.succeeded(READ)
        if chunk is None:
            self.misses += 1
        else:
            self.hits += 1
        return chunk

    def _note_corrupt(self, addr: bytes) -> None:
        with self._lock:
            self._corrupt.append(bytes(addr))

    def take_report(self) -> dict[str, Any]:
        """Counters and damaged addresses since the last report (for the daemon's figures)."""
        with self._lock:
            corrupt, self._corrupt = self._corrupt, []
        report = {"hits": self.hits, "misses": self.misses, "corrupt": corrupt}
        self.hits = self.misses = 0
        return report



_OPEN: dict[tuple[str, str], ReadOnlyCache] = {}
_OPEN_LOCK = threading.Lock()


def _quiesce_before_fork() -> None:
    """Wait until no read transaction is open, and keep it so across the fork."""
    _OPEN_LOCK.acquire()
    for cache in _OPEN.values():
        cache._guard.acquire()


def _resume_in_parent() -> None:
    for cache in _OPEN.values():
        cache._guard.release()
    _OPEN_LOCK.release()


def _close_inherited_in_child() -> None:
    """The child opens its own environments on demand; the parent's copies are closed here."""
    global _OPEN_LOCK
    for cache in _OPEN.values():
        cache._guard.release()
        try:
            cache.env.close()
        except lmdb.Error as err:
            log.warning("closing the inherited cache handle after fork failed: %s", err)
    _OPEN.clear()
    _OPEN_LOCK = threading.Lock()


os.register_at_fork(before=_quiesce_before_fork, after_in_parent=_resume_in_parent,
                    after_in_child=_close_inherited_in_child)
