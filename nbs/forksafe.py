"""Fork safety: what a forked child must not take over from its parent.

Worker pools (gunicorn ``--preload``, celery's prefork pool, ``multiprocessing``
with ``fork``) build objects in a parent and fork.  Only the forking thread
survives in the child: thread pools have no threads, a lock another thread
held stays held forever, a semaphore slot it took is never given back, and
sockets and connections are shared with the parent.  Objects owning such
state register here; in the child, before the fork returns, each one's
``after_fork_in_child`` drops what it inherited, so that its next use builds
it anew (lazily: a child that never uses an object pays nothing).  The parent
is untouched.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class AfterFork(Protocol):
    def after_fork_in_child(self) -> None:
        """Forget what belongs to the parent (threads, held locks, sockets); cheap, never raises."""


_registered: weakref.WeakSet[AfterFork] = weakref.WeakSet()


def register(obj: AfterFork) -> None:
    """Call ``obj.after_fork_in_child()`` in every child forked while ``obj`` lives."""
    _registered.add(obj)


def _in_child() -> None:
    for obj in list(_registered):
        try:
            obj.after_fork_in_child()
        except Exception:  # noqa: BLE001 - an at-fork hook must not take the child down
            log.exception("resetting %r after fork failed", obj)


os.register_at_fork(after_in_child=_in_child)


class ProcessLocal(Generic[T]):
    """A resource made on first use in each process (a thread pool, a ZeroMQ context), never the parent's.

    What the parent made is kept referenced in the child but not used or
    closed: closing it there could tear down state the parent still uses.
    """

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()
        self._inherited: list[T] = []
        register(self)

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                value = self._value
                if value is None:
                    value = self._value = self._make()
        return value

    def peek(self) -> T | None:
        """The value if this process made it, else None (for shutdown paths that must not make one)."""
        return self._value

    def after_fork_in_child(self) -> None:
        if self._value is not None:
            self._inherited.append(self._value)
        self._value = None
        self._lock = threading.Lock()


class Semaphore:
    """A counting semaphore whose slots are all free again in a forked child.

    Slots taken by the parent's threads at the fork would never be released
    in the child, where those threads do not exist.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"a semaphore needs at least one slot, got {slots}")
        self.slots = slots
        self._sem = threading.Semaphore(slots)
        register(self)

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        return self._sem.acquire(blocking, timeout)

    def release(self) -> None:
        self._sem.release()

    def __enter__(self) -> Semaphore:
        self._sem.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sem.release()

    def after_fork_in_child(self) -> None:
        self._sem = threading.Semaphore(self.slots)
