"""Tables kept as bytes in memory: the ``mem`` store's persister, and a test double."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from nbs.addr import Addr
from nbs.chunk_source import FILE_BLOCK_SIZE, BytesReaderAt, ChunkSource, EmptyChunkSource, TableChunkSource
from nbs.errors import TableNotFoundError
from nbs.forksafe import register
from nbs.stats import Stats
from nbs.table_index import parse_table_index
from nbs.table_persister import TablePersister, copy_chunk_regions, plan_conjoin
from nbs.table_writer import WrittenTable


class MemoryTablePersister(TablePersister):
    def __init__(self) -> None:
        self.tables: dict[bytes, bytes] = {}
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
            self.tables[bytes(name)] = data
        return self._source(name, data, stats)

    @staticmethod
    def _source(name: Addr, data: bytes, stats: Stats) -> ChunkSource:
        index = parse_table_index(data, str(name), len(data))
        reader = BytesReaderAt(data, stats.mem_read_latency, stats.mem_bytes_per_read)
        return TableChunkSource(name, index, reader, FILE_BLOCK_SIZE)
