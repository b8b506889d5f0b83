"""The daemon's LMDB chunk cache: visibility by table, FIFO eviction, budget, damage."""

import os
from pathlib import Path

from nbsclient import cache_record
from nbsclient.fast_cache import ReadOnlyCache
from nbsd.cache import ChunkCache, stored_size
from tests.helpers import damage_cache_entry

T1, T2 = b"1" * 20, b"2" * 20


def items(n: int, size: int = 3000, table: bytes = T1) -> list[tuple[bytes, bytes, bytes]]:
    return [(os.urandom(20), os.urandom(size), table) for _ in range(n)]


def test_visibility_follows_tables(tmp_path: Path) -> None:
    cache = ChunkCache(str(tmp_path / "c"), 8 << 20)
    batch = items(10)
    cache.put_many(batch)
    addrs = [a for a, _, _ in batch]
    found: dict[bytes, bytes] = {}
    assert cache.get_many(addrs, {T1}, found) == [] and len(found) == 10
    assert cache.get_many(addrs, {T2}, {}) == addrs
    assert cache.counters.hidden == 10
    cache.put_many([(a, c, T2) for a, c, _ in batch[:3]])  # the same chunks found in another table
    seen: dict[bytes, bytes] = {}
    assert len(cache.get_many(addrs, {T2}, seen)) == 7 and len(seen) == 3
    assert cache.entries() == 10
    cache.close()


def test_fifo_eviction_keeps_the_budget(tmp_path: Path) -> None:
    budget = 1 << 20
    cache = ChunkCache(str(tmp_path / "c"), budget)
    batch = items(600)
    for start in range(0, 600, 50):
        cache.put_many(batch[start:start + 50])
        assert cache.total_bytes() <= budget
    assert cache.counters.evictions > 0
    survivors: dict[bytes, bytes] = {}
    cache.get_many([a for a, _, _ in batch], {T1}, survivors)
    oldest_kept = min(i for i, (a, _, _) in enumerate(batch) if a in survivors)
    assert all(batch[i][0] in survivors for i in range(oldest_kept, 600))  # first in, first out
    assert len(survivors) * stored_size(3000 + 38) <= budget
    cache.close()


def test_survives_reopen_and_shrinks_to_a_smaller_budget(tmp_path: Path) -> None:
    path = str(tmp_path / "c")
    cache = ChunkCache(path, 4 << 20)
    cache.put_many(items(500))
    before, cache_id = cache.total_bytes(), cache.cache_id
    cache.close()
    again = ChunkCache(path, 4 << 20)
    assert again.total_bytes() == before and again.cache_id == cache_id
    again.close()
    smaller = ChunkCache(path, 1 << 20)
    assert smaller.total_bytes() <= 1 << 20
    smaller.close()


def test_damaged_entries_are_dropped(tmp_path: Path) -> None:
    cache = ChunkCache(str(tmp_path / "c"), 8 << 20)
    (a, chunk, t), (b, other, _) = items(2)
    cache.put_many([(a, chunk, t), (b, other, t)])
    damage_cache_entry(cache, a)
    found: dict[bytes, bytes] = {}
    assert cache.get_many([a, b], {T1}, found) == [a]
    assert found == {b: other} and cache.counters.corrupt == 1
    assert cache.entries() == 1
    cache.put_many([(a, chunk, t)])
    assert cache.get_many([a], {T1}, {}) == []
    cache.close()


def test_unopenable_cache_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "c"
    path.mkdir()
    (path / "data.mdb").write_bytes(b"this is not an LMDB file" * 1000)
    cache = ChunkCache(str(path), 2 << 20)
    cache.put_many(items(3))
    assert cache.entries() == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("c.broken-")]
    cache.close()


def test_client_reads_the_daemons_cache_read_only(tmp_path: Path) -> None:
    cache = ChunkCache(str(tmp_path / "c"), 8 << 20)
    batch = items(20)
    cache.put_many(batch)
    info = cache.info
    cache.close()  # LMDB allows one open per process; the daemon is another process in real use
    reader = ReadOnlyCache.try_open({"path": info.path, "map_size": info.map_size,
                                     "max_readers": info.max_readers, "cache_id": info.cache_id})
    assert reader is not None
    found: dict[bytes, bytes] = {}
    assert reader.get_many([a for a, _, _ in batch], {T1}, found) == []
    assert found == {a: c for a, c, _ in batch}
    assert reader.get(batch[0][0], {T2}) is None
    assert reader.take_report()["hits"] == 20
    assert cache_record.verify(batch[0][0], bytes(cache_record.encode(batch[0][0], 0, [T1], b"x"))) == 1
    assert ReadOnlyCache.try_open({"path": str(tmp_path / "missing"), "map_size": 1 << 20,
                                   "max_readers": 8, "cache_id": "x"}) is None


def test_peek_reads_without_counting_or_dropping(tmp_path: Path) -> None:
    cache = ChunkCache(str(tmp_path / "c"), 8 << 20)
    (a, chunk, t), (b, other, _) = items(2)
    cache.put_many([(a, chunk, t), (b, other, t)])
    assert cache.peek(a, {T1}) == chunk and cache.peek(a, {T1}, b"head") == b"head" + chunk
    assert cache.peek(a, {T2}) is None and cache.peek(os.urandom(20), {T1}) is None
    damage_cache_entry(cache, b)
    assert cache.peek(b, {T1}) is None
    assert (cache.counters.hits, cache.counters.misses, cache.counters.hidden, cache.counters.corrupt) == (0, 0, 0, 0)
    assert cache.entries() == 2  # the damaged entry is left for get_many to count and drop
    cache.close()


def test_hidden_entries_are_rehomed_to_a_table_the_store_holds(tmp_path: Path) -> None:
    cache = ChunkCache(str(tmp_path / "c"), 8 << 20)
    batch = items(10)
    cache.put_many(batch)
    addrs = [a for a, _, _ in batch]
    asked: list[list[bytes]] = []

    def holders(hidden: list[bytes]) -> dict[bytes, bytes]:
        """The store (view {T2}) holds the first six chunks, in table T2."""
        asked.append(hidden)
        return {a: T2 for a in hidden if a in addrs[:6]}

    found: dict[bytes, bytes] = {}
    assert sorted(cache.get_many(addrs, {T2}, found, holders=holders)) == sorted(addrs[6:])
    assert found == {a: c for a, c, _ in batch[:6]} and sorted(asked[0]) == sorted(addrs)
    assert (cache.counters.rehomed, cache.counters.hidden, cache.counters.hits) == (6, 4, 6)
    again: dict[bytes, bytes] = {}
    assert sorted(cache.get_many(addrs, {T2}, again)) == sorted(addrs[6:])  # re-tagged: plain hits now
    assert again == found
    assert cache.get_many(addrs, {T1}, {}) == []  # still served to stores that hold the old table
    cache.close()
