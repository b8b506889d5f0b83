"""Small helpers shared by the test suites (Go's test fixtures, re-expressed)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nbs.addr import Addr
from nbs.chunk_source import BytesReaderAt, TableChunkSource, FILE_BLOCK_SIZE
from nbs.mem_table import MemTable
from nbs.table_index import name_of_suffixes, parse_table_index
from nbs.table_writer import build_table

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures"

TEST_CHUNKS = [b"hello2", b"goodbye2", b"badbye2"]
TEST_MEMTABLE_SIZE = 1 << 8


def addr(data: bytes) -> Addr:
    return Addr.of(data)


def table_source(chunks: Iterable[bytes], block_size: int = FILE_BLOCK_SIZE) -> TableChunkSource:
    """An in-memory table of ``chunks`` (Go's ``buildTable`` + ``tableReaderAtFromBytes``)."""
    table = build_table((Addr.of(c), c) for c in chunks)
    index = parse_table_index(table.data, str(table.name), len(table.data))
    return TableChunkSource(table.name, index, BytesReaderAt(table.data), block_size)


def memtable_of(chunks: Iterable[bytes], size: int = 1 << 20) -> MemTable:
    mt = MemTable(size)
    for c in chunks:
        assert mt.add_chunk(Addr.of(c), c)
    return mt


def random_chunk(size: int) -> bytes:
    return os.urandom(size)


def check_table_facts(data: bytes, facts: dict[str, Any]) -> None:
    """A table's bytes are exactly what a fixture's FACTS.json says about the table."""
    index = parse_table_index(data, facts["name"], len(data))
    assert str(name_of_suffixes(index.suffixes)) == facts["name"]
    assert [str(Addr(a)) for a in index.addresses()] == facts["hashes_in_ordinal_order"]
    assert list(index.lengths) == facts["record_lengths"]
    assert index.total_uncompressed == facts["uncompressed_len"]
    assert index.chunk_count == facts["chunk_count"]


def damage_cache_entry(cache: Any, addr: bytes) -> None:
    """Flip the last byte of ``addr``'s value in an nbsd ``ChunkCache``, as a bad disk would."""
    with cache.env.begin(write=True) as txn:
        db = cache.env.open_db(b"chunks", txn=txn)
        stored = txn.get(addr, db=db)
        assert stored is not None
        value = bytearray(stored)
        value[-1] ^= 1
        txn.put(addr, bytes(value), db=db)
