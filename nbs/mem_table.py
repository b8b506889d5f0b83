"""The in-memory write buffer that becomes a table when full or on commit."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from nbs.addr import Addr
from nbs.chunk_jobs import hash_all
from nbs.errors import ChunkError
from nbs.stats import Stats
from nbs.table_writer import TableStream, WrittenTable


def check_chunk(data: bytes, memtable_size: int) -> None:
    """Refuse chunks no memtable of ``memtable_size`` could hold (Go panics on both)."""
    if not data:
        raise ChunkError("empty chunks cannot be stored")
    if len(data) > memtable_size:
        raise ChunkError(f"chunk of {len(data)} bytes is larger than the memtable ({memtable_size})")


def check_chunks(chunks: Sequence[bytes], memtable_size: int) -> list[int]:
    """The sizes of ``chunks``, once every one of them may be stored (``check_chunk`` names the first that may not)."""
    sizes = list(map(len, chunks))
    if sizes and (min(sizes) == 0 or max(sizes) > memtable_size):
        for data in chunks:
            check_chunk(data, memtable_size)
    return sizes


def check_and_hash(chunks: Sequence[bytes], memtable_size: int) -> list[Addr]:
    """The addresses of ``chunks`` (hashed by the chunk workers), once every one of them may be stored."""
    check_chunks(chunks, memtable_size)
    return hash_all(chunks)


def fill_memtables(current: MemTable | None, size: int, addrs: Sequence[bytes], chunks: Sequence[bytes],
                   spill: Callable[[MemTable], object]) -> MemTable | None:
    """Add every chunk to ``current`` (a new memtable of ``size`` if None); each full one goes to ``spill``.

    Returns the memtable still filling, None only if there was nothing to add.
    """
    done = 0
    while done < len(chunks):
        if current is None:
            current = MemTable(size)
        done = current.add_chunks(addrs, chunks, done)
        if done < len(chunks):
            spill(current)
            current = None
    return current


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

    def add_chunks(self, addrs: Sequence[bytes], chunks: Sequence[bytes], start: int) -> int:
        """Add ``chunks[start:]`` in order until one does not fit; the index of that one (or the length)."""
        held = self._chunks
        total, limit = self._total, self.max_data
        for i in range(start, len(chunks)):
            addr = addrs[i]
            if addr in held:
                continue
            data = chunks[i]
            if total + len(data) > limit:
                self._total = total
                return i
            held[addr] = data
            total += len(data)
        self._total = total
        return len(chunks)

    def room(self, sizes: Sequence[int], start: int) -> int:
        """The end of the run of chunks of ``sizes[start:]`` that fits in what is left, counting every chunk (a
        duplicate would be free, but its address may not be known yet)."""
        free = self.max_data - self._total
        for i in range(start, len(sizes)):
            free -= sizes[i]
            if free < 0:
                return i
        return len(sizes)

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

    def stream(self, haver: Haver | None) -> TableStream:
        """The table of the chunks ``haver`` lacks, in insertion order (may be empty), to be encoded as written."""
        chunks = self._chunks
        if haver is None:
            return TableStream(list(chunks), list(chunks.values()))
        absent = set(haver.has_many(list(chunks)))
        kept = [addr for addr in chunks if addr in absent]
        return TableStream(kept, [chunks[addr] for addr in kept])

    def write(self, haver: Haver | None, stats: Stats | None) -> WrittenTable:
        """The finished table of ``stream``, its figures sampled into ``stats``."""
        table = self.stream(haver).table
        if stats is not None:
            sample_persist(table, stats)
        return table


def sample_persist(table: WrittenTable, stats: Stats) -> None:
    """The figures Go samples for each persisted table (none for an empty one)."""
    if table.chunk_count:
        stats.bytes_per_persist.sample(table.size)
        stats.compressed_chunk_bytes_per_persist.sample(table.compressed_len)
        stats.uncompressed_chunk_bytes_per_persist.sample(table.uncompressed_len)
        stats.chunks_per_persist.sample(table.chunk_count)
