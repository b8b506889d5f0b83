"""A manifest held in memory: the ``mem`` store's manifest, and a test double."""

from __future__ import annotations

import itertools
import threading

from nbs.addr import Addr
from nbs.forksafe import register
from nbs.manifest import Hook, Manifest, ManifestContents
from nbs.stats import Stats

_names = itertools.count(1)


class MemoryManifest(Manifest):
    """Exists once its lock is non-zero; updates compare locks like every backend."""

    def __init__(self, name: str | None = None) -> None:
        self._name = name if name is not None else f"mem-{next(_names)}"
        self._contents = ManifestContents()
        self._lock = threading.Lock()
        register(self)

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def name(self) -> str:
        return self._name

    def parse_if_exists(self, stats: Stats, read_hook: Hook | None = None) -> ManifestContents | None:
        with stats.read_manifest_latency.timing():
            if read_hook is not None:
                read_hook()
            with self._lock:
                return None if self._contents.lock.is_empty() else self._contents

    def update(self, last_lock: Addr, new: ManifestContents, stats: Stats,
               write_hook: Hook | None = None) -> ManifestContents:
        with stats.write_manifest_latency.timing():
            if write_hook is not None:
                write_hook()
            with self._lock:
                if self._contents.lock == last_lock:
                    self._contents = new
                return self._contents

    def set(self, contents: ManifestContents) -> None:
        """Overwrite the stored contents directly (what another writer would leave)."""
        with self._lock:
            self._contents = contents
