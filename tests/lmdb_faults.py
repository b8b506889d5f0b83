"""LMDB faults for tests: a real environment that fails reads or writes on demand, and a clock to step.

``FaultyEnv`` stands in front of a real environment and raises the errors a
full disk or a full reader table raise, until the test heals it.
"""

from __future__ import annotations

import logging
from typing import Any

import lmdb

from nbsclient.cache_health import CacheHealth
from nbsclient.fast_cache import ReadOnlyCache
from nbsd.cache import ChunkCache

DISK_FULL = lmdb.DiskError("mdb_txn_commit: Input/output error")
READERS_FULL = lmdb.ReadersFullError("mdb_txn_begin: MDB_READERS_FULL: Environment maxreaders limit reached")


class FaultyEnv:
    """A real LMDB environment whose reads or writes fail while ``read_error``/``write_error`` is set."""

    def __init__(self, env: lmdb.Environment) -> None:
        self.env = env
        self.read_error: Exception | None = None
        self.write_error: Exception | None = None

    def begin(self, *args: Any, **kwargs: Any) -> Any:
        error = self.write_error if kwargs.get("write") else self.read_error
        if error is not None:
            raise error
        return self.env.begin(*args, **kwargs)

    def sync(self, force: bool = False) -> None:
        if self.write_error is not None:
            raise self.write_error
        self.env.sync(force)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


class Clock:
    """A monotonic clock that moves only when the test sets ``now``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def faulty(cache: ChunkCache | ReadOnlyCache, clock: Clock, logger: logging.Logger) -> FaultyEnv:
    """Put a ``FaultyEnv`` in front of ``cache``'s environment, and give it a health record on ``clock``."""
    env = FaultyEnv(cache.env)
    cache.env = env  # type: ignore[assignment]
    cache.health = CacheHealth(logger, "test cache", clock=clock)
    return env
