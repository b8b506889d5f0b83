"""Opening stores for sessions, under the daemon's policy and shared caches.

Local stores must live under one of the configured roots (symlinks are
resolved first, so ``..`` or a link cannot escape).  ``mem`` is one in-memory
store shared by every client of this daemon for its lifetime.  All stores
share one index cache, one descriptor cache (the open-files budget) and one
set of manifest locks, so commits to a store serialise inside the daemon.
"""

from __future__ import annotations

import os
import threading

from nbs.conjoiner import InlineConjoiner
from nbs.errors import SpecError, StoreNotFoundError
from nbs.factory import SharedCaches, local_store_with
from nbs.manifest import ManifestContents
from nbs.manifest_manager import ManifestManager
from nbs.memory_manifest import MemoryManifest
from nbs.memory_table_persister import MemoryTablePersister
from nbs.spec import StoreSpec, parse_store_spec
from nbs.store import NomsBlockStore
from nbsclient.protocol import FORBIDDEN, ForbiddenError
from nbsd.config import Config

# Files the daemon holds open besides table files: LMDB data and lock, the instance lock, logs.
RESERVED_FILES = 8


class StoreOpener:
    def __init__(self, config: Config) -> None:
        self.config = config
        fd_budget = max(4, config.max_open_files - RESERVED_FILES - config.threads)
        self.caches = SharedCaches.create(config.index_cache_size, fd_budget)
        self._mem_manifest = MemoryManifest("nbsd:mem")
        self._mem_persister = MemoryTablePersister()
        self._lock = threading.Lock()

    def canonical(self, spec_text: str) -> tuple[str, StoreSpec]:
        """A stable key for the store a spec names, and the parsed spec; enforces local roots."""
        spec = parse_store_spec(spec_text)
        if spec.protocol == "nbs":
            path = os.path.realpath(os.path.expanduser(spec.path))
            if not any(os.path.commonpath([root, path]) == root for root in self.config.local_roots):
                raise ForbiddenError(FORBIDDEN, f"local store {path!r} is outside the daemon's local roots "
                                                f"({', '.join(self.config.local_roots) or 'none configured'})")
            return f"nbs:{path}", StoreSpec("nbs", path=path)
        return str(spec), spec

    def open(self, spec: StoreSpec, contents: ManifestContents | None) -> NomsBlockStore:
        if spec.protocol == "nbs":
            try:
                os.makedirs(spec.path, exist_ok=True)
            except OSError as err:
                raise StoreNotFoundError(f"cannot create store directory {spec.path!r}: {err}") from err
            return local_store_with(spec.path, self.caches, contents=contents)
        if spec.protocol == "mem":
            manager = ManifestManager(self._mem_manifest, self.caches.manifest_cache, self.caches.manifest_locks)
            return NomsBlockStore(manager, self._mem_persister, InlineConjoiner(), 0, contents)
        raise SpecError(f"this daemon cannot open {spec.protocol} stores")

    def open_files(self) -> int:
        return len(self.caches.fd_cache)

    def close(self) -> None:
        self.caches.fd_cache.drop()
