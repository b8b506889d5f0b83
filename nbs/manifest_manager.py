"""Serialises manifest I/O within a process and short-circuits doomed updates.

Stores sharing a manifest name share one ``ManifestManager`` state (cache and
locks): commits to the same store serialise on the update lock, fetches wait
for writes in progress, and an update whose expected lock is already known to
be stale fails without any I/O (NBS-FORMAT.md section 5.6).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from nbs.addr import Addr
from nbs.manifest import Hook, Manifest, ManifestContents
from nbs.manifest_cache import ManifestCache
from nbs.named_locks import NamedLocks
from nbs.stats import Stats


@dataclass
class ManifestLocks:
    """Fetch locks and update locks, keyed by manifest name."""

    fetch: NamedLocks
    update: NamedLocks

    @classmethod
    def create(cls) -> ManifestLocks:
        return cls(NamedLocks(), NamedLocks())


class ManifestManager:
    def __init__(self, manifest: Manifest, cache: ManifestCache, locks: ManifestLocks) -> None:
        self.manifest = manifest
        self.cache = cache
        self.locks = locks

    def name(self) -> str:
        return self.manifest.name()

    def lock_for_update(self) -> None:
        self.locks.update.lock(self.name())

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
            started = time.monotonic_ns()
            contents = self.manifest.parse_if_exists(stats)
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
            contents = self.manifest.update(last_lock, new, stats, write_hook)
            self.cache.put(name, contents, started)
            return contents

