"""The daemon's ``mem`` store: one in-memory store that its sessions share while any of them is open.

Every client could fill the daemon's memory through it, so it is off unless
configured (``allow_mem``), its tables are capped in bytes (``mem_store_size``:
a table past the cap is refused with ``StoreFullError``), and it is dropped
with the last session on it, which gives its memory back.
"""

from __future__ import annotations

import threading

from nbs.conjoiner import InlineConjoiner
from nbs.factory import SharedCaches
from nbs.manifest import ManifestContents
from nbs.manifest_manager import ManifestManager
from nbs.memory_manifest import MemoryManifest
from nbs.memory_table_persister import MemoryTablePersister
from nbs.store import NomsBlockStore


class MemStore:
    def __init__(self, max_bytes: int, caches: SharedCaches) -> None:
        self.max_bytes = max_bytes
        self._caches = caches
        self._users = 0
        self._incarnation = 0
        self._manifest: MemoryManifest | None = None
        self._persister: MemoryTablePersister | None = None
        self._lock = threading.Lock()

    def open(self, contents: ManifestContents | None) -> NomsBlockStore:
        """A store object on the shared tables, started afresh if no session holds them; ``release`` it."""
        with self._lock:
            if self._manifest is None or self._persister is None:
                self._incarnation += 1
                # A name per incarnation: the shared manifest cache must not give a dropped store's root.
                self._manifest = MemoryManifest(f"nbsd:mem:{self._incarnation}")
                self._persister = MemoryTablePersister(self.max_bytes)
            manifest, persister = self._manifest, self._persister
            self._users += 1
        try:
            manager = ManifestManager(manifest, self._caches.manifest_cache, self._caches.manifest_locks)
            return NomsBlockStore(manager, persister, InlineConjoiner(), 0, contents)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """One store object of ``open`` is closed; the last one drops the tables."""
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._manifest = self._persister = None

    @property
    def held_bytes(self) -> int:
        persister = self._persister
        return persister.held_bytes if persister is not None else 0
