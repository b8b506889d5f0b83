"""Tables kept as bytes in memory: the ``mem`` store's persister, and a test double.

``max_bytes`` caps the bytes held, for a store that other processes fill (the
daemon's shared ``mem`` store): a table past the cap is refused with
``StoreFullError`` rather than growing the process without bound.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from nbs.addr import Addr
from nbs.chunk_source import (FILE_BLOCK_SIZE, FILE_MAX_READ, BytesReaderAt, ChunkSource, EmptyChunkSource,
                              TableChunkSource)
from nbs.errors import StoreFullError, TableNotFoundError
from nbs.forksafe import register
from nbs.stats import Stats
from nbs.table_index import parse_table_index
from nbs.table_persister import TablePersister, copy_chunk_regions, plan_conjoin
from nbs.table_writer import WrittenTable


class MemoryTablePersister(TablePersister):
    def __init__(self, max_bytes: int = 0) -> None:
        """``max_bytes`` 0 means no cap."""
        self.tables: dict[bytes, bytes] = {}
        self.max_bytes = max_bytes
        self.held_bytes = 0
        self._lock = threading.Lock()
        register(self)

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def persist_table(self, table: WrittenTable, stats: Stats) -> ChunkSource:
        return self._store(table.name, table.data, stats)

    def conjoin_all(self, sources: Sequence[ChunkSource], stats: Stats) -> ChunkSource:
        plan = plan_conjoin(sources, stats)
        if plan.chunk_count == 0:
            return EmptyChunkSource()
        pieces: list[bytes] = []
        copy_chunk_regions(plan, pieces.append)
        pieces.append(plan.merged_index)
        return self._store(plan.name, b"".join(pieces), stats)

    def open(self, name: Addr, chunk_count: int, stats: Stats) -> ChunkSource:
        with self._lock:
            data = self.tables.get(bytes(name))
        if data is None:
            raise TableNotFoundError(str(name), "memory")
        return self._source(name, data, stats)

    def _store(self, name: Addr, data: bytes, stats: Stats) -> ChunkSource:
        with self._lock:
            replaced = len(self.tables.get(bytes(name), b""))
            held = self.held_bytes - replaced + len(data)
            if self.max_bytes and held > self.max_bytes:
                raise StoreFullError(f"the in-memory store holds {self.held_bytes} bytes; a table of {len(data)} "
                                     f"would pass its cap of {self.max_bytes}")
            self.tables[bytes(name)] = data
            self.held_bytes = held
        return self._source(name, data, stats)

    @staticmethod
    def _source(name: Addr, data: bytes, stats: Stats) -> ChunkSource:
        index = parse_table_index(data, str(name), len(data))
        reader = BytesReaderAt(data, stats.mem_read_latency, stats.mem_bytes_per_read)
        return TableChunkSource(name, index, reader, FILE_BLOCK_SIZE, FILE_MAX_READ)
