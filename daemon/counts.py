"""Counters that request threads add to at the same time.

``figures.n += f(...)`` reads ``n``, calls ``f``, then writes ``n``: the
interpreter may switch threads inside the call, and whatever another thread
added to ``n`` meanwhile is lost (four threads in a tight loop, switching
every microsecond, lost 72% of their additions of a ``sum(...)``).  A
``defaultdict`` or ``Counter`` makes a missing entry in Python code too, so
two threads first counting a store or an operation at once could each make
one and keep only the last.  The daemon serves one store's requests on
several threads at once, so its counters add under a lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Generic, TypeVar

C = TypeVar("C", bound="Counts")


class Counts:
    """Base of a dataclass of ``int`` counters: ``add`` and ``as_dict`` hold the instance's lock."""

    _lock: threading.Lock  # not a dataclass field: ``asdict`` and ``fields`` leave it out

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, **deltas: int) -> None:
        """Add each of ``deltas`` to the counter it names (an unknown name raises ``AttributeError``)."""
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def as_dict(self) -> dict[str, int]:
        """Every counter, read together."""
        with self._lock:
            return {name: value for name, value in vars(self).items() if not name.startswith("_")}


class CountsByKey(Generic[C]):
    """One ``Counts`` per key, made on first use; two threads first using a key at once get the same one."""

    def __init__(self, make: Callable[[], C]) -> None:
        self._make = make
        self._by_key: dict[str, C] = {}
        self._lock = threading.Lock()

    def of(self, key: str) -> C:
        found = self._by_key.get(key)
        if found is None:
            with self._lock:
                found = self._by_key.get(key)
                if found is None:
                    found = self._by_key[key] = self._make()
        return found

    def items(self) -> list[tuple[str, C]]:
        """A copy: other threads may add keys while the caller reads."""
        with self._lock:
            return list(self._by_key.items())


class Tally:
    """Counts by name (a ``Counter``: a name never added to counts 0) that threads add to at once."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, name: str, delta: int = 1) -> None:
        with self._lock:
            self._counts[name] += delta

    def __getitem__(self, name: str) -> int:
        return self._counts[name]

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
