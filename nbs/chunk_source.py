"""Chunk sources: readable tables, as the table set sees them.

A ``ChunkSource`` answers has/get queries for one table.  ``TableChunkSource``
implements every query once over a parsed index and a ``ReaderAt`` (a local
file, bytes in memory, an S3 object or a DynamoDB item), including Go's read
coalescing for batched gets (NBS-FORMAT.md sections 2.9-2.14).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from nbs.addr import EMPTY_ADDR, Addr
from nbs.cpu_pool import BATCH_CHUNKS, CPU_POOL
from nbs.errors import CorruptTableError
from nbs.record import RecordBatchError, RecordError, decode_record, decode_records
from nbs.stats import Histogram
from nbs.table_index import TableIndex

FILE_BLOCK_SIZE = 4096
S3_BLOCK_SIZE = 512 * 1024
FILE_MAX_READ = 1 << 20  # a coalesced file read stops growing here


class ReaderAt(abc.ABC):
    """Positioned reads of a table's bytes."""

    @abc.abstractmethod
    def read_at(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset`` (fewer only if the table is short)."""

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Several reads; backends with high latency override this to run them concurrently."""
        return [self.read_at(offset, length) for offset, length in ranges]

    def close(self) -> None:
        """Release what the reader holds (nothing by default)."""


class BytesReaderAt(ReaderAt):
    """A table held in memory."""

    def __init__(self, data: bytes, latency: Histogram | None = None,
                 bytes_per_read: Histogram | None = None) -> None:
        self.data = data
        self._latency = latency
        self._bytes_per_read = bytes_per_read

    def read_at(self, offset: int, length: int) -> bytes:
        started = time.perf_counter_ns()
        data = self.data[offset:offset + length]
        if self._latency is not None and self._bytes_per_read is not None and length:
            self._bytes_per_read.sample(length)
            self._latency.sample_time(started)
        return data


class ChunkSource(abc.ABC):
    """One table (or a memtable being persisted) as a source of chunks."""

    @property
    @abc.abstractmethod
    def name(self) -> Addr:
        """The table name; the zero address for an empty source."""

    @abc.abstractmethod
    def count(self) -> int:
        """Chunks in the table (duplicates in conjoined tables counted each time)."""

    @abc.abstractmethod
    def uncompressed_len(self) -> int: ...

    @abc.abstractmethod
    def has(self, addr: bytes) -> bool: ...

    @abc.abstractmethod
    def get(self, addr: bytes) -> bytes | None: ...

    @abc.abstractmethod
    def has_many(self, addrs: Sequence[bytes]) -> list[bytes]:
        """The addresses of ``addrs`` this source does not hold."""

    @abc.abstractmethod
    def get_many(self, addrs: Sequence[bytes], found: dict[bytes, bytes]) -> list[bytes]:
        """Add held chunks to ``found`` (keyed by the requested objects); return the rest."""

    @abc.abstractmethod
    def extract(self) -> Iterator[tuple[bytes, bytes]]:
        """Every ``(address, chunk)`` in insertion order."""

    @abc.abstractmethod
    def index(self) -> TableIndex: ...

    @abc.abstractmethod
    def read_at(self, offset: int, length: int) -> bytes:
        """Raw table bytes (conjoin copies chunk regions with this)."""

    @abc.abstractmethod
    def calc_reads(self, addrs: Sequence[bytes]) -> tuple[int, list[bytes]]:
        """Physical reads a ``get_many`` would need, and the addresses not held."""

    def close(self) -> None:
        """Release resources held for this source."""

    def persisted(self) -> TableChunkSource | None:
        """The persisted table behind this source, which a chunk directory can index (None if empty)."""
        return None


class EmptyChunkSource(ChunkSource):
    """The result of persisting nothing new; never named by a manifest."""

    @property
    def name(self) -> Addr:
        return EMPTY_ADDR

    def count(self) -> int:
        return 0

    def uncompressed_len(self) -> int:
        return 0

    def has(self, addr: bytes) -> bool:
        return False

    def get(self, addr: bytes) -> bytes | None:
        return None

    def has_many(self, addrs: Sequence[bytes]) -> list[bytes]:
        return list(addrs)

    def get_many(self, addrs: Sequence[bytes], found: dict[bytes, bytes]) -> list[bytes]:
        return list(addrs)

    def extract(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(())

    def index(self) -> TableIndex:
        raise CorruptTableError(str(EMPTY_ADDR), "an empty source has no index")

    def read_at(self, offset: int, length: int) -> bytes:
        return b""

    def calc_reads(self, addrs: Sequence[bytes]) -> tuple[int, list[bytes]]:
        return 0, list(addrs)


class _Read(NamedTuple):
    offset: int
    length: int
    addr: bytes


class _Decode(NamedTuple):
    """Records of one physical read to decode together: ``reads`` within ``data``, which starts at ``start``."""

    start: int
    data: bytes
    reads: Sequence[_Read]


def _tasks(work: list[_Decode]) -> list[list[_Decode]]:
    """Consecutive reads grouped into pool tasks of up to ``BATCH_CHUNKS`` records: scattered reads (one
    record each) handed over one by one would cost more in hand-offs than their decoding."""
    tasks: list[list[_Decode]] = [[]]
    records = 0
    for item in work:
        if tasks[-1] and records + len(item.reads) > BATCH_CHUNKS:
            tasks.append([])
            records = 0
        tasks[-1].append(item)
        records += len(item.reads)
    return tasks


class TableChunkSource(ChunkSource):
    """A persisted table: a parsed index plus positioned reads of its records.

    A batched get coalesces records into physical reads (Go's rule: gaps of up
    to ``block_size`` bytes are read through; here also at most ``max_read``
    bytes a read, if set) and decodes their records in batches on the CPU pool.
    """

    def __init__(self, name: Addr, index: TableIndex, reader: ReaderAt, block_size: int,
                 max_read: int = 0) -> None:
        self._name = name
        self._index = index
        self._reader = reader
        self.block_size = block_size
        self.max_read = max_read
        self._label = str(name)

    @property
    def name(self) -> Addr:
        return self._name

    @property
    def reader(self) -> ReaderAt:
        return self._reader

    def count(self) -> int:
        return self._index.chunk_count

    def uncompressed_len(self) -> int:
        return self._index.total_uncompressed

    def index(self) -> TableIndex:
        return self._index

    def has(self, addr: bytes) -> bool:
        return self._index.lookup(addr) >= 0

    def get(self, addr: bytes) -> bytes | None:
        ordinal = self._index.lookup(addr)
        return None if ordinal < 0 else self.get_ordinal(ordinal, addr)

    def get_ordinal(self, ordinal: int, addr: bytes) -> bytes:
        """The chunk ``addr`` at ``ordinal``, already located (by a chunk directory): no second probe."""
        return self._decode(self._read_exact(self._index.offsets[ordinal], self._index.lengths[ordinal]), addr)

    def has_many(self, addrs: Sequence[bytes]) -> list[bytes]:
        lookup = self._index.lookup
        return [a for a in addrs if lookup(a) < 0]

    def get_many(self, addrs: Sequence[bytes], found: dict[bytes, bytes]) -> list[bytes]:
        reads, missing = self._plan(addrs)
        if reads:
            self._read_all(reads, found)
        return missing

    def read_into(self, located: Sequence[tuple[int, bytes]], found: dict[bytes, bytes]) -> None:
        """Add the chunks of ``(ordinal, address)`` pairs, already located, to ``found`` (coalesced reads)."""
        if len(located) == 1:  # the common case over many tables: nothing to coalesce
            ordinal, addr = located[0]
            found[addr] = self.get_ordinal(ordinal, addr)
            return
        offsets, lengths = self._index.offsets, self._index.lengths
        self._read_all([_Read(offsets[o], lengths[o], a) for o, a in located], found)

    def _read_all(self, reads: list[_Read], found: dict[bytes, bytes]) -> None:
        """Read coalesced ranges (at most ``max_read`` bytes each) and decode their records in batches on the
        CPU pool."""
        batches = self._coalesce(reads, self.block_size, self.max_read)
        ranges = [(batch[0].offset, batch[-1].offset + batch[-1].length - batch[0].offset) for batch in batches]
        work: list[_Decode] = []
        for (start, length), batch, data in zip(ranges, batches, self._reader.read_ranges(ranges)):
            if len(data) != length:
                raise CorruptTableError(self._label, f"short read of {len(data)}/{length} bytes at {start}")
            work.extend(_Decode(start, data, batch[i:i + BATCH_CHUNKS]) for i in range(0, len(batch), BATCH_CHUNKS))
        tasks = _tasks(work)
        decoded = CPU_POOL.map(self._decode_task, tasks) if len(tasks) > 1 else [self._decode_task(tasks[0])]
        for task, chunk_lists in zip(tasks, decoded):
            for item, chunks in zip(task, chunk_lists):
                found.update(zip([r.addr for r in item.reads], chunks))

    def _decode_task(self, task: Sequence[_Decode]) -> list[list[bytes]]:
        return [self._decode_reads(item) for item in task]

    def _decode_reads(self, item: _Decode) -> list[bytes]:
        start = item.start
        try:
            return decode_records(item.data, [(r.offset - start, r.length) for r in item.reads], self._index.max_chunk)
        except RecordBatchError as err:
            raise CorruptTableError(self._label, f"chunk {Addr(item.reads[err.position].addr)}: {err}") from err

    def calc_reads(self, addrs: Sequence[bytes]) -> tuple[int, list[bytes]]:
        index = self._index
        reads: list[_Read] = []
        missing: list[bytes] = []
        for a in addrs:
            ordinals = index.lookup_all(a)
            if not ordinals:
                missing.append(a)
            reads.extend(_Read(index.offsets[o], index.lengths[o], a) for o in ordinals)
        return (len(self._coalesce(reads, self.block_size, self.max_read)) if reads else 0), missing

    def extract(self) -> Iterator[tuple[bytes, bytes]]:
        index = self._index
        data = memoryview(self._read_exact(0, index.data_len))
        for ordinal, addr in enumerate(index.addresses()):
            start = index.offsets[ordinal]
            yield addr, self._decode(data[start:start + index.lengths[ordinal]], addr)

    def read_at(self, offset: int, length: int) -> bytes:
        return self._read_exact(offset, length)

    def close(self) -> None:
        self._reader.close()

    def persisted(self) -> TableChunkSource:
        return self

    def _plan(self, addrs: Sequence[bytes]) -> tuple[list[_Read], list[bytes]]:
        index = self._index
        lookup, offsets, lengths = index.lookup, index.offsets, index.lengths
        reads: list[_Read] = []
        missing: list[bytes] = []
        for a in addrs:
            o = lookup(a)
            if o < 0:
                missing.append(a)
            else:
                reads.append(_Read(offsets[o], lengths[o], a))
        return reads, missing

    @staticmethod
    def _coalesce(reads: list[_Read], block_size: int, max_read: int) -> list[list[_Read]]:
        """Group reads into physical reads: a gap of up to ``block_size`` bytes is read through.

        With ``max_read``, a physical read that would grow past it ends (a longer record is read alone).
        """
        reads.sort()
        limit = max_read or 1 << 62
        batches: list[list[_Read]] = []
        batch = [reads[0]]
        start = reads[0].offset
        end = start + reads[0].length
        for r in reads[1:]:
            if r.offset - end > block_size or r.offset + r.length - start > limit:
                start = r.offset
                batches.append(batch)
                batch = [r]
            else:
                batch.append(r)
            end = max(end, r.offset + r.length)
        batches.append(batch)
        return batches

    def _read_exact(self, offset: int, length: int) -> bytes:
        data = self._reader.read_at(offset, length)
        if len(data) != length:
            raise CorruptTableError(self._label, f"short read of {len(data)}/{length} bytes at {offset}")
        return data

    def _decode(self, record: bytes | memoryview, addr: bytes) -> bytes:
        try:
            return decode_record(record, self._index.max_chunk)
        except RecordError as err:
            raise CorruptTableError(self._label, f"chunk {Addr(addr)}: {err}") from err
