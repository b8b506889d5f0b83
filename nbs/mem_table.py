"""The in-memory write buffer that becomes a table when full or on commit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from nbs.errors import ChunkError
from nbs.stats import Stats
from nbs.table_writer import TableWriter, WrittenTable


def check_chunk(data: bytes, memtable_size: int) -> None:
    """Refuse chunks no memtable of ``memtable_size`` could hold (Go panics on both)."""
    if not data:
        raise ChunkError("empty chunks cannot be stored")
    if len(data) > memtable_size:
        raise ChunkError(f"chunk of {len(data)} bytes is larger than the memtable ({memtable_size})")


class Haver(Protocol):
    """Anything that can say which of some addresses it does not hold."""

    def has_many(self, addrs: Sequence[bytes]) -> list[bytes]: ...


class MemTable:
    """Distinct chunks in insertion order, bounded by their total payload bytes."""

    def __init__(self, max_data: int) -> None:
        self.max_data = max_data
        self._chunks: dict[bytes, bytes] = {}
        self._total = 0

    def add_chunk(self, addr: bytes, data: bytes) -> bool:
        """Add a chunk; False (nothing added) when it does not fit.  Duplicates are free."""
        if not data:
            raise ChunkError("empty chunks cannot be stored")
        if addr in self._chunks:
            return True
        if self._total + len(data) > self.max_data:
            return False
        self._chunks[addr] = data
        self._total += len(data)
        return True

    def count(self) -> int:
        return len(self._chunks)

    def uncompressed_len(self) -> int:
        return self._total

    def has(self, addr: bytes) -> bool:
        return addr in self._chunks

    def get(self, addr: bytes) -> bytes | None:
        return self._chunks.get(addr)

    def has_many(self, addrs: Sequence[bytes]) -> list[bytes]:
        chunks = self._chunks
        return [a for a in addrs if a not in chunks]

    def get_many(self, addrs: Sequence[bytes], found: dict[bytes, bytes]) -> list[bytes]:
        chunks = self._chunks
        missing = []
        for a in addrs:
            data = chunks.get(a)
            if data is None:
                missing.append(a)
            else:
                found[a] = data
        return missing

    def extract(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self._chunks.items()))

    def write(self, haver: Haver | None, stats: Stats | None) -> WrittenTable:
        """A table of the chunks ``haver`` lacks, in insertion order (may be empty)."""
        absent = set(haver.has_many(list(self._chunks))) if haver is not None else None
        writer = TableWriter()
        for addr, data in self._chunks.items():
            if absent is None or addr in absent:
                writer.add(addr, data)
        table = writer.finish()
        if stats is not None and table.chunk_count:
            stats.bytes_per_persist.sample(len(table.data))
            stats.compressed_chunk_bytes_per_persist.sample(table.compressed_len)
            stats.uncompressed_chunk_bytes_per_persist.sample(table.uncompressed_len)
            stats.chunks_per_persist.sample(table.chunk_count)
        return table
