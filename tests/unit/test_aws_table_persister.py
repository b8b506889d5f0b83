"""The AWS persister over fake S3 and DynamoDB clients.

Ports Go's aws_chunk_source_test.go and aws_table_persister_test.go
(NBS-FORMAT.md 14.13, 14.14) with their small part limits, plus part sizing
beyond 10,000 parts and abort behaviour.
"""

from __future__ import annotations

import os
import random
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbs.addr import Addr
from nbs.aws_table_persister import (DYNAMO_ITEM_OVERHEAD, MAX_PARTS, AWSLimits, AWSTablePersister, cut_parts,
                                     divide_plan, fit_parts, part_size, split_on_max_size)
from nbs.chunk_source import BytesReaderAt, ChunkSource, TableChunkSource
from nbs.dynamo_table_store import DynamoTableStore
from nbs.errors import AWSError
from nbs.fd_cache import FDCache
from nbs.forksafe import Semaphore
from nbs.fs_table_cache import FSTableCache
from nbs.index_cache import IndexCache
from nbs.io_pool import IOPool
from nbs.manifest import TableSpec
from nbs.s3_objects import CopyPart, S3Objects
from nbs.size_cache import SizeCache
from nbs.stats import Stats
from nbs.table_index import parse_table_index
from nbs.table_persister import CompactionPlan, PlannedSource, plan_conjoin
from nbs.table_writer import TableStream, build_table
from tests.helpers import TEST_CHUNKS, memtable_of, table_source
from tests.unit.aws_fakes import FakeDDB, FakeS3, as_ddb, as_s3, client_error

TABLE = build_table((Addr.of(c), c) for c in TEST_CHUNKS)
MAX_TABLE_SIZE = 236  # Go's maxTableSize(3, 21) for the test chunks


def target_of(k: int) -> int:
    return MAX_TABLE_SIZE // k


def make(pool: IOPool, limits: AWSLimits, s3: FakeS3 | None = None, ddb: FakeDDB | None = None,
         index_cache: IndexCache | None = None, table_cache: FSTableCache | None = None,
         ddb_cache: SizeCache[bytes, bytes] | None = None,
         rate_limit: Semaphore | None = None) -> AWSTablePersister:
    objects = S3Objects(as_s3(s3 or FakeS3()), "bucket", pool, rate_limit, table_cache)
    tables = DynamoTableStore(as_ddb(ddb or FakeDDB()), "table", rate_limit, ddb_cache)
    return AWSTablePersister(objects, tables, limits=limits, index_cache=index_cache)


def has_all(source: ChunkSource, chunks: list[bytes]) -> bool:
    return all(source.has(Addr.of(c)) for c in chunks)


def cached_index() -> IndexCache:
    """An index cache already holding the test table's index."""
    cache = IndexCache(1 << 20)
    cache.put(TABLE.name, parse_table_index(TABLE.data, "t", len(TABLE.data)))
    return cache


def parsed(data: bytes) -> TableChunkSource:
    index = parse_table_index(data, "t", len(data))
    return TableChunkSource(Addr.of(b"t"), index, BytesReaderAt(data), 4096)


# -- aws_chunk_source_test.go ---------------------------------------------------------------


def test_chunk_source_dynamo_no_index_cache(pool: IOPool) -> None:
    ddb = FakeDDB()
    DynamoTableStore(as_ddb(ddb), "table").write(TABLE.name, TABLE.data)
    source = make(pool, AWSLimits(item_max=409600, chunk_max=4), ddb=ddb).open(TABLE.name, 3, Stats())
    assert has_all(source, TEST_CHUNKS)
    assert source.get(Addr.of(TEST_CHUNKS[1])) == TEST_CHUNKS[1]


def test_chunk_source_dynamo_with_index_cache(pool: IOPool) -> None:
    ddb = FakeDDB()
    DynamoTableStore(as_ddb(ddb), "table").write(TABLE.name, TABLE.data)
    source = make(pool, AWSLimits(item_max=409600, chunk_max=4), ddb=ddb, index_cache=cached_index()).open(
        TABLE.name, 3, Stats())
    assert ddb.gets == 0
    assert has_all(source, TEST_CHUNKS)
    assert source.get(Addr.of(TEST_CHUNKS[0])) == TEST_CHUNKS[0]  # the first read finds the item
    assert ddb.gets >= 1


def test_chunk_source_s3_no_index_cache(pool: IOPool) -> None:
    s3, ddb = FakeS3(), FakeDDB()
    s3.objects[str(TABLE.name)] = TABLE.data
    source = make(pool, AWSLimits(item_max=409600, chunk_max=2), s3=s3, ddb=ddb).open(TABLE.name, 3, Stats())
    assert ddb.gets == 0 and s3.gets == 1
    assert has_all(source, TEST_CHUNKS)


def test_chunk_source_s3_with_index_cache(pool: IOPool) -> None:
    s3 = FakeS3()
    s3.objects[str(TABLE.name)] = TABLE.data
    source = make(pool, AWSLimits(item_max=409600, chunk_max=2), s3=s3, index_cache=cached_index()).open(
        TABLE.name, 3, Stats())
    assert s3.gets == 0
    assert has_all(source, TEST_CHUNKS)


def test_small_s3_table_costs_two_dynamo_reads_before_s3(pool: IOPool) -> None:
    s3, ddb = FakeS3(), FakeDDB()
    s3.objects[str(TABLE.name)] = TABLE.data
    stats = Stats()
    source = make(pool, AWSLimits(), s3=s3, ddb=ddb).open(TABLE.name, 3, stats)
    assert (ddb.gets, ddb.consistent_gets, s3.gets) == (2, 1, 1)
    assert stats.index_bytes_per_read.sum == 3 * 28 + 20 and stats.index_read_latency.samples == 1
    assert source.get(Addr.of(TEST_CHUNKS[2])) == TEST_CHUNKS[2]


# -- aws_table_persister_test.go: Persist ---------------------------------------------------


def test_persist_to_s3_in_multiple_parts(pool: IOPool) -> None:
    s3, cache = FakeS3(), IndexCache(1 << 20)
    half = len(TABLE.data) // 2
    source = make(pool, AWSLimits(part_target=half, part_min=0, part_max=0, item_max=0, chunk_max=0),
                  s3=s3, index_cache=cache).persist(memtable_of(TEST_CHUNKS), None, Stats())
    assert source.count() == 3 and cache.get(source.name) is not None
    assert s3.uploaded_parts == [(1, half), (2, len(TABLE.data) - half)] and s3.puts == 0
    assert has_all(parsed(s3.objects[str(source.name)]), TEST_CHUNKS)


def test_persist_to_s3_caches_table(pool: IOPool, tmp_path: Path) -> None:
    s3 = FakeS3()
    table_cache = FSTableCache(str(tmp_path), 1 << 20, FDCache(4))
    persister = make(pool, AWSLimits(part_target=target_of(3), item_max=0, chunk_max=0), s3=s3,
                     table_cache=table_cache)
    source = persister.persist(memtable_of(TEST_CHUNKS), None, Stats())
    assert str(source.name) in table_cache
    opened = persister.open(source.name, source.count(), Stats())
    gets = s3.gets
    assert [data for _, data in opened.extract()] == TEST_CHUNKS
    assert s3.gets == gets == 0  # the index came from the table cache too


def test_persist_to_s3_in_single_part_is_one_put(pool: IOPool) -> None:
    s3 = FakeS3()
    source = make(pool, AWSLimits(part_target=target_of(3), item_max=0, chunk_max=0), s3=s3).persist(
        memtable_of(TEST_CHUNKS), None, Stats())
    # 143 bytes / 78 is one part, as in Go; a single PutObject stores the same object
    assert s3.puts == 1 and s3.uploaded_parts == [] and s3.uploads == {}
    assert has_all(parsed(s3.objects[str(source.name)]), TEST_CHUNKS)


@pytest.mark.parametrize("k", [3, 4])
def test_small_table_too_big_for_an_item_goes_to_s3_whole(pool: IOPool, tmp_path: Path, k: int) -> None:
    # Few enough chunks for DynamoDB, too many bytes for its item: built whole, then put or uploaded in parts.
    s3 = FakeS3()
    table_cache = FSTableCache(str(tmp_path), 1 << 20, FDCache(4))
    source = make(pool, AWSLimits(part_target=target_of(k), item_max=0, chunk_max=6), s3=s3,
                  table_cache=table_cache).persist(memtable_of(TEST_CHUNKS), None, Stats())
    assert s3.objects[str(source.name)] == TABLE.data
    size = target_of(k)
    expected = [] if len(TABLE.data) < 2 * size else [(1, size), (2, len(TABLE.data) - size)]
    assert s3.uploaded_parts == expected and s3.puts == (0 if expected else 1)
    assert str(source.name) in table_cache


class CreateWatchingS3(FakeS3):
    """Counts the multipart uploads begun and signals the first."""

    def __init__(self) -> None:
        super().__init__()
        self.created = threading.Event()
        self.creates = 0

    def create_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        reply = super().create_multipart_upload(**kwargs)
        self.creates += 1
        self.created.set()
        return reply


class WaitingStream(TableStream):
    """Before its last records (the third batch's), waits (up to 5 s) for ``s3`` to see a multipart upload begin."""

    def __init__(self, chunks: list[bytes], s3: CreateWatchingS3) -> None:
        super().__init__([Addr.of(c) for c in chunks], chunks)
        self.s3 = s3
        self.begun_in_time: bool | None = None

    def pieces(self, keep: bool = True) -> Iterator[bytes]:
        for number, piece in enumerate(super().pieces(keep)):
            if number == 2:
                self.begun_in_time = self.s3.created.wait(5)
            yield piece


def stream_of_three_batches(compressible: tuple[bool, bool, bool]) -> list[bytes]:
    """768 distinct chunks of 4 KiB, 256 per batch of the chunk workers: random or repetitive text per batch."""
    return [(b"row %d " % i * 600)[:4096] if compressible[i // 256] else os.urandom(4096) for i in range(768)]


PART = 1280 << 10  # cut_parts cuts a first part once 2.5 MiB is held: here only after the last batch


@pytest.mark.parametrize("compressible", [(False, False, False), (True, True, True), (False, True, True)],
                         ids=["incompressible", "compressible", "only-the-first-batch-incompressible"])
def test_a_multipart_upload_begins_while_the_first_part_is_encoded_if_the_records_so_far_project_one(
        pool: IOPool, compressible: tuple[bool, bool, bool]) -> None:
    """3 MiB of chunks always pass two parts of 1.25 MiB uncompressed; whether their table will is projected from
    the records encoded so far.  Projected to (random chunks), the upload begins before the last batch is
    encoded, not after the first part is cut; projected not to (compressible), it never begins; projected
    wrongly (a random first batch, then text that compresses), it is aborted and the table put whole."""
    s3 = CreateWatchingS3()
    chunks = stream_of_three_batches(compressible)
    stream = WaitingStream(chunks, s3) if not compressible[0] else TableStream([Addr.of(c) for c in chunks], chunks)
    persister = make(pool, AWSLimits(part_target=PART, item_max=0, chunk_max=0), s3=s3)
    source = persister.persist_stream(stream, Stats())
    expected = build_table((Addr.of(c), c) for c in chunks)
    assert s3.objects == {str(expected.name): expected.data} and s3.uploads == {}
    assert source.get(Addr.of(chunks[-1])) == chunks[-1]
    if compressible == (False, False, False):
        assert len(expected.data) >= 2 * PART and isinstance(stream, WaitingStream) and stream.begun_in_time
        assert (s3.creates, s3.puts, len(s3.uploaded_parts), s3.aborted) == (1, 0, 2, [])
    elif compressible == (True, True, True):
        assert len(expected.data) < 2 * PART
        assert (s3.creates, s3.puts, s3.aborted) == (0, 1, [])
    else:
        assert len(expected.data) < 2 * PART and isinstance(stream, WaitingStream) and stream.begun_in_time
        assert (s3.creates, s3.puts, s3.uploaded_parts, len(s3.aborted)) == (1, 1, [], 1)


def test_a_projection_that_says_parts_only_after_the_first_cut_begins_no_second_upload(pool: IOPool) -> None:
    s3 = CreateWatchingS3()
    persister = make(pool, AWSLimits(item_max=0, chunk_max=0), s3=s3)
    pieces = [os.urandom(100) for _ in range(10)]
    asked: list[int] = []

    def likely_parts() -> bool:
        asked.append(len(asked))
        return len(asked) > 5  # only once the first part of 200 bytes has been cut (after the 4th piece)

    name = Addr.of(b"late")
    persister._upload(name, pieces, 200, likely_parts)
    assert s3.objects == {str(name): b"".join(pieces)}
    assert s3.creates == 1 and s3.uploads == {} and s3.aborted == [] and len(asked) == 4


class FailingCreateS3(FakeS3):
    def create_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        raise client_error("AccessDenied", "CreateMultipartUpload", 403)


def test_an_upload_begun_ahead_that_failed_to_start_fails_the_upload_and_needs_no_abort(pool: IOPool) -> None:
    s3 = FailingCreateS3()
    objects = S3Objects(as_s3(s3), "bucket", pool)
    name = Addr.of(b"table")
    objects.drop(name, objects.begin(name))  # not needed: nothing to undo, nothing raised
    with pytest.raises(AWSError) as err:
        objects.upload(name, [objects.bytes_part(b"part")], objects.begin(name))
    assert err.value.code == "AccessDenied" and s3.uploaded_parts == [] and s3.aborted == []
    working = FakeS3()
    objects = S3Objects(as_s3(working), "bucket", pool)
    objects.drop(name, objects.begin(name))
    assert len(working.aborted) == 1 and working.uploads == {}


def test_persist_no_new_chunks(pool: IOPool) -> None:
    s3, ddb = FakeS3(), FakeDDB()
    source = make(pool, AWSLimits(part_target=target_of(1)), s3=s3, ddb=ddb).persist(
        memtable_of(TEST_CHUNKS), memtable_of(TEST_CHUNKS), Stats())
    assert source.count() == 0 and source.name.is_empty()
    assert s3.objects == {} and ddb.items == {} and s3.uploads == {}


class FailSecondPartS3(FakeS3):
    def __init__(self) -> None:
        super().__init__()
        self.part_calls = 0

    def upload_part(self, **kwargs: Any) -> dict[str, Any]:
        self.part_calls += 1
        if self.part_calls > 1:
            raise client_error("MalformedXML", "UploadPart")
        return super().upload_part(**kwargs)


def test_persist_to_s3_aborts_failed_upload(pool: IOPool) -> None:
    s3 = FailSecondPartS3()
    persister = make(pool, AWSLimits(part_target=target_of(4), item_max=0, chunk_max=0), s3=s3)
    with pytest.raises(AWSError) as err:
        persister.persist(memtable_of(TEST_CHUNKS), None, Stats())
    assert err.value.code == "MalformedXML"
    assert s3.part_calls == 2 and len(s3.aborted) == 1
    assert s3.uploads == {} and s3.objects == {}


class SlowFirstPartS3(FakeS3):
    """Part 1 is slow, part 2 fails at once: the abort must wait until part 1 is done."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def upload_part(self, **kwargs: Any) -> dict[str, Any]:
        if kwargs["PartNumber"] == 2:
            raise client_error("InternalError", "UploadPart", 500)
        time.sleep(0.2)
        reply = super().upload_part(**kwargs)
        self.events.append("part 1 done")
        return reply

    def abort_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self.events.append("abort")
        return super().abort_multipart_upload(**kwargs)


def test_abort_waits_for_parts_in_flight(pool: IOPool) -> None:
    s3 = SlowFirstPartS3()
    with pytest.raises(AWSError):
        make(pool, AWSLimits(part_target=target_of(4), item_max=0, chunk_max=0), s3=s3).persist(
            memtable_of(TEST_CHUNKS), None, Stats())
    assert s3.events == ["part 1 done", "abort"] and s3.uploads == {}


def test_persist_to_dynamo(pool: IOPool) -> None:
    s3, ddb = FakeS3(), FakeDDB()
    source = make(pool, AWSLimits(item_max=409600, chunk_max=6), s3=s3, ddb=ddb).persist(
        memtable_of(TEST_CHUNKS), None, Stats())
    item = ddb.items["*" + str(source.name)]
    assert item == {"db": {"S": "*" + str(source.name)}, "data": {"B": TABLE.data}}
    assert has_all(parsed(item["data"]["B"]), TEST_CHUNKS)
    assert s3.objects == {} and s3.uploads == {}
    assert source.get(Addr.of(TEST_CHUNKS[0])) == TEST_CHUNKS[0]


def test_persist_to_dynamo_caches_on_open(pool: IOPool) -> None:
    ddb = FakeDDB()
    DynamoTableStore(as_ddb(ddb), "table").write(TABLE.name, TABLE.data)
    cache: SizeCache[bytes, bytes] = SizeCache(409600)
    source = make(pool, AWSLimits(item_max=409600, chunk_max=6), ddb=ddb, ddb_cache=cache).open(
        TABLE.name, 3, Stats())
    assert has_all(source, TEST_CHUNKS)
    assert cache.keys() == [bytes(TABLE.name)] and cache.get(bytes(TABLE.name)) == TABLE.data


@pytest.mark.parametrize("limits", [AWSLimits(item_max=409600, chunk_max=1), AWSLimits(item_max=0, chunk_max=6)],
                         ids=["too-many-chunks", "item-too-big"])
def test_persist_to_dynamo_falls_back_to_s3(pool: IOPool, limits: AWSLimits) -> None:
    s3, ddb = FakeS3(), FakeDDB()
    source = make(pool, limits, s3=s3, ddb=ddb).persist(memtable_of(TEST_CHUNKS), None, Stats())
    assert ddb.items == {}
    assert has_all(parsed(s3.objects[str(source.name)]), TEST_CHUNKS)


def test_dynamo_item_size_limit_is_strict() -> None:
    size = len(TABLE.data)
    assert DYNAMO_ITEM_OVERHEAD == 39
    assert not AWSLimits(item_max=39 + size).fits_in_dynamo(3, size)
    assert AWSLimits(item_max=40 + size).fits_in_dynamo(3, size)
    assert AWSLimits().fits_in_dynamo(64, 409560) and not AWSLimits().fits_in_dynamo(64, 409561)
    assert not AWSLimits().fits_in_dynamo(65, 100)


def test_dynamo_write_failure_fails_the_persist(pool: IOPool) -> None:
    """Go ignores this error (15.7); losing a table named by a manifest is worse than a failed commit."""

    class FailingDDB(FakeDDB):
        def put_item(self, **kwargs: Any) -> dict[str, Any]:
            raise client_error("ProvisionedThroughputExceededException", "PutItem")

    with pytest.raises(AWSError):
        make(pool, AWSLimits(), ddb=FailingDDB()).persist(memtable_of(TEST_CHUNKS), None, Stats())


# -- part sizing ----------------------------------------------------------------------------


def part_lengths(total: int, size: int, piece: int = 4096) -> list[int]:
    """The lengths of the parts ``cut_parts`` cuts from ``total`` bytes arriving in pieces of ``piece``."""
    data = os.urandom(total)
    parts = [part for part, _ in cut_parts((data[i:i + piece] for i in range(0, total, piece)), size)]
    assert b"".join(parts) == data
    return [len(part) for part in parts]


def test_parts_follow_go() -> None:
    assert part_lengths(143, part_size(143, 78)) == [143]
    assert part_lengths(143, part_size(143, 59)) == [59, 84]
    assert part_lengths(10, part_size(10, 100)) == [10]
    mib = 1 << 20
    assert part_lengths(23 * mib + 5, part_size(23 * mib + 5, 5 * mib)) == [5 * mib] * 3 + [8 * mib + 5]


@pytest.mark.parametrize("parts_worth", [MAX_PARTS, MAX_PARTS + 1, 3 * MAX_PARTS + 7, 12_345_678])
def test_part_size_never_exceeds_the_s3_part_count(parts_worth: int) -> None:
    target = 5 << 20
    total = parts_worth * target + 12345
    size = part_size(total, target)
    count = total // size  # cut_parts: parts of size, the last taking the remainder
    assert count <= MAX_PARTS
    assert size >= target and total - (count - 1) * size < 2 * size
    assert 2 * size <= 5 << 30 or parts_worth == 12_345_678


def test_part_size_with_a_part_budget() -> None:
    size = part_size(1000, 10, max_parts=7)
    assert len(part_lengths(1000, size, piece=3)) <= 7


def test_calc_part_sizes() -> None:
    for length, want in [(1048576, [16384] * 64), (16386, [8193, 8193]), (163849, [16385] * 9 + [16384]),
                         (24577, [12289, 12288])]:
        sizes = split_on_max_size(length, 16385)
        assert sizes == want
        assert all(8192 <= n <= 16385 for n in sizes) and sum(sizes) == length
    assert split_on_max_size(74, 32) == [25, 25, 24]


def test_divide_plan() -> None:
    just_right = table_source([b"123456789", b"abcdefghi"])
    too_big = table_source([random.randbytes(31), random.randbytes(31)])
    too_small = table_source([b"a"])
    plan = plan_conjoin([just_right, too_big, too_small])
    copies, manuals = divide_plan(plan, 16, 32)
    assert all(16 <= c.length <= 32 for c in copies)
    by_source: dict[Addr, list[int]] = {}
    for c in copies:
        by_source.setdefault(c.name, []).append(c.length)
    assert by_source == {too_big.name: [25, 25, 24], just_right.name: [30]}
    assert copies[:3] == [CopyPart(too_big.name, 0, 25), CopyPart(too_big.name, 25, 25),
                          CopyPart(too_big.name, 50, 24)]
    assert copies[1].copy_range == "bytes=25-49"
    assert [(m.source.name, m.data_len) for m in manuals] == [(too_small.name, 7)]
    with pytest.raises(ValueError):
        divide_plan(plan, 16, 31)


def test_fit_parts_raises_part_max_past_the_part_count() -> None:
    huge = PlannedSource(table_source([b"x"]), MAX_PARTS * (64 << 20) + 1)
    plan = CompactionPlan((huge,), b"", Addr.of(b"plan"), 1, huge.data_len)
    copies, manuals = fit_parts(plan, AWSLimits())
    assert len(copies) < MAX_PARTS and manuals == []
    assert sum(c.length for c in copies) == huge.data_len
    assert all(5 << 20 <= c.length <= 128 << 20 for c in copies)


# -- aws_table_persister_test.go: ConjoinAll ------------------------------------------------

CONJOIN_LIMITS = AWSLimits(part_target=1024, part_min=1024, part_max=5 * 1024, item_max=512, chunk_max=4)


@pytest.fixture
def conjoin_env(pool: IOPool) -> tuple[AWSTablePersister, FakeS3, FakeDDB, IndexCache]:
    s3, ddb, cache = FakeS3(), FakeDDB(), IndexCache(1 << 20)
    return make(pool, CONJOIN_LIMITS, s3, ddb, cache, rate_limit=Semaphore(8)), s3, ddb, cache


def persist_tables(persister: AWSTablePersister, groups: list[list[bytes]]) -> list[ChunkSource]:
    return [persister.persist(memtable_of(g), None, Stats()) for g in groups]


def small_chunks() -> list[bytes]:
    rng = random.Random(42)
    chunks: list[bytes] = []
    while sum(table_source([c]).index().data_len for c in chunks) <= 1024:
        chunks.append(rng.randbytes(1024 // 5))
    return chunks


SMALL = small_chunks()
def random_chunks(seed: int, size: int, count: int = 2) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(size) for _ in range(count)]


BIG1, BIG2, MED = random_chunks(1, 5119), random_chunks(2, 5119), random_chunks(3, 1025)


def conjoin_and_check(persister: AWSTablePersister, s3: FakeS3, cache: IndexCache,
                      sources: list[ChunkSource]) -> tuple[bytes, CompactionPlan]:
    plan = plan_conjoin(sources)
    s3.uploaded_parts.clear()
    s3.copied_ranges.clear()
    conjoined = persister.conjoin_all(sources, Stats())
    assert conjoined.name == plan.name and conjoined.count() == sum(s.count() for s in sources)
    assert cache.get(conjoined.name) is not None
    data = s3.objects[str(conjoined.name)]
    expected = b"".join(p.source.read_at(0, p.data_len) for p in plan.sources) + plan.merged_index
    assert data == expected
    chunks = [c for s in sources for _, c in s.extract()]
    assert has_all(parsed(data), chunks)
    assert [c for _, c in conjoined.extract()] == [c for p in plan.sources for _, c in p.source.extract()]
    assert s3.uploads == {}
    return data, plan


def test_small_chunks_are_dynamo_tables(conjoin_env: Any) -> None:
    persister, s3, ddb, _ = conjoin_env
    assert len(SMALL) == 5
    persist_tables(persister, [[c] for c in SMALL])
    assert len(ddb.items) == 5 and s3.objects == {}


def test_conjoin_small_total_under_min_size(conjoin_env: Any) -> None:
    persister, s3, _, cache = conjoin_env
    sources = persist_tables(persister, [[c] for c in SMALL[:4]])
    conjoin_and_check(persister, s3, cache, sources)
    assert s3.copied_ranges == [] and len(s3.uploaded_parts) == 1


def test_conjoin_small_total_over_min_size(conjoin_env: Any) -> None:
    persister, s3, _, cache = conjoin_env
    sources = persist_tables(persister, [[c] for c in SMALL])
    data, _ = conjoin_and_check(persister, s3, cache, sources)
    assert len(data) == 1060 + 5 * 28 + 20 == 1220
    assert s3.copied_ranges == [] and s3.uploaded_parts == [(1, 1220)]


def test_conjoin_all_over_max(conjoin_env: Any) -> None:
    persister, s3, _, cache = conjoin_env
    sources = persist_tables(persister, [BIG1, BIG2])
    _, plan = conjoin_and_check(persister, s3, cache, sources)
    assert sorted(s3.copied_ranges) == sorted((str(p.source.name), r) for p in plan.sources
                                              for r in ("bytes=0-3418", "bytes=3419-6837", "bytes=6838-10255"))
    assert s3.uploaded_parts == [(7, len(plan.merged_index))]


def test_conjoin_some_over_max(conjoin_env: Any) -> None:
    persister, s3, _, cache = conjoin_env
    med, big = persist_tables(persister, [MED, BIG1])
    _, plan = conjoin_and_check(persister, s3, cache, [med, big])
    assert sorted(s3.copied_ranges) == sorted([(str(big.name), "bytes=0-3418"), (str(big.name), "bytes=3419-6837"),
                                               (str(big.name), "bytes=6838-10255"),
                                               (str(med.name), f"bytes=0-{plan.sources[1].data_len - 1}")])
    assert s3.uploaded_parts == [(5, len(plan.merged_index))]


def test_conjoin_mix(conjoin_env: Any) -> None:
    persister, s3, _, cache = conjoin_env
    smalls = persist_tables(persister, [[c] for c in SMALL])
    big, med = persist_tables(persister, [BIG1, MED])
    _, plan = conjoin_and_check(persister, s3, cache, [*smalls, big, med])
    assert sorted(key for key, _ in s3.copied_ranges) == sorted([str(big.name)] * 3 + [str(med.name)])
    small_data = sum(p.data_len for p in plan.sources[2:])
    assert s3.uploaded_parts == [(5, small_data + len(plan.merged_index))]


def test_conjoin_of_nothing_is_empty(conjoin_env: Any) -> None:
    persister, s3, _, _ = conjoin_env
    assert persister.conjoin_all([], Stats()).count() == 0 and s3.uploads == {}


def test_conjoined_table_is_cached(pool: IOPool, tmp_path: Path) -> None:
    s3 = FakeS3()
    table_cache = FSTableCache(str(tmp_path), 1 << 20, FDCache(4))
    persister = make(pool, CONJOIN_LIMITS, s3=s3, table_cache=table_cache)
    sources = persist_tables(persister, [BIG1, MED, [SMALL[0]]])
    conjoined = persister.conjoin_all(sources, Stats())
    persister.wait_for_cache_loads()
    assert table_cache.read_at(str(conjoined.name), 0, 1 << 20) == s3.objects[str(conjoined.name)]


def test_open_many_opens_concurrently_and_in_order(pool: IOPool) -> None:
    s3 = FakeS3()
    persister = make(pool, AWSLimits(item_max=0, chunk_max=0), s3=s3)
    sources = persist_tables(persister, [[b"t%d" % i] for i in range(8)])
    opened = persister.open_many([TableSpec(s.name, 1) for s in sources], Stats())
    assert [s.name for s in opened] == [s.name for s in sources]
    assert s3.gets == 8


@pytest.mark.parametrize("total", [1, 99, 100, 199, 200, 201, 399, 400, 1234])
@pytest.mark.parametrize("piece", [1, 7, 100, 333, 5000])
def test_streamed_parts_are_the_whole_cut_in_parts_of_the_size(total: int, piece: int) -> None:
    data = os.urandom(total)
    parts = list(cut_parts((data[i:i + piece] for i in range(0, total, piece)), 100))
    count = max(1, total // 100)
    assert [part for part, _ in parts] == [data[i * 100:(i + 1) * 100] for i in range(count - 1)] + [
        data[(count - 1) * 100:]]
    assert all(type(part) is bytes for part, _ in parts)
    assert [final for _, final in parts] == [False] * (len(parts) - 1) + [True]


def test_cutting_parts_copies_each_byte_once() -> None:
    pieces = [os.urandom(4099) for _ in range(800)]  # 3.3 MB in parts of 1 MB: cuts split pieces
    total = sum(map(len, pieces))
    tracemalloc.start()
    try:
        parts = [part for part, _ in cut_parts(iter(pieces), 1 << 20)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert b"".join(parts) == b"".join(pieces) and list(map(len, parts)) == [1 << 20, 1 << 20, total - (2 << 20)]
    assert peak < total + (64 << 10)  # the parts, and no joined whole to slice them from
