"""Local table files (NBS-FORMAT.md 6.1, 14.6, 14.17)."""

import os
from pathlib import Path

import pytest

from nbs.addr import Addr
from nbs.errors import CorruptTableError, TableNotFoundError
from nbs.fd_cache import FDCache
from nbs.file_table_persister import FSTablePersister
from nbs.index_cache import IndexCache
from nbs.mem_table import MemTable
from nbs.stats import Stats
from nbs.table_index import parse_table_index
from nbs.table_writer import build_table
from tests.helpers import TEST_CHUNKS, memtable_of


def write_table(d: Path, chunks: list[bytes]) -> Addr:
    t = build_table((Addr.of(c), c) for c in chunks)
    (d / str(t.name)).write_bytes(t.data)
    return t.name


def test_mmap_table_reader(tmp_path: Path) -> None:
    name = write_table(tmp_path, TEST_CHUNKS)
    src = FSTablePersister(str(tmp_path), FDCache(1), None).open(name, 3, Stats())
    assert all(src.has(Addr.of(c)) for c in TEST_CHUNKS)


def test_open_reads_through_cached_descriptors(tmp_path: Path) -> None:
    fd_cache = FDCache(2)
    p = FSTablePersister(str(tmp_path), fd_cache, None)
    names = [write_table(tmp_path, [bytes([i])]) for i in (0, 1)]
    for n in names:
        p.open(n, 1, Stats())
    for n in names:
        os.unlink(tmp_path / str(n))
    for i, n in enumerate(names):
        assert p.open(n, 1, Stats()).has(Addr.of(bytes([i])))
    p.open(write_table(tmp_path, [b"\xff"]), 1, Stats())
    assert len(fd_cache.entries()) == 2


def test_persist(tmp_path: Path) -> None:
    p = FSTablePersister(str(tmp_path), FDCache(192), None)
    src = p.persist(memtable_of(TEST_CHUNKS), None, Stats())
    data = (tmp_path / str(src.name)).read_bytes()
    index = parse_table_index(data, str(src.name), len(data))
    assert index.chunk_count == 3 and all(src.has(Addr.of(c)) for c in TEST_CHUNKS)
    assert not [f for f in os.listdir(tmp_path) if f.startswith("nbs_table_")]


def test_persist_no_data(tmp_path: Path) -> None:
    p = FSTablePersister(str(tmp_path), FDCache(192), None)
    existing = p.persist(memtable_of(TEST_CHUNKS), None, Stats())
    src = p.persist(memtable_of(TEST_CHUNKS), existing, Stats())
    assert src.count() == 0
    assert not (tmp_path / str(src.name)).exists()


def test_cache_on_persist(tmp_path: Path) -> None:
    fd_cache = FDCache(1)
    p = FSTablePersister(str(tmp_path), fd_cache, IndexCache(1 << 20))
    src = p.persist(memtable_of(TEST_CHUNKS), None, Stats())
    src.get(Addr.of(TEST_CHUNKS[0]))  # opens the descriptor
    os.unlink(tmp_path / str(src.name))
    again = p.open(src.name, 3, Stats())
    assert all(again.get(Addr.of(c)) == c for c in TEST_CHUNKS)
    other = p.persist(memtable_of([b"\xff"]), None, Stats())
    other.get(Addr.of(b"\xff"))
    assert len(fd_cache.entries()) == 1


def test_conjoin_all(tmp_path: Path) -> None:
    fd_cache = FDCache(3)
    p = FSTablePersister(str(tmp_path), fd_cache, None)
    sources = []
    for i, c in enumerate(TEST_CHUNKS):
        name = write_table(tmp_path, [c, os.urandom(13 * (i + 1))])
        sources.append(p.open(name, 2, Stats()))
    joined = p.conjoin_all(sources, Stats())
    data = (tmp_path / str(joined.name)).read_bytes()
    assert parse_table_index(data, "j", len(data)).chunk_count == 6
    assert all(joined.get(Addr.of(c)) == c for c in TEST_CHUNKS)
    assert len(fd_cache.entries()) == 3


def test_conjoin_all_dups(tmp_path: Path) -> None:
    p = FSTablePersister(str(tmp_path), FDCache(192), None)
    sources = [p.persist(memtable_of(TEST_CHUNKS), None, Stats()) for _ in range(3)]
    joined = p.conjoin_all(sources, Stats())
    assert joined.count() == 9 and all(joined.has(Addr.of(c)) for c in TEST_CHUNKS)


def test_open_missing_table(tmp_path: Path) -> None:
    with pytest.raises(TableNotFoundError):
        FSTablePersister(str(tmp_path), FDCache(4), None).open(Addr.of(b"x"), 1, Stats())


def test_open_with_wrong_count_or_truncation(tmp_path: Path) -> None:
    name = write_table(tmp_path, TEST_CHUNKS)
    p = FSTablePersister(str(tmp_path), FDCache(4), None)
    with pytest.raises(CorruptTableError):
        p.open(name, 2, Stats())
    with pytest.raises(CorruptTableError):
        p.open(name, 30, Stats())
    path = tmp_path / str(name)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(CorruptTableError, match=str(name)):
        FSTablePersister(str(tmp_path), FDCache(4), None).open(name, 3, Stats())


def test_persist_empty_memtable_writes_nothing(tmp_path: Path) -> None:
    p = FSTablePersister(str(tmp_path), FDCache(4), None)
    assert p.persist(MemTable(10), None, Stats()).count() == 0
    assert os.listdir(tmp_path) == []
