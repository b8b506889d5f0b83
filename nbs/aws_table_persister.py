"""Tables on AWS: small ones as DynamoDB items, the rest as S3 objects (NBS-FORMAT.md section 6.4).

Placement: a table of at most ``chunk_max`` chunks whose item stays under
DynamoDB's item limit goes to DynamoDB; anything else is uploaded to S3 under
its base32 name with a multipart upload of 5 MiB parts (``S3Objects``).

Conjoin is assembled server-side where it can be: every source whose chunk
region is at least the S3 minimum part size is copied with UploadPartCopy
(split when above ``part_max``); the smaller ones are read and uploaded
together with the merged index as the final part(s).

Go refuses uploads of more than 10,000 parts, so a table above
10,000 x 5 MiB cannot be written; here the part size grows instead.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from nbs.addr import ADDR_TEXT_SIZE, Addr
from nbs.chunk_source import S3_BLOCK_SIZE, ChunkSource, EmptyChunkSource, ReaderAt, TableChunkSource
from nbs.dynamo_manifest import DB_ATTR
from nbs.dynamo_table_store import DATA_ATTR, TABLE_KEY_PREFIX, DynamoReaderAt, DynamoTableStore, TableNotInDynamoError
from nbs.durable_files import Writer
from nbs.errors import CorruptTableError, NBSError
from nbs.forksafe import register
from nbs.index_cache import IndexCache
from nbs.manifest import TableSpec
from nbs.s3_objects import CopyPart, S3Objects, S3ReaderAt
from nbs.stats import Stats
from nbs.table_index import FOOTER_SIZE, INDEX_ENTRY_SIZE, TableIndex, parse_table_index, tail_size
from nbs.table_persister import CompactionPlan, PlannedSource, TablePersister, copy_chunk_regions, plan_conjoin
from nbs.table_writer import TableStream, WrittenTable

log = logging.getLogger(__name__)

MAX_PARTS = 10_000
S3_MAX_PART_SIZE = 5 << 30
# Bytes DynamoDB charges for a table item besides the table: attribute names and the "*"+name key.
DYNAMO_ITEM_OVERHEAD = len(DB_ATTR) + len(TABLE_KEY_PREFIX) + ADDR_TEXT_SIZE + len(DATA_ATTR)


@dataclass(frozen=True)
class AWSLimits:
    """Where tables go and how uploads are cut (Go's production values by default)."""

    part_target: int = 5 << 20
    part_min: int = 5 << 20
    part_max: int = 64 << 20
    item_max: int = 400 << 10
    chunk_max: int = 64

    def may_be_in_dynamo(self, chunk_count: int) -> bool:
        return chunk_count <= self.chunk_max

    def fits_in_dynamo(self, chunk_count: int, table_size: int) -> bool:
        return self.may_be_in_dynamo(chunk_count) and DYNAMO_ITEM_OVERHEAD + table_size < self.item_max


def part_size(total: int, target: int, max_parts: int = MAX_PARTS) -> int:
    """The size of the upload parts of ``total`` bytes: ``target``, grown to ``ceil(total / max_parts)`` where
    ``max_parts`` of ``target`` would not hold them all (``cut_parts`` gives the last part the remainder)."""
    return max(target, -(-total // max_parts), 1)


def split_on_max_size(length: int, max_size: int) -> list[int]:
    """Cut ``length`` into the fewest parts of at most ``max_size``, as even as possible."""
    count = -(-length // max_size)
    base, extra = divmod(length, count)
    return [base + 1] * extra + [base] * (count - extra)


def divide_plan(plan: CompactionPlan, part_min: int, part_max: int) -> tuple[list[CopyPart], list[PlannedSource]]:
    """Copy parts for sources of at least ``part_min`` bytes; the smaller rest are uploaded ("manuals").

    Plan sources are sorted largest first, so the manuals are a tail of the plan.
    """
    if part_max < 2 * part_min:
        raise ValueError(f"part_max {part_max} must be at least twice part_min {part_min}")
    copies: list[CopyPart] = []
    for i, p in enumerate(plan.sources):
        if p.data_len < part_min:
            return copies, list(plan.sources[i:])
        start = 0
        for length in split_on_max_size(p.data_len, part_max):
            copies.append(CopyPart(p.source.name, start, length))
            start += length
    return copies, []


def fit_parts(plan: CompactionPlan, limits: AWSLimits) -> tuple[list[CopyPart], list[PlannedSource]]:
    """``divide_plan`` with ``part_max`` raised as far as needed to stay within S3's part count."""
    part_max = limits.part_max
    while True:
        copies, manuals = divide_plan(plan, limits.part_min, part_max)
        if len(copies) < MAX_PARTS:  # the buffer (at least the merged index) needs one part too
            return copies, manuals
        if part_max >= S3_MAX_PART_SIZE:
            raise ValueError(f"table {plan.name} would need more than {MAX_PARTS} parts")
        part_max = min(2 * part_max, S3_MAX_PART_SIZE)


def cut_parts(pieces: Iterable[bytes], target: int) -> Iterator[tuple[bytes, bool]]:
    """``(part, final)``: the upload parts of a stream of bytes, cut as Go cuts a table's.

    A part of ``target`` bytes is cut once at least twice that much is held,
    so the last part takes the remainder (``target`` to ``2 * target`` bytes,
    or less when the whole stream is smaller); ``final`` marks it.  Each part
    is joined from its own pieces: every byte is copied once, not into the
    whole and again into a part (fresh memory costs a page fault per 4 KiB).
    """
    held: list[bytes | memoryview] = []
    size = 0
    for piece in pieces:
        held.append(piece)
        size += len(piece)
        while size >= 2 * target:
            part, held = _split(held, target)
            size -= target
            yield part, False
    yield b"".join(held), True


def _split(held: list[bytes | memoryview], length: int) -> tuple[bytes, list[bytes | memoryview]]:
    """The first ``length`` bytes of ``held`` joined, and the pieces left (a piece cut in two leaves its end)."""
    taken = 0
    for i, piece in enumerate(held):
        taken += len(piece)
        if taken >= length:
            over = taken - length
            view = memoryview(piece)
            head, tail = view[:len(view) - over], view[len(view) - over:]
            return b"".join([*held[:i], head]), [tail, *held[i + 1:]] if over else held[i + 1:]
    raise ValueError(f"{taken} bytes held, fewer than {length}")


class AWSTablePersister(TablePersister):
    """Persists, conjoins and opens tables in one S3 bucket and one DynamoDB table."""

    def __init__(self, objects: S3Objects, dynamo_tables: DynamoTableStore, *, limits: AWSLimits = AWSLimits(),
                 index_cache: IndexCache | None = None) -> None:
        self.objects = objects
        self.dynamo_tables = dynamo_tables
        self.limits = limits
        self.index_cache = index_cache
        self._cache_loads: set[Future[None]] = set()
        self._cache_loads_lock = threading.Lock()
        register(self)

    def after_fork_in_child(self) -> None:
        """The parent's table-cache loads run on its threads: a child neither sees them finish nor waits."""
        self._cache_loads = set()
        self._cache_loads_lock = threading.Lock()

    # -- writing -----------------------------------------------------------------------------

    def persist_table(self, table: WrittenTable, stats: Stats) -> ChunkSource:
        index = table.index()
        reader: ReaderAt
        if self.limits.fits_in_dynamo(table.chunk_count, table.size):
            self.dynamo_tables.write(table.name, table.data)
            reader = DynamoReaderAt(self.dynamo_tables, table.name, stats)
        else:
            self._upload(table.name, table.pieces, part_size(table.size, self.limits.part_target))
            self._cache(table.name, lambda write: [write(piece) for piece in table.pieces])
            reader = S3ReaderAt(self.objects, table.name, stats)
        return self._source(table.name, index, reader)

    def persist_stream(self, stream: TableStream, stats: Stats) -> ChunkSource:
        """Upload each part as soon as its records are encoded (tables that may go to DynamoDB are built first).

        The records are kept until the upload ends only to fill the table cache, when there is one.
        """
        if self.limits.may_be_in_dynamo(stream.chunk_count):
            return self.persist_table(stream.table, stats)
        # Each record is at most its chunk plus snappy's worst-case growth (n / 6 + 32) and a CRC; then the index.
        most = stream.uncompressed_len * 7 // 6 + stream.chunk_count * (36 + INDEX_ENTRY_SIZE) + FOOTER_SIZE
        size = part_size(most, self.limits.part_target)
        self._upload(stream.name, stream.pieces(keep=self.objects.table_cache is not None), size,
                     lambda: stream.projected_size() >= 2 * size)
        table = stream.table
        self._cache(table.name, lambda write: [write(piece) for piece in table.pieces])
        return self._source(table.name, table.index(), S3ReaderAt(self.objects, table.name, stats))

    def _upload(self, name: Addr, pieces: Iterable[bytes], size: int,
                likely_parts: Callable[[], bool] | None = None) -> None:
        """Upload a table's bytes in parts of ``size`` (one request when they make one part), each part sent as
        soon as its pieces are there, so a caller still producing the later ones overlaps with the upload.

        Once ``likely_parts()`` says, before a piece, that the table will make
        more than one part, the multipart upload begins: its round trip then
        overlaps the encoding of the first part instead of following it.  A
        table that makes one part after all is put, and that upload aborted.
        """
        begun: Future[str] | None = None

        def watched() -> Iterator[bytes]:
            nonlocal begun
            for piece in pieces:
                if begun is None and likely_parts is not None and likely_parts():
                    begun = self.objects.begin(name)
                yield piece

        parts = cut_parts(watched(), size)
        handed = False  # to ``upload``, which aborts it itself on failure
        try:
            first, final = next(parts)
            if final:
                self.objects.put(name, first)
                return
            if begun is None:  # begun before the rest is read, so ``watched`` never begins a second upload
                begun = self.objects.begin(name)
            handed = True
        finally:
            if begun is not None and not handed:
                self.objects.drop(name, begun)
        self.objects.upload(name, map(self.objects.bytes_part, itertools.chain([first], (p for p, _ in parts))),
                            begun)

    def conjoin_all(self, sources: Sequence[ChunkSource], stats: Stats) -> ChunkSource:
        plan = plan_conjoin(sources, stats)
        if plan.chunk_count == 0:
            return EmptyChunkSource()
        copies, manuals = fit_parts(plan, self.limits)
        regions = self.objects.pool.map(lambda p: p.source.read_at(0, p.data_len), manuals)
        pieces = [*regions, plan.merged_index]
        size = part_size(sum(map(len, pieces)), self.limits.part_target, MAX_PARTS - len(copies))
        self.objects.upload(plan.name, [*map(self.objects.copy_part, copies),
                                        *(self.objects.bytes_part(part) for part, _ in cut_parts(pieces, size))])
        if self.objects.table_cache is not None:
            self._load_into_cache(plan)
        index = parse_table_index(plan.merged_index, str(plan.name))
        return self._source(plan.name, index, S3ReaderAt(self.objects, plan.name, stats))

    # -- caching -----------------------------------------------------------------------------

    def _cache(self, name: Addr, emit: Callable[[Writer], object]) -> None:
        """Keep a local copy of a table just written; a failure only costs later S3 reads."""
        table_cache = self.objects.table_cache
        if table_cache is None:
            return
        try:
            table_cache.store(str(name), emit)
        except (OSError, NBSError):
            log.warning("could not cache table %s in %s", name, table_cache.directory, exc_info=True)

    def _load_into_cache(self, plan: CompactionPlan) -> None:
        """Cache a conjoined table in the background, assembled from its sources (Go's ``loadIntoCache``)."""
        def emit(write: Writer) -> None:
            copy_chunk_regions(plan, write)
            write(plan.merged_index)

        future = self.objects.pool.submit(functools.partial(self._cache, plan.name, emit))
        with self._cache_loads_lock:
            self._cache_loads.add(future)
        future.add_done_callback(self._cache_load_done)

    def _cache_load_done(self, future: Future[None]) -> None:
        with self._cache_loads_lock:
            self._cache_loads.discard(future)

    def wait_for_cache_loads(self) -> None:
        """Block until background cache fills started so far have finished."""
        with self._cache_loads_lock:
            pending = list(self._cache_loads)
        for future in pending:
            future.result()

    # -- reading -----------------------------------------------------------------------------

    def _source(self, name: Addr, index: TableIndex, reader: ReaderAt) -> ChunkSource:
        if self.index_cache is not None:
            self.index_cache.put(name, index)
        return TableChunkSource(name, index, reader, S3_BLOCK_SIZE)

    def open(self, name: Addr, chunk_count: int, stats: Stats) -> ChunkSource:
        located: list[ReaderAt] = []

        def load() -> TableIndex:
            index, reader = self._locate(name, chunk_count, stats)
            located.append(reader)
            return index

        index = self.index_cache.get_or_load(name, load) if self.index_cache is not None else load()
        if index.chunk_count != chunk_count:
            raise CorruptTableError(str(name), f"has {index.chunk_count} chunks, manifest says {chunk_count}")
        reader = located[0] if located else _LazyReaderAt(lambda: self._reader(name, chunk_count, stats))
        return TableChunkSource(name, index, reader, S3_BLOCK_SIZE)

    def open_many(self, specs: Sequence[TableSpec], stats: Stats) -> list[ChunkSource]:
        return self.objects.pool.map(lambda spec: self.open(spec.name, spec.chunk_count, stats), specs)

    def _locate(self, name: Addr, chunk_count: int, stats: Stats) -> tuple[TableIndex, ReaderAt]:
        """Read a table's index from wherever the table lives: DynamoDB if it may be small, else S3."""
        started = time.perf_counter_ns()
        data = self._dynamo_table(name, chunk_count, stats)
        if data is not None:
            index = parse_table_index(data, str(name), len(data))
            reader: ReaderAt = DynamoReaderAt(self.dynamo_tables, name, stats)
        else:
            data = self.objects.read_tail(name, tail_size(chunk_count), stats)
            index = parse_table_index(data, str(name))
            reader = S3ReaderAt(self.objects, name, stats)
        stats.index_bytes_per_read.sample(len(data))
        stats.index_read_latency.sample_time(started)
        return index, reader

    def _reader(self, name: Addr, chunk_count: int, stats: Stats) -> ReaderAt:
        """Where to read a table whose index came from the index cache."""
        if self._dynamo_table(name, chunk_count, stats) is not None:
            return DynamoReaderAt(self.dynamo_tables, name, stats)
        return S3ReaderAt(self.objects, name, stats)

    def _dynamo_table(self, name: Addr, chunk_count: int, stats: Stats) -> bytes | None:
        """The table's item bytes if it is a DynamoDB table; S3 tables in the table cache skip the lookup."""
        if not self.limits.may_be_in_dynamo(chunk_count):
            return None
        table_cache = self.objects.table_cache
        if table_cache is not None and str(name) in table_cache:
            return None
        try:
            return self.dynamo_tables.read_table(name, stats)
        except TableNotInDynamoError:
            return None


class _LazyReaderAt(ReaderAt):
    """Decides on the first read where a table lives, so opening from the index cache costs no request."""

    def __init__(self, locate: Callable[[], ReaderAt]) -> None:
        self._locate = locate
        self._reader: ReaderAt | None = None
        self._lock = threading.Lock()
        register(self)

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def _target(self) -> ReaderAt:
        with self._lock:
            if self._reader is None:
                self._reader = self._locate()
            return self._reader

    def read_at(self, offset: int, length: int) -> bytes:
        return self._target().read_at(offset, length)

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        return self._target().read_ranges(ranges)
