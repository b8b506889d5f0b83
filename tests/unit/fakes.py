"""Unit-level doubles: a persister that can be held back or made to fail."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from nbs.addr import Addr
from nbs.chunk_source import ChunkSource
from nbs.mem_table import Haver, MemTable
from nbs.memory_table_persister import MemoryTablePersister
from nbs.stats import Stats


class GatedPersister(MemoryTablePersister):
    """Persists only once ``release`` is set; fails the first ``failures`` attempts."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.release = threading.Event()
        self.failures = failures
        self.attempts = 0

    def persist(self, memtable: MemTable, haver: Haver | None, stats: Stats) -> ChunkSource:
        self.release.wait(10)
        self.attempts += 1
        if self.attempts <= self.failures:
            raise OSError("injected persist failure")
        return super().persist(memtable, haver, stats)


class CountingPersister(MemoryTablePersister):
    def __init__(self) -> None:
        super().__init__()
        self.opened: list[Addr] = []
        self.conjoined: list[Sequence[ChunkSource]] = []

    def open(self, name: Addr, chunk_count: int, stats: Stats) -> ChunkSource:
        self.opened.append(name)
        return super().open(name, chunk_count, stats)
