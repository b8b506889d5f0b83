"""A reference-counted cache of open file descriptors with a soft size target.

Table readers ref a file around each positioned read.  Files nobody is
reading are closed once the cache holds more than ``target_size`` of them, so
a process keeps its open tables within a budget however many tables its
stores name.  A cached descriptor keeps a deleted or renamed table readable.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from nbs.forksafe import register


class FDCache:
    """Path -> (descriptor, reference count)."""

    def __init__(self, target_size: int) -> None:
        if target_size < 1:
            raise ValueError("the open-files target must be at least 1")
        self.target_size = target_size
        self._entries: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        register(self)

    def after_fork_in_child(self) -> None:
        """References held by the parent's other threads are never released here: drop them."""
        self._lock = threading.Lock()
        for entry in self._entries.values():
            entry[1] = 0

    def ref_file(self, path: str) -> int:
        """An open read-only descriptor for ``path``; pair with ``unref_file``."""
        with self._lock:
            entry = self._entries.get(path)
            if entry is not None:
                entry[1] += 1
                return entry[0]
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        with self._lock:
            entry = self._entries.get(path)
            if entry is None:
                self._entries[path] = [fd, 1]
                return fd
            entry[1] += 1
        os.close(fd)
        return entry[0]

    def unref_file(self, path: str) -> None:
        """Release one reference; closes idle files while over the target."""
        to_close: list[int] = []
        with self._lock:
            entry = self._entries.get(path)
            if entry is not None and entry[1] > 0:
                entry[1] -= 1
            excess = len(self._entries) - self.target_size
            if excess > 0:
                for key, (fd, refs) in list(self._entries.items()):
                    if excess == 0:
                        break
                    if refs == 0:
                        del self._entries[key]
                        to_close.append(fd)
                        excess -= 1
        for fd in to_close:
            os.close(fd)

    def discard(self, path: str) -> None:
        """Close ``path``'s descriptor now if nobody holds it (its file was deleted: free the space)."""
        with self._lock:
            entry = self._entries.get(path)
            if entry is None or entry[1] > 0:
                return
            del self._entries[path]
        os.close(entry[0])

    @contextmanager
    def open(self, path: str) -> Iterator[int]:
        fd = self.ref_file(path)
        try:
            yield fd
        finally:
            self.unref_file(path)

    def entries(self) -> list[str]:
        """Sorted paths currently cached (for tests and status reports)."""
        with self._lock:
            return sorted(self._entries)

    def refcount(self, path: str) -> int:
        with self._lock:
            entry = self._entries.get(path)
            return entry[1] if entry else 0

    def __len__(self) -> int:
        return len(self._entries)

    def drop(self) -> None:
        """Close every cached descriptor (Go's ``Shutter``)."""
        with self._lock:
            fds = [fd for fd, _ in self._entries.values()]
            self._entries.clear()
        for fd in fds:
            os.close(fd)
