"""MemTable scenarios of Go's mem_table_test.go (NBS-FORMAT.md 3, 14.5)."""

import pytest

from nbs.addr import Addr
from nbs.chunk_source import BytesReaderAt, TableChunkSource
from nbs.errors import ChunkError
from nbs.mem_table import MemTable
from nbs.stats import Stats
from nbs.table_index import parse_table_index
from nbs.table_set import TableSet
from nbs.memory_table_persister import MemoryTablePersister
from tests.helpers import TEST_CHUNKS, memtable_of, table_source


def test_add_has_get_chunk() -> None:
    mt = MemTable(1024)
    for c in TEST_CHUNKS:
        assert mt.add_chunk(Addr.of(c), c)
    for c in TEST_CHUNKS:
        assert mt.has(Addr.of(c)) and mt.get(Addr.of(c)) == c
    assert not mt.has(Addr.of(b"nope")) and mt.get(Addr.of(b"nope")) is None
    assert mt.count() == 3 and mt.uncompressed_len() == 21


def test_add_overflow_chunk() -> None:
    mt = MemTable(1024)
    big = bytes(1024)
    assert mt.add_chunk(Addr.of(big), big) and mt.has(Addr.of(big))
    assert not mt.add_chunk(Addr.of(b"\x01"), b"\x01") and not mt.has(Addr.of(b"\x01"))

    mt = MemTable(1024)
    almost = bytes(1023)
    assert mt.add_chunk(Addr.of(almost), almost)
    assert mt.add_chunk(Addr.of(b"\x01"), b"\x01")
    assert not mt.add_chunk(Addr.of(b"o"), b"o") and not mt.has(Addr.of(b"o"))


def test_duplicate_add_is_free() -> None:
    mt = MemTable(10)
    assert mt.add_chunk(Addr.of(b"12345"), b"12345")
    assert mt.add_chunk(Addr.of(b"12345"), b"12345")
    assert mt.uncompressed_len() == 5 and mt.count() == 1


def test_empty_chunk_rejected() -> None:
    with pytest.raises(ChunkError):
        MemTable(10).add_chunk(Addr.of(b""), b"")


def test_write_skips_chunks_the_haver_has() -> None:
    mt = memtable_of(TEST_CHUNKS)
    haver = TableSet(MemoryTablePersister(), Stats(), upstream=[table_source([TEST_CHUNKS[1]]),
                                                                table_source([TEST_CHUNKS[2]])])
    table = mt.write(haver, None)
    assert table.chunk_count == 1
    src = TableChunkSource(table.name, parse_table_index(table.data, "t"), BytesReaderAt(table.data), 4096)
    assert src.has(Addr.of(TEST_CHUNKS[0]))
    assert not src.has(Addr.of(TEST_CHUNKS[1])) and not src.has(Addr.of(TEST_CHUNKS[2]))


def test_write_samples_persist_stats() -> None:
    stats = Stats()
    table = memtable_of([b"abc", b"def", b"ghi"]).write(None, stats)
    assert stats.bytes_per_persist.sum == len(table.data) == 131
    assert stats.chunks_per_persist.sum == 3
    assert stats.uncompressed_chunk_bytes_per_persist.sum == 9
    assert stats.compressed_chunk_bytes_per_persist.sum == 15  # 3 x (1 length byte + 1 tag + 3 literal)


def test_extract_in_insertion_order() -> None:
    mt = memtable_of(TEST_CHUNKS)
    assert list(mt.extract()) == [(Addr.of(c), c) for c in TEST_CHUNKS]
