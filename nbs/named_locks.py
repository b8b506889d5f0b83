"""Non-reentrant mutexes keyed by name, created on demand.

Used for the manifest fetch and update locks: work on one store serialises
while other stores proceed.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from nbs.forksafe import register


class NamedLocks:
    """A set of held names guarded by one condition variable."""

    def __init__(self) -> None:
        self._held: set[Hashable] = set()
        self._cond = threading.Condition()
        register(self)

    def after_fork_in_child(self) -> None:
        """Names the parent's other threads held stay held forever in a child unless forgotten."""
        self._held = set()
        self._cond = threading.Condition()

    def lock(self, name: Hashable) -> None:
        with self._cond:
            while name in self._held:
                self._cond.wait()
            self._held.add(name)

    def unlock(self, name: Hashable) -> None:
        with self._cond:
            if name not in self._held:
                raise RuntimeError(f"unlock of {name!r}, which is not locked")
            self._held.remove(name)
            self._cond.notify_all()

    @contextmanager
    def holding(self, name: Hashable) -> Iterator[None]:
        self.lock(name)
        try:
            yield
        finally:
            self.unlock(name)
