"""Table sets (NBS-FORMAT.md 4.3, 14.8)."""

from nbs.addr import Addr
from nbs.mem_table import MemTable
from nbs.memory_table_persister import MemoryTablePersister
from nbs.stats import Stats
from nbs.table_index import index_size
from nbs.table_set import TableSet
from tests.helpers import TEST_CHUNKS, memtable_of


def _empty_set() -> TableSet:
    return TableSet(MemoryTablePersister(), Stats())


def test_prepend_empty() -> None:
    assert _empty_set().prepend(MemTable(256)).to_specs() == []


def test_prepend_newest_first() -> None:
    ts = _empty_set()
    assert ts.to_specs() == []
    ts = ts.prepend(memtable_of(TEST_CHUNKS[:1], 256))
    first = ts.to_specs()
    assert len(first) == 1
    ts = ts.prepend(memtable_of(TEST_CHUNKS[1:], 256))
    specs = ts.to_specs()
    assert len(specs) == 2 and specs[1:] == first


def test_to_specs_and_flatten_exclude_empty_table() -> None:
    ts = _empty_set().prepend(memtable_of(TEST_CHUNKS[:1], 256))
    ts = ts.prepend(MemTable(256)).prepend(memtable_of(TEST_CHUNKS[1:], 256))
    assert len(ts.to_specs()) == 2
    assert ts.flatten().size() == 2


def test_extract_oldest_first() -> None:
    ts = _empty_set().prepend(memtable_of(TEST_CHUNKS[:1], 256)).prepend(memtable_of(TEST_CHUNKS[1:], 256))
    assert list(ts.extract()) == [(Addr.of(c), c) for c in TEST_CHUNKS]


def test_rebase_replaces_upstream_keeps_novel() -> None:
    persister = MemoryTablePersister()
    full = TableSet(persister, Stats())
    for c in TEST_CHUNKS:
        full = full.prepend(memtable_of([c], 256))
    full = full.flatten()
    ts = TableSet(persister, Stats()).prepend(memtable_of(TEST_CHUNKS[:1], 256)).flatten()
    assert ts.size() == 1
    ts = ts.prepend(memtable_of([b"novel"], 256))
    rebased = ts.rebase(full.to_specs())
    assert rebased.size() == 4
    assert len(rebased.novel) == 1 and len(rebased.upstream) == 3
    assert all(rebased.has(Addr.of(c)) for c in [*TEST_CHUNKS, b"novel"])


def test_rebase_dedups_names_and_reuses_open_sources() -> None:
    persister = MemoryTablePersister()
    ts = TableSet(persister, Stats()).prepend(memtable_of(TEST_CHUNKS, 256)).flatten()
    specs = ts.to_specs()
    rebased = ts.rebase(specs + specs)
    assert rebased.size() == 1
    assert rebased.upstream[0] is ts.upstream[0]


def test_physical_len() -> None:
    ts = _empty_set().prepend(memtable_of(TEST_CHUNKS[:1], 256)).prepend(memtable_of(TEST_CHUNKS[1:], 256))
    assert ts.physical_len() == 12 + 28 + 27 + 56 == 123
    assert ts.physical_len() > index_size(3)


def test_has_many_and_get_many_across_sources() -> None:
    ts = _empty_set().prepend(memtable_of(TEST_CHUNKS[:1], 256)).prepend(memtable_of(TEST_CHUNKS[1:], 256))
    wanted = [Addr.of(c) for c in TEST_CHUNKS] + [Addr.of(b"absent")]
    assert ts.has_many(wanted) == [Addr.of(b"absent")]
    found: dict[bytes, bytes] = {}
    assert ts.get_many(wanted, found) == [Addr.of(b"absent")]
    assert found == {Addr.of(c): c for c in TEST_CHUNKS}
    assert ts.count() == 3 and ts.uncompressed_len() == 21
