"""Serialises manifest I/O within a process and short-circuits doomed updates.

Stores sharing a manifest name share one ``ManifestManager`` state (cache and
locks): commits to the same store serialise on the update lock, fetches wait
for writes in progress, and an update whose expected lock is already known to
be stale fails without any I/O (NBS-FORMAT.md section 5.6).

A local store's ``LOCK`` held by a stopped process makes a manifest read or
write fail after a bounded wait (``StoreLockedError``).  Callers queued behind
that attempt on these in-process locks share its failure instead of each
starting a wait of their own: otherwise the n-th of them would fail only after
n waits, each holding a thread (one of nbsd's pool) all along.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from nbs.addr import Addr
from nbs.errors import StoreLockedError
from nbs.forksafe import register
from nbs.manifest import Hook, Manifest, ManifestContents
from nbs.manifest_cache import ManifestCache
from nbs.named_locks import NamedLocks
from nbs.stats import Stats

_T = TypeVar("_T")


class LockFailures:
    """The latest ``StoreLockedError`` met per manifest name, and when it ended the wait."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[StoreLockedError, int]] = {}
        self._lock = threading.Lock()
        register(self)

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def record(self, name: str, error: StoreLockedError) -> None:
        with self._lock:
            self._last[name] = (error, time.monotonic_ns())

    def clear(self, name: str) -> None:
        """Forget ``name``'s failure once its manifest was read or written again (keeps the map small)."""
        with self._lock:
            self._last.pop(name, None)

    def since(self, name: str, entered: int) -> StoreLockedError | None:
        """A fresh copy of ``name``'s failure if it ended after ``entered`` (so it happened while we queued)."""
        with self._lock:
            entry = self._last.get(name)
        if entry is None or entry[1] <= entered:
            return None
        error = entry[0]
        return StoreLockedError(error.path, error.waited, error.holder)


@dataclass
class ManifestLocks:
    """Fetch locks, update locks and the latest lock failures, keyed by manifest name."""

    fetch: NamedLocks
    update: NamedLocks
    failures: LockFailures

    @classmethod
    def create(cls) -> ManifestLocks:
        return cls(NamedLocks(), NamedLocks(), LockFailures())


class ManifestManager:
    def __init__(self, manifest: Manifest, cache: ManifestCache, locks: ManifestLocks) -> None:
        self.manifest = manifest
        self.cache = cache
        self.locks = locks

    def name(self) -> str:
        return self.manifest.name()

    def lock_for_update(self) -> None:
        """Take the update lock; raise instead if this store's manifest I/O failed on its LOCK while we queued."""
        name = self.name()
        entered = time.monotonic_ns()
        self.locks.update.lock(name)
        failed = self.locks.failures.since(name, entered)
        if failed is not None:
            self.locks.update.unlock(name)
            raise failed

    def unlock_for_update(self) -> None:
        self.locks.update.unlock(self.name())

    def update_will_fail(self, last_lock: Addr) -> ManifestContents | None:
        """The cached contents if they prove an update from ``last_lock`` would fail."""
        entry = self.cache.get(self.name())
        if entry is not None and entry[0].lock != last_lock:
            return entry[0]
        return None

    def fetch(self, stats: Stats) -> ManifestContents | None:
        """Current contents (None if no manifest), reusing a read that finished while we waited."""
        name = self.name()
        entered = time.monotonic_ns()
        with self.locks.fetch.holding(name):
            entry = self.cache.get(name)
            if entry is not None and entry[1] > entered:
                return entry[0] if entry[0].vers else None
            self._raise_failure_since(entered)
            started = time.monotonic_ns()
            contents = self._recording_lock_failure(lambda: self.manifest.parse_if_exists(stats))
            self.cache.put(name, contents if contents is not None else ManifestContents(vers=""), started)
            return contents

    def update(self, last_lock: Addr, new: ManifestContents, stats: Stats,
               write_hook: Hook | None = None) -> ManifestContents:
        """Write ``new`` if the lock is still ``last_lock`` (caller holds the update lock)."""
        name = self.name()
        entry = self.cache.get(name)
        if entry is not None and entry[0].lock != last_lock:
            return entry[0]
        started = time.monotonic_ns()
        with self.locks.fetch.holding(name):
            self._raise_failure_since(started)
            contents = self._recording_lock_failure(lambda: self.manifest.update(last_lock, new, stats, write_hook))
            self.cache.put(name, contents, started)
            return contents

    def _raise_failure_since(self, entered: int) -> None:
        failed = self.locks.failures.since(self.name(), entered)
        if failed is not None:
            raise failed

    def _recording_lock_failure(self, io: Callable[[], _T]) -> _T:
        """Run manifest I/O (under the fetch lock); a ``StoreLockedError`` is kept for those queued behind."""
        try:
            result = io()
        except StoreLockedError as error:
            self.locks.failures.record(self.name(), error)
            raise
        self.locks.failures.clear(self.name())
        return result
