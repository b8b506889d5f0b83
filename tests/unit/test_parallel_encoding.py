"""Batched, parallel encoding and decoding of records: the same bytes as the one-chunk path and as Go."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TypeVar

import pytest

from nbs import chunk_workers, record
from nbs.addr import Addr
from nbs.chunk_source import BytesReaderAt, TableChunkSource
from nbs.chunk_workers import BATCH_CHUNKS
from nbs.errors import CorruptTableError
from nbs.record import RecordBatchError, decode_records, encode_record, encode_records
from nbs.table_index import parse_table_index
from nbs.table_writer import TableWriter, WrittenTable, build_table
from tests.helpers import FIXTURES


def mixed_chunks(count: int) -> list[bytes]:
    """Random, repetitive and tiny chunks of varied sizes, all distinct."""
    chunks = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            chunks.append(os.urandom(1 + i % 5000))
        elif kind == 1:
            chunks.append(b'{"id": %d, "name": "n"}' % i * (1 + i % 60))
        else:
            chunks.append(b"%d" % i)
    return chunks


def spans_of(lengths: list[int]) -> list[tuple[int, int]]:
    spans, offset = [], 0
    for length in lengths:
        spans.append((offset, length))
        offset += length
    return spans


def test_encode_records_is_the_records_of_each_chunk_joined() -> None:
    chunks = mixed_chunks(50)
    encoded = encode_records(chunks)
    singles = [encode_record(c) for c in chunks]
    assert encoded.data == b"".join(record for record, _ in singles)
    assert encoded.lengths == [len(record) for record, _ in singles]
    assert encoded.compressed_len == sum(compressed for _, compressed in singles)
    assert encoded.uncompressed_len == sum(map(len, chunks))
    assert decode_records(encoded.data, spans_of(encoded.lengths), 1 << 20) == chunks


def test_decode_records_names_the_bad_record() -> None:
    chunks = mixed_chunks(10)
    encoded = encode_records(chunks)
    spans = spans_of(encoded.lengths)
    data = bytearray(encoded.data)
    data[spans[6][0]] ^= 0xFF
    with pytest.raises(RecordBatchError) as err:
        decode_records(bytes(data), spans, 1 << 20)
    assert err.value.position == 6


def test_decoded_chunks_are_bytes_of_their_own_whatever_the_order_of_sizes() -> None:
    """Chunks are decompressed into one scratch buffer and copied out: a small chunk after a large one
    must not carry the large one's tail, and no chunk may change when the next is decoded."""
    chunks = [os.urandom(3000), b"tiny", b'{"k": 1}' * 900, b"x", os.urandom(5000), b"yz"]
    encoded = encode_records(chunks)
    decoded = decode_records(encoded.data, spans_of(encoded.lengths), 1 << 20)
    assert decoded == chunks and all(type(chunk) is bytes for chunk in decoded)


def test_decode_records_refuses_snappy_data_that_fills_less_than_it_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the Snappy binding does, a chunk is never handed out with bytes it did not write."""
    chunks = mixed_chunks(4)
    encoded = encode_records(chunks)
    real = record._decompress_into

    def short(compressed: memoryview, out: memoryview) -> int:
        return int(real(compressed, out)) - 1

    monkeypatch.setattr(record, "_decompress_into", short)
    with pytest.raises(RecordBatchError, match="shorter than") as err:
        decode_records(encoded.data, spans_of(encoded.lengths), 1 << 20)
    assert err.value.position == 0


def test_parallel_table_is_byte_identical_to_the_serial_one() -> None:
    chunks = mixed_chunks(5 * BATCH_CHUNKS + 17)
    pairs = [(Addr.of(c), c) for c in chunks]
    writer = TableWriter()
    for addr, chunk in pairs:
        writer.add(addr, chunk)
    serial = writer.finish()
    parallel = build_table(pairs)
    assert parallel.data == serial.data and parallel.name == serial.name
    assert (parallel.chunk_count, parallel.uncompressed_len, parallel.compressed_len) == (
        serial.chunk_count, serial.uncompressed_len, serial.compressed_len)
    built, parsed = parallel.index(), parse_table_index(serial.data, "serial", len(serial.data))
    for field in ("chunk_count", "total_uncompressed", "prefixes", "ordinals", "lengths", "offsets", "suffixes"):
        assert getattr(built, field) == getattr(parsed, field), field


@pytest.mark.parametrize("fixture", ["local-small", "local-multitable"])
def test_go_tables_rebuilt_from_their_chunks_are_byte_identical(fixture: str) -> None:
    store = FIXTURES / fixture / "store"
    tables = [p for p in store.iterdir() if p.name not in ("LOCK", "manifest")]
    assert tables
    for path in tables:
        data = path.read_bytes()
        index = parse_table_index(data, path.name, len(data))
        source = TableChunkSource(Addr.parse(path.name), index, BytesReaderAt(data), 4096)
        assert build_table(source.extract()).data == data, path.name


def multi_batch_table(lie_at: int | None = None) -> tuple[list[bytes], bytes]:
    """A table spanning several verification batches; with ``lie_at``, that record is filed under another address."""
    chunks = mixed_chunks(3 * BATCH_CHUNKS)
    writer = TableWriter()
    for i, chunk in enumerate(chunks):
        writer.add(Addr.of(b"not %d" % i) if i == lie_at else Addr.of(chunk), chunk)
    return chunks, writer.finish().data


def test_incoming_table_is_verified_in_every_batch() -> None:
    chunks, data = multi_batch_table()
    table = WrittenTable.from_bytes(data)
    assert table.chunk_count == len(chunks) and table.uncompressed_len == sum(map(len, chunks))
    lie = 2 * BATCH_CHUNKS + 5
    with pytest.raises(CorruptTableError, match=f"record {lie}: does not hash to its address"):
        WrittenTable.from_bytes(multi_batch_table(lie)[1])


def test_incoming_table_with_a_bad_record_in_a_late_batch_names_it() -> None:
    chunks, data = multi_batch_table()
    index = parse_table_index(data, "t", len(data))
    bad = 2 * BATCH_CHUNKS + 9
    damaged = bytearray(data)
    damaged[index.offsets[bad]] ^= 0xFF
    with pytest.raises(CorruptTableError, match=f"record {bad}:"):
        WrittenTable.from_bytes(bytes(damaged))


class CountingReader(BytesReaderAt):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[tuple[int, int]] = []

    def read_at(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        return super().read_at(offset, length)


R = TypeVar("R", bound=CountingReader)


def _batched_table(reader_type: type[R]) -> tuple[list[bytes], R, TableChunkSource]:
    """Two batches and a bit of 3000-byte chunks in one table, read through a ``reader_type`` 64 KiB at a time."""
    chunks = [os.urandom(3000) for _ in range(2 * BATCH_CHUNKS + 3)]
    table = build_table((Addr.of(c), c) for c in chunks)
    reader = reader_type(table.data)
    return chunks, reader, TableChunkSource(table.name, table.index(), reader, 4096, max_read=64 << 10)


def test_get_many_reads_at_most_max_read_bytes_at_once_and_decodes_every_read() -> None:
    chunks, reader, source = _batched_table(CountingReader)
    found: dict[bytes, bytes] = {}
    missing = source.get_many([Addr.of(c) for c in chunks] + [Addr.of(b"absent")], found)
    assert missing == [Addr.of(b"absent")]
    assert found == {Addr.of(c): c for c in chunks}
    assert len(reader.reads) > 1 and max(length for _, length in reader.reads) <= 64 << 10
    reader.reads.clear()
    source.max_read = 0
    source.get_many([Addr.of(c) for c in chunks], {})
    assert len(reader.reads) == 1  # without a limit, adjacent records make one read


class RangesReader(CountingReader):
    """A slow reader, as S3 is: notes how many ranges each ``read_ranges`` asks for at once."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.calls: list[int] = []

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        self.calls.append(len(ranges))
        return super().read_ranges(ranges)


def test_slow_reads_go_all_at_once_and_every_record_of_every_read_is_decoded() -> None:
    chunks, reader, source = _batched_table(RangesReader)
    found: dict[bytes, bytes] = {}
    assert source.get_many([Addr.of(c) for c in chunks], found) == []
    assert found == {Addr.of(c): c for c in chunks}
    assert reader.calls == [len(reader.reads)] and len(reader.reads) > 2


class DecodedSoFarReader(CountingReader):
    """A cheap reader, as a local file is; notes, at each read, how many chunks the get has decoded into ``found``."""

    local = True

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.found: dict[bytes, bytes] = {}
        self.decoded_before: list[int] = []

    def read_at(self, offset: int, length: int) -> bytes:
        self.decoded_before.append(len(self.found))
        return super().read_at(offset, length)


def test_cheap_reads_are_decoded_a_job_at_a_time_here_without_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without chunk workers, a job's reads (at most ``BATCH_CHUNKS`` records) are decoded before the next job's
    are read: only one job's buffer is alive at a time."""
    monkeypatch.setattr(chunk_workers, "_POOL", chunk_workers.ChunkWorkers(0))
    chunks, reader, source = _batched_table(DecodedSoFarReader)
    assert source.get_many([Addr.of(c) for c in chunks], reader.found) == []
    assert reader.found == {Addr.of(c): c for c in chunks}
    assert len(reader.decoded_before) > 3 and reader.decoded_before == sorted(reader.decoded_before)
    decoded = sorted(set(reader.decoded_before))  # a job's chunks, all decoded before the next job reads
    assert decoded[0] == 0 and len(decoded) >= 3
    assert all(0 < after - before <= BATCH_CHUNKS for before, after in zip(decoded, decoded[1:]))


class LocalReader(CountingReader):
    local = True


@pytest.mark.parametrize("asked", ["all", "every other", "twice over"])
def test_a_local_read_plans_bounded_reads_and_gives_every_chunk_asked(monkeypatch: pytest.MonkeyPatch,
                                                                      asked: str) -> None:
    """All of a table is read in adjacent ranges cut without a step per record; any other choice (gaps,
    an address asked twice) through the coalescing of each record: the same chunks either way."""
    monkeypatch.setattr(chunk_workers, "_POOL", chunk_workers.ChunkWorkers(0))
    chunks, reader, source = _batched_table(LocalReader)
    addrs = [Addr.of(c) for c in chunks]
    wanted = {"all": addrs, "every other": addrs[::2], "twice over": addrs + addrs[:7]}[asked]
    found: dict[bytes, bytes] = {}
    assert source.get_many(wanted, found) == []
    assert found == {a: c for a, c in zip(addrs, chunks) if a in set(wanted)}
    assert all(length <= 64 << 10 for _, length in reader.reads)  # max_read
    ranges = sorted(reader.reads)
    assert all(a + n <= b for (a, n), (b, _) in zip(ranges, ranges[1:]))  # each record read once
    if asked == "all":
        assert all(a + n == b for (a, n), (b, _) in zip(ranges, ranges[1:]))  # back to back, no gaps


@pytest.mark.parametrize("local", [False, True], ids=["one-read", "local"])
def test_get_many_names_a_corrupt_chunk_far_into_its_records(local: bool) -> None:
    chunks = [os.urandom(100) for _ in range(3 * BATCH_CHUNKS)]
    table = build_table((Addr.of(c), c) for c in chunks)
    index = table.index()
    damaged = bytearray(table.data)
    damaged[index.offsets[2 * BATCH_CHUNKS + 1] + 1] ^= 0xFF
    reader = LocalReader(bytes(damaged)) if local else BytesReaderAt(bytes(damaged))
    source = TableChunkSource(table.name, index, reader, 4096, max_read=(8 << 10) if local else 0)
    with pytest.raises(CorruptTableError, match=str(Addr.of(chunks[2 * BATCH_CHUNKS + 1]))):
        source.get_many([Addr.of(c) for c in chunks], {})
    assert not isinstance(reader, LocalReader) or len(reader.reads) > 3  # the bad chunk lay in a late read
