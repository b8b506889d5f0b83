"""Chunk sources: readable tables, as the table set sees them.

A ``ChunkSource`` answers has/get queries for one table.  ``TableChunkSource``
implements every query once over a parsed index and a ``ReaderAt`` (a local
file, bytes in memory, an S3 object or a DynamoDB item), including Go's read
coalescing for batched gets (NBS-FORMAT.md sections 2.9-2.14).
"""

from __future__ import annotations

import abc
import bisect
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from nbs.addr import EMPTY_ADDR, Addr
from nbs.chunk_jobs import DecodeJob
from nbs.chunk_workers import BATCH_CHUNKS, run_jobs
from nbs.errors import CorruptTableError
from nbs.record import RecordBatchError, RecordError, decode_record, decode_records
from nbs.stats import Histogram
from nbs.table_index import TableIndex

FILE_BLOCK_SIZE = 4096
S3_BLOCK_SIZE = 512 * 1024
FILE_MAX_READ = 1 << 20  # a coalesced file read stops growing here
DECODE_BYTES = 1 << 20  # records read for one decode job (of a chunk worker, or here)
# A local read of fewer jobs is decoded here: handing a job to a sleeping worker costs ~0.1 ms to wake it (a
# pipe write) and ~0.3 ms before its answer, which only a long stream of jobs hides.  Reads of 4 KiB chunks
# in batches: 32 jobs 795-902 MB/s on the workers against 632-690 here, 16 jobs no better, 2 jobs 640-981
# against 1,444-1,504 (docs/PERFORMANCE.md).
WORKER_JOBS = 32


class ReaderAt(abc.ABC):
    """Positioned reads of a table's bytes."""

    local = False
    """Whether reads are cheap (a local file): a batched get then reads a job of coalesced ranges at a time and
    decodes it before the next (the buffer still in the CPU's cache, its memory reused), or, for a long read,
    reads each job straight into an idle chunk worker's memory and lets the workers decode.  Slow reads (S3) go
    all at once, as concurrently as their pool allows, and are decoded here."""

    @abc.abstractmethod
    def read_at(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset`` (fewer only if the table is short)."""

    def read_into(self, offset: int, buffer: memoryview) -> int:
        """Read up to ``len(buffer)`` bytes at ``offset`` into ``buffer``; how many (fewer only if the table is
        short).  Local readers override it to read without a buffer of their own."""
        data = self.read_at(offset, len(buffer))
        buffer[:len(data)] = data
        return len(data)

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


@dataclass(slots=True)
class Located:
    """Chunks of one table found by an index or a chunk directory: each one's ordinal and its address.

    Two parallel lists, not a pair per chunk: a batched get locates every
    chunk it reads, and 25,000 tuples per 100 MB were as many objects for
    the garbage collector to allocate, track and promote.
    """

    ordinals: list[int] = field(default_factory=list)
    addrs: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ordinals)

    def part(self, start: int, end: int) -> Located:
        """The chunks ``start`` to ``end`` (a batch of a longer read)."""
        return Located(self.ordinals[start:end], self.addrs[start:end])

    def in_file_order(self) -> Located:
        """The same chunks by ordinal (file order): itself when they already are."""
        ordinals = self.ordinals
        if ordinals == sorted(ordinals):  # in C, and fast on a sorted list: one run
            return self
        order = sorted(range(len(ordinals)), key=ordinals.__getitem__)
        return Located([ordinals[i] for i in order], [self.addrs[i] for i in order])


class TableChunkSource(ChunkSource):
    """A persisted table: a parsed index plus positioned reads of its records.

    A batched get coalesces records into physical reads (Go's rule: gaps of up
    to ``block_size`` bytes are read through; here also at most ``max_read``
    bytes a read, if set) and decodes each read's records in one call.
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
        located, missing = self.locate(addrs)
        if located.ordinals:
            self.read_into(located, found)
        return missing

    def locate(self, addrs: Sequence[bytes]) -> tuple[Located, list[bytes]]:
        """The chunks of ``addrs`` this table holds, in asked order, and the addresses it does not hold."""
        lookup = self._index.lookup
        located = Located()
        ordinals, held = located.ordinals, located.addrs
        missing: list[bytes] = []
        for addr in addrs:
            ordinal = lookup(addr)
            if ordinal < 0:
                missing.append(addr)
            else:
                ordinals.append(ordinal)
                held.append(addr)
        return located, missing

    def read_into(self, located: Located, found: dict[bytes, bytes]) -> None:
        """Add the chunks of ``(ordinal, address)`` pairs, already located, to ``found``.

        Records are read in file order, coalesced into physical reads.  A long
        read of a local file (``ReaderAt.local``, ``WORKER_JOBS``) is decoded by
        the chunk workers: a 4 KiB chunk's CRC and decompression cost about as
        much as making its ``bytes`` here, a page fault included, so this
        thread then only reads and copies.  Threads could not share it: the
        GIL changing hands around each chunk's short C calls made a pool of
        threads 1.15-1.5x slower than one.  All of this runs per chunk, so it
        works on ordinals and slices of ``located``: no object per chunk.
        """
        if len(located.ordinals) == 1:  # the common case over many tables: nothing to coalesce
            ordinal, addr = located.ordinals[0], located.addrs[0]
            found[addr] = self.get_ordinal(ordinal, addr)
            return
        located = located.in_file_order()
        ordinals, addrs = located.ordinals, located.addrs
        if self._reader.local:
            self._read_in_jobs(ordinals, addrs, found)
            return
        groups = self._coalesce(ordinals)
        datas = self._reader.read_ranges([(start, length) for start, length, _, _ in groups])
        for (start, length, lo, hi), data in zip(groups, datas):
            if len(data) != length:
                raise CorruptTableError(self._label, f"short read of {len(data)}/{length} bytes at {start}")
            held = addrs[lo:hi]
            found.update(zip(held, self._decode_read(ordinals[lo:hi], held, start, data)))

    def _read_in_jobs(self, ordinals: list[int], addrs: list[bytes], found: dict[bytes, bytes]) -> None:
        """Chunks at sorted ``ordinals`` into ``found``, a ``DecodeJob`` at a time, in order: on idle chunk workers
        if there are ``WORKER_JOBS`` or more, else here."""
        jobs, firsts = self._decode_jobs(ordinals)
        results = run_jobs(jobs, wait=False) if len(jobs) >= WORKER_JOBS else (job.run_here() for job in jobs)
        for first in firsts:
            try:
                chunks = next(results)
            except RecordBatchError as err:
                raise CorruptTableError(self._label, f"chunk {Addr(addrs[first + err.position])}: {err}") from err
            found.update(zip(addrs[first:first + len(chunks)], chunks))

    def _decode_jobs(self, ordinals: list[int]) -> tuple[list[DecodeJob], list[int]]:
        """Jobs of ``DECODE_BYTES`` of coalesced reads and at most ``BATCH_CHUNKS`` records each, and the position
        in ``ordinals`` of each job's first record."""
        first, count = ordinals[0], len(ordinals)
        if ordinals[-1] - first == count - 1 and ordinals == list(range(first, first + count)):
            return self._adjacent_jobs(first, first + count)
        offsets, lengths, max_len = self._index.offsets, self._index.lengths, self._index.max_chunk
        jobs: list[DecodeJob] = []
        firsts: list[int] = []
        reads: list[tuple[int, int]] = []
        starts: list[int] = []
        sizes: list[int] = []
        size = 0
        for start, length, lo, hi in self._coalesce(ordinals, BATCH_CHUNKS):
            if reads and (size + length > DECODE_BYTES or len(sizes) + hi - lo > BATCH_CHUNKS):
                jobs.append(DecodeJob(self._read_exact, self._read_exact_into, reads, starts, sizes, max_len))
                reads, starts, sizes, size = [], [], [], 0
            if not reads:
                firsts.append(lo)
            held = ordinals[lo:hi]
            starts.extend([offsets[o] - start + size for o in held])
            sizes.extend([lengths[o] for o in held])
            reads.append((start, length))
            size += length
        jobs.append(DecodeJob(self._read_exact, self._read_exact_into, reads, starts, sizes, max_len))
        return jobs, firsts

    def _adjacent_jobs(self, first: int, end: int) -> tuple[list[DecodeJob], list[int]]:
        """``_decode_jobs`` of the records ``first`` to ``end``, which lie back to back (a whole table read in
        file order): each job one read, cut where a bisection of the offsets finds its bound, so that nothing
        runs a step per record here (it did: 11-12 ms of a get of 25,000 chunks)."""
        offsets, lengths, max_len = self._index.offsets, self._index.lengths, self._index.max_chunk
        limit = min(DECODE_BYTES, self.max_read or DECODE_BYTES)
        jobs: list[DecodeJob] = []
        firsts: list[int] = []
        at = first
        while at < end:
            bound = min(at + BATCH_CHUNKS, end)
            stop = max(at + 1, bisect.bisect_right(offsets, offsets[at] + limit, at + 1, bound + 1) - 1)
            sizes = lengths[at:stop]
            starts = list(itertools.accumulate(sizes[:-1], initial=0))
            jobs.append(DecodeJob(self._read_exact, self._read_exact_into, [(offsets[at], offsets[stop] - offsets[at])],
                                  starts, sizes, max_len))
            firsts.append(at - first)
            at = stop
        return jobs, firsts

    def _decode_read(self, ordinals: list[int], addrs: list[bytes], start: int, data: bytes) -> list[bytes]:
        """The chunks at ``ordinals`` (of ``addrs``), whose records ``data``, read at ``start``, holds."""
        offsets, lengths = self._index.offsets, self._index.lengths
        try:
            return decode_records(data, [(offsets[o] - start, lengths[o]) for o in ordinals], self._index.max_chunk)
        except RecordBatchError as err:
            raise CorruptTableError(self._label, f"chunk {Addr(addrs[err.position])}: {err}") from err

    def calc_reads(self, addrs: Sequence[bytes]) -> tuple[int, list[bytes]]:
        index = self._index
        ordinals: list[int] = []
        missing: list[bytes] = []
        for a in addrs:
            held = index.lookup_all(a)
            if not held:
                missing.append(a)
            ordinals.extend(held)
        return (len(self._coalesce(sorted(ordinals))) if ordinals else 0), missing

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

    def _coalesce(self, ordinals: Sequence[int], max_records: int = 1 << 62) -> list[tuple[int, int, int, int]]:
        """Physical reads ``(offset, length, first, end)`` of records ``ordinals[first:end]`` (sorted ordinals).

        A gap of up to ``block_size`` bytes is read through (Go's rule); with
        ``max_read``, a read that would grow past it ends (a longer record is
        read alone), as does one of ``max_records`` records.
        """
        offsets, lengths = self._index.offsets, self._index.lengths
        block_size, limit = self.block_size, self.max_read or 1 << 62
        groups: list[tuple[int, int, int, int]] = []
        first = 0
        start = offsets[ordinals[0]]
        end = start + lengths[ordinals[0]]
        for i in range(1, len(ordinals)):
            ordinal = ordinals[i]
            offset = offsets[ordinal]
            stop = offset + lengths[ordinal]
            if offset - end > block_size or stop - start > limit or i - first == max_records:
                groups.append((start, end - start, first, i))
                first, start = i, offset
            end = max(end, stop)
        groups.append((start, end - start, first, len(ordinals)))
        return groups

    def _read_exact(self, offset: int, length: int) -> bytes:
        data = self._reader.read_at(offset, length)
        if len(data) != length:
            raise CorruptTableError(self._label, f"short read of {len(data)}/{length} bytes at {offset}")
        return data

    def _read_exact_into(self, offset: int, buffer: memoryview) -> None:
        got = self._reader.read_into(offset, buffer)
        if got != len(buffer):
            raise CorruptTableError(self._label, f"short read of {got}/{len(buffer)} bytes at {offset}")

    def _decode(self, record: bytes | memoryview, addr: bytes) -> bytes:
        try:
            return decode_record(record, self._index.max_chunk)
        except RecordError as err:
            raise CorruptTableError(self._label, f"chunk {Addr(addr)}: {err}") from err
