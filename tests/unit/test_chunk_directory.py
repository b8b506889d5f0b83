"""The chunk directory: one hash index over many tables (collisions, live sets, growth, rebuild, fork)."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

from nbs.addr import Addr
from nbs.chunk_directory import MIN_SLOTS, ChunkDirectory, View
from nbs.chunk_source import FILE_BLOCK_SIZE, BytesReaderAt, Located, TableChunkSource
from nbs.factory import SharedCaches, local_store_with
from nbs.index_cache import IndexCache
from nbs.manifest import TableSpec
from nbs.memory_table_persister import MemoryTablePersister
from nbs.stats import Stats
from nbs.table_index import parse_table_index
from nbs.table_set import TableSet
from nbs.table_writer import build_table
from tests.forking import in_child
from tests.helpers import memtable_of, table_source


def crafted(key: int, tail: int = 0) -> bytes:
    """An address whose first 8 bytes (the directory's key) are ``key``."""
    return key.to_bytes(8, "big") + tail.to_bytes(12, "big")


def table_of(addrs: list[bytes]) -> TableChunkSource:
    """A table holding, for each address, a chunk that names it (addresses need not be hashes here)."""
    table = build_table((Addr(a), b"chunk of " + a) for a in addrs)
    index = parse_table_index(table.data, str(table.name), len(table.data))
    return TableChunkSource(table.name, index, BytesReaderAt(table.data), FILE_BLOCK_SIZE)


def read(directory: ChunkDirectory, addr: bytes, live: View) -> bytes | None:
    located = directory.locate(addr, live)
    if located is None:
        return None
    table, ordinal = located
    return table.get_ordinal(ordinal, addr)


def test_slot_collisions_and_wraparound_probe_on() -> None:
    mask = MIN_SLOTS - 1
    colliding = [crafted(mask + i * MIN_SLOTS) for i in range(5)]  # all in the last slot: probing wraps to 0
    others = [crafted(i * MIN_SLOTS) for i in range(1, 4)]  # the slots the wrapped probe runs through
    directory = ChunkDirectory()
    live = directory.add([table_of(colliding[:3] + others), table_of(colliding[3:])])
    for a in colliding + others:
        assert read(directory, a, live) == b"chunk of " + a
    assert directory.locate(crafted(mask + 9 * MIN_SLOTS), live) is None
    assert directory.absent([crafted(7)] + colliding, live) == [crafted(7)]


def test_prefix_collisions_are_told_apart_by_the_suffix() -> None:
    same = [crafted(42, tail) for tail in (1, 2, 3)]
    directory = ChunkDirectory()
    live = directory.add([table_of(same[:2]), table_of(same[2:])])
    for a in same:
        assert read(directory, a, live) == b"chunk of " + a
    assert directory.locate(crafted(42, 4), live) is None
    groups, missing = directory.locate_many([*same, crafted(42, 5)], live)
    assert missing == [crafted(42, 5)]
    assert sorted(a for located in groups.values() for a in located.addrs) == same
    assert sorted(len(located.ordinals) for located in groups.values()) == [1, 2]


def test_many_tables_grow_the_slots_and_every_chunk_is_found() -> None:
    tables = [table_source([b"table %d chunk %d" % (t, c) for c in range(7)]) for t in range(300)]
    charged: list[int] = []
    directory = ChunkDirectory(charged.append)
    first = directory.add(tables[:1])
    live = directory.add(tables)
    assert directory.table_count == 300 and directory.entry_count == 2100
    assert sum(charged) == directory.memory_size > 2 * 2100 * 12
    for t in (0, 150, 299):
        for c in range(7):
            chunk = b"table %d chunk %d" % (t, c)
            assert read(directory, bytes(Addr.of(chunk)), live) == chunk
    # a view taken before the growth still reads its own tables, and only them
    assert read(directory, bytes(Addr.of(b"table 0 chunk 3")), first) == b"table 0 chunk 3"
    assert directory.locate(bytes(Addr.of(b"table 1 chunk 3")), first) is None
    del directory
    gc.collect()
    assert sum(charged) == 0


def test_tables_outside_the_live_set_are_not_served() -> None:
    shared = b"in both tables"
    old, new = table_source([shared, b"only old"]), table_source([shared, b"only new"])
    directory = ChunkDirectory()
    directory.add([old])
    live = directory.add([new])
    located = directory.locate(bytes(Addr.of(shared)), live)
    assert located is not None and located[0] is new
    assert directory.locate(bytes(Addr.of(b"only old")), live) is None
    assert directory.add([old, new]) == {0: old, 1: new}  # adding again adds nothing


def test_a_batch_probing_past_a_table_outside_the_view_still_finds_the_chunks_after_it() -> None:
    stale, live_table = table_of([crafted(43, 2)]), table_of([crafted(42, 1), crafted(43, 1)])
    directory = ChunkDirectory()
    directory.add([stale])  # its entry comes first in the probe of prefix 43
    live = directory.add([live_table])
    # 42/9 probes the live table and misses; 43/1 probes past the stale table's entry, then finds its own
    groups, missing = directory.locate_many([crafted(42, 9), crafted(43, 1), crafted(43, 2)], live)
    assert missing == [crafted(42, 9), crafted(43, 2)]
    assert list(groups) == [live_table] and groups[live_table].addrs == [crafted(43, 1)]
    assert directory.locate(crafted(43, 2), live) is None


def test_what_is_no_address_is_held_by_no_table() -> None:
    held = [crafted(42, 1), crafted(43, 1)]
    table = table_of(held)
    directory = ChunkDirectory()
    live = directory.add([table])
    short, long = held[1][:15], held[1] + b"x"  # one a prefix of a held address, one extending it
    groups, missing = directory.locate_many([short, held[0], long, held[1]], live)
    assert missing == [short, long] and groups[table].addrs == held
    assert directory.locate(short, live) is None and directory.locate(long, live) is None


def test_located_chunks_in_file_order() -> None:
    in_order = Located([1, 4, 4, 9], [b"a", b"b", b"c", b"d"])
    assert in_order.in_file_order() is in_order
    shuffled = Located([9, 1, 4, 4], [b"d", b"a", b"b", b"c"]).in_file_order()
    assert shuffled.ordinals == [1, 4, 4, 9] and shuffled.addrs == [b"a", b"b", b"c", b"d"]


def test_worn_when_stale_entries_outnumber_live_ones() -> None:
    small = [table_source([b"s%d-%d" % (t, c) for c in range(10)]) for t in range(3)]
    big = table_source([b"s%d-%d" % (t, c) for t in range(3) for c in range(10)])
    directory = ChunkDirectory()
    directory.add(small)
    assert not directory.worn(directory.add([big]))  # 30 stale, 30 live
    assert directory.worn(directory.add([small[0]]))  # 50 stale, 10 live


def test_table_set_rebuilds_its_directory_after_conjoin_and_reads_stay_right() -> None:
    persister = MemoryTablePersister()
    chunks = [b"chunk %d" % i for i in range(60)]
    ts = TableSet(persister, Stats())
    for i in range(0, 60, 10):
        ts = ts.prepend(memtable_of(chunks[i:i + 10])).flatten()
    directory = ts.directory
    conjoined = persister.conjoin_all(ts.upstream[2:], Stats())  # the oldest four: chunks 0-39
    specs = ts.to_specs()
    keep = ts.rebase([specs[0], specs[1], *ts.to_specs()[2:]])
    assert keep.directory is directory  # same tables: reused
    merged = ts.rebase([*specs[:2], TableSpec(conjoined.name, conjoined.count())])
    assert merged.directory is directory  # 40 stale entries, 60 live: still reused
    again = merged.rebase([TableSpec(conjoined.name, conjoined.count())])
    assert again.directory is not directory  # 60 stale, 40 live: a fresh one
    for view in (ts, merged):
        found: dict[bytes, bytes] = {}
        assert view.get_many([bytes(Addr.of(c)) for c in chunks], found) == []
        assert sorted(found.values()) == sorted(chunks)
    assert again.has_many([bytes(Addr.of(c)) for c in chunks]) == [bytes(Addr.of(c)) for c in chunks[40:]]
    assert again.get(bytes(Addr.of(chunks[30]))) == chunks[30]
    assert again.get(bytes(Addr.of(chunks[50]))) is None
    assert set(again.upstream_holders([bytes(Addr.of(c)) for c in chunks])) == {
        bytes(Addr.of(c)) for c in chunks[:40]}
    assert set(again.upstream_holders([bytes(Addr.of(chunks[0]))]).values()) == {conjoined.name}


def test_directory_memory_counts_against_the_index_cache() -> None:
    cache = IndexCache(1 << 20)
    table = table_source([b"x%d" % i for i in range(2000)])
    cache.put(table.name, table.index())
    assert len(cache) == 1
    directory = ChunkDirectory(cache.charge)
    directory.add([table])
    assert cache.total_size == table.index().memory_size + directory.memory_size
    cache.charge(1 << 20)  # more held outside than the budget: the cached index makes room
    assert len(cache) == 0
    cache.charge(-(1 << 20))
    del directory
    gc.collect()
    assert cache.total_size == 0


def test_a_forked_child_adds_tables_even_if_the_parent_held_the_lock() -> None:
    directory = ChunkDirectory()
    live = directory.add([table_source([b"parent"])])
    extra = table_source([b"child"])

    def child() -> bytes | None:
        child_live = directory.add([extra]) | live
        return read(directory, bytes(Addr.of(b"child")), child_live)

    directory._lock.acquire()  # as if another thread were adding a table at the fork
    try:
        assert in_child(child, timeout=20) == b"child"
    finally:
        directory._lock.release()
    assert read(directory, bytes(Addr.of(b"parent")), live) == b"parent"
    assert directory.table_count == 1  # the child's table stayed in the child


def test_stores_of_one_location_share_a_directory_and_read_through_their_own_tables(tmp_path: Path) -> None:
    caches = SharedCaches.create()
    a = local_store_with(str(tmp_path), caches, sync=False)
    chunks = [b"shared %d" % i for i in range(30)]
    for i in range(0, 30, 10):
        addrs = [a.put(c) for c in chunks[i:i + 10]]
        assert a.commit(addrs[-1], a.root())
    b = local_store_with(str(tmp_path), caches, sync=False)
    (tmp_path / "other").mkdir()
    other = local_store_with(str(tmp_path / "other"), caches, sync=False)
    assert b.table_set.directory is a.table_set.directory
    assert other.table_set.directory is not a.table_set.directory
    a.close()
    reads = b.stats().file_read_latency.samples
    assert b.get_many([bytes(Addr.of(c)) for c in chunks]) == {bytes(Addr.of(c)): c for c in chunks}
    assert b.stats().file_read_latency.samples > reads  # b's own readers, not a's


def test_readers_of_an_older_view_never_miss_while_tables_are_added() -> None:
    first = [table_source([b"first %d %d" % (t, c) for c in range(50)]) for t in range(4)]
    directory = ChunkDirectory()
    view = directory.add(first)
    wanted = [bytes(Addr.of(b"first %d %d" % (t, c))) for t in range(4) for c in range(50)]
    misses: list[int] = []
    adding = threading.Event()

    def reader() -> None:
        while not adding.is_set():
            misses.append(len(directory.absent(wanted, view)))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for t in range(200):  # grows the slots several times while the readers probe
        directory.add([table_source([b"later %d %d" % (t, c) for c in range(40)])])
    adding.set()
    for thread in threads:
        thread.join()
    assert misses and set(misses) == {0}
