"""A process-wide LRU of manifest contents, keyed by manifest name and bounded in bytes.

Each entry remembers when the I/O that produced it started, so a fetch that
waited behind another can reuse a newer result instead of reading again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from nbs.forksafe import register
from nbs.manifest import ManifestContents


class ManifestCache:
    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._entries: OrderedDict[str, tuple[ManifestContents, int]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()
        register(self)

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    @property
    def total_size(self) -> int:
        return self._total

    def get(self, name: str) -> tuple[ManifestContents, int] | None:
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:
                self._entries.move_to_end(name)
            return entry

    def put(self, name: str, contents: ManifestContents, read_started: int) -> None:
        """Replace ``name``'s entry; ``read_started`` is when the producing I/O began."""
        with self._lock:
            old = self._entries.pop(name, None)
            if old is not None:
                self._total -= old[0].size()
            size = contents.size()
            if size > self.max_size:
                return
            self._entries[name] = (contents, read_started)
            self._total += size
            while self._total > self.max_size:
                _, (evicted, _) = self._entries.popitem(last=False)
                self._total -= evicted.size()
