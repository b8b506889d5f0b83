"""NomsBlockStore scenarios: Go's block_store_test.go and root_tracker_test.go (NBS-FORMAT.md 8, 14.1-14.3)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from nbs.addr import EMPTY_ADDR, Addr
from nbs.conjoiner import Conjoiner, InlineConjoiner
from nbs.errors import ChunkError, StoreFullError, StoreNotFoundError
from nbs.factory import new_local_store
from nbs.manifest import Hook, Manifest, ManifestContents, TableSpec
from nbs.manifest_cache import ManifestCache
from nbs.manifest_manager import ManifestLocks, ManifestManager
from nbs.memory_manifest import MemoryManifest
from nbs.memory_table_persister import MemoryTablePersister
from nbs.stats import Stats
from nbs.store import NomsBlockStore
from nbs.table_persister import TablePersister
from nbs.table_set import TableSet
from tests.helpers import TEST_CHUNKS, memtable_of, random_chunk

MT = 256


# --- local-store suite (TestBlockStoreSuite) ----------------------------------------------------

@pytest.fixture
def store_dir(tmp_path: Path) -> str:
    return str(tmp_path)


@pytest.fixture
def store(store_dir: str) -> NomsBlockStore:
    return new_local_store(store_dir, MT)


def test_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError):
        new_local_store(str(tmp_path / "does-not-exist"), MT)


def test_not_dir(tmp_path: Path) -> None:
    f = tmp_path / "path-exists-but-is-a-file"
    f.write_text("")
    with pytest.raises(StoreNotFoundError):
        new_local_store(str(f), MT)


def test_put(store: NomsBlockStore) -> None:
    h = store.put(b"abc")
    assert str(h) == "rmnjb8cjc5tblj21ed4qs821649eduie"
    assert store.commit(h, store.root())
    assert store.get(h) == b"abc"
    assert store.put_count == 1
    assert store.put(b"abc") == h
    assert store.get(h) == b"abc"
    assert store.commit(h, store.root())
    assert store.put_count == 2


def test_put_many(store: NomsBlockStore) -> None:
    a, d = store.put(b"abc"), store.put(b"def")
    assert store.commit(a, store.root())
    assert store.get(a) == b"abc" and store.get(d) == b"def"
    assert store.put_count == 2


def test_stats_summary(store: NomsBlockStore) -> None:
    a = store.put(b"abc")
    store.put(b"def")
    store.commit(a, store.root())
    summary = store.stats_summary()
    assert str(a) in summary and summary != "Unsupported"
    assert summary == f"Root: {a}; Chunk Count 2; Physical Bytes 74 B"  # 2 records of 9 bytes + 2 x 28 index


def test_put_more_than_memtable(store: NomsBlockStore) -> None:
    chunks = [random_chunk(MT // 2 + 1) for _ in range(2)]
    addrs = [store.put(c) for c in chunks]
    assert store.commit(addrs[0], store.root())
    assert [store.get(a) for a in addrs] == chunks
    assert store.put_count == 2
    assert len(store.table_set.to_specs()) == 2


def test_get_many(store: NomsBlockStore) -> None:
    chunks = [random_chunk(MT // 2 + 1), random_chunk(MT // 2 + 1), b"abc"]
    addrs = [store.put(c) for c in chunks]
    assert store.commit(addrs[0], store.root())
    assert store.get_many(addrs) == dict(zip(addrs, chunks))


def test_has_many(store: NomsBlockStore) -> None:
    a, d = store.put(b"abc"), store.put(b"def")
    assert store.commit(a, store.root())
    assert store.has_many([a, d, Addr.of(b"ghi")]) == {Addr.of(b"ghi")}


def test_extract_chunks(store: NomsBlockStore) -> None:
    chunks = [random_chunk(MT // 2 + 1) for _ in range(2)]
    for c in chunks:
        store.put(c)
    assert list(store.extract_chunks()) == [(Addr.of(c), c) for c in chunks]


def test_flush_optimistic_lock_fail(store: NomsBlockStore, store_dir: str) -> None:
    root0 = EMPTY_ADDR
    interloper = new_local_store(store_dir, MT)
    a = interloper.put(b"abc")
    assert interloper.commit(root0, root0)
    d = store.put(b"def")
    assert store.commit(root0, root0)
    assert store.get(d) == b"def" and store.get(a) == b"abc"
    assert interloper.commit(a, root0)
    assert not store.commit(d, root0)
    assert store.root() == a
    assert store.commit(d, store.root())


def test_rebase_on_no_op_flush(store: NomsBlockStore, store_dir: str) -> None:
    interloper = new_local_store(store_dir, MT)
    a = interloper.put(b"abc")
    assert interloper.commit(a, interloper.root())
    assert not store.has(a) and store.root() == EMPTY_ADDR
    assert store.commit(EMPTY_ADDR, EMPTY_ADDR)
    assert store.get(a) == b"abc" and store.has(a)


def test_put_with_rebase(store: NomsBlockStore, store_dir: str) -> None:
    interloper = new_local_store(store_dir, MT)
    a = interloper.put(b"abc")
    assert interloper.commit(EMPTY_ADDR, EMPTY_ADDR)
    d = store.put(b"def")
    assert store.get(d) == b"def" and not store.has(a)
    store.rebase()
    assert store.get(d) == b"def" and store.get(a) == b"abc"
    assert interloper.commit(a, EMPTY_ADDR)
    assert store.root() == EMPTY_ADDR
    store.rebase()
    assert store.commit(d, store.root())
    assert not interloper.has(d)
    interloper.rebase()
    assert interloper.get(d) == b"def"


def test_get_non_existing(store: NomsBlockStore) -> None:
    assert store.get(Addr.parse("11111111111111111111111111111111")) is None


def test_put_rejects_empty_and_oversized_chunks(store: NomsBlockStore) -> None:
    with pytest.raises(ChunkError):
        store.put(b"")
    with pytest.raises(ChunkError, match="larger than the memtable"):
        store.put(bytes(MT + 1))
    assert store.put_count == 0 and store.memtable is None


# --- stores over in-memory fakes ------------------------------------------------------------------

def make_store(manifest: Manifest | None = None, persister: TablePersister | None = None,
               cache_size: int = 0, locks: ManifestLocks | None = None, memtable_size: int = 0,
               conjoiner: Conjoiner | None = None) -> NomsBlockStore:
    manager = ManifestManager(manifest or MemoryManifest(), ManifestCache(cache_size), locks or ManifestLocks.create())
    return NomsBlockStore(manager, persister or MemoryTablePersister(), conjoiner or InlineConjoiner(),
                          memtable_size)


def interloper_write(fm: MemoryManifest, p: MemoryTablePersister, root_chunk: bytes, *chunks: bytes) -> None:
    src = p.persist(memtable_of([*chunks, root_chunk], 1024), None, Stats())
    fm.set(ManifestContents("7.18", Addr.of(b"locker"), Addr.of(root_chunk), (TableSpec(src.name, src.count()),)))


def test_zero_value() -> None:
    s = make_store()
    assert s.root() == EMPTY_ADDR and s.version() == "7.18"


def test_version_and_commit_of_unput_root() -> None:
    s = make_store()
    assert s.commit(Addr.of(b"new root"), EMPTY_ADDR)
    assert s.version() == "7.18" and s.root() == Addr.of(b"new root")


def test_rebase() -> None:
    fm, p = MemoryManifest(), MemoryTablePersister()
    s = make_store(fm, p)
    interloper_write(fm, p, b"new root", *TEST_CHUNKS)
    assert s.root() == EMPTY_ADDR and s.version() == "7.18"
    s.rebase()
    assert s.root() == Addr.of(b"new root")
    assert all(s.has(Addr.of(c)) for c in [*TEST_CHUNKS, b"new root"])


def test_commit() -> None:
    s = make_store()
    h1 = s.put(b"new root")
    assert s.commit(h1, EMPTY_ADDR) and s.has(h1) and s.root() == h1
    h2 = s.put(b"newer root")
    assert s.commit(h2, h1) and s.root() == h2 and s.has(h1) and s.has(h2)


def test_manifest_appears_after_construction() -> None:
    fm, p = MemoryManifest(), MemoryTablePersister()
    s = make_store(fm, p)
    interloper_write(fm, p, b"new root", *TEST_CHUNKS)
    assert s.root() == EMPTY_ADDR and s.version() == "7.18"


def test_manifest_first_write_by_other_process() -> None:
    fm, p = MemoryManifest(), MemoryTablePersister()
    interloper_write(fm, p, b"new root", *TEST_CHUNKS)
    s = make_store(fm, p)
    assert s.root() == Addr.of(b"new root") and s.version() == "7.18"
    assert all(s.has(Addr.of(c)) for c in TEST_CHUNKS)


def test_capped_memory_persister_refuses_tables_past_its_cap() -> None:
    p = MemoryTablePersister(max_bytes=4096)
    first, second = random_chunk(1000), random_chunk(1000)
    table = p.persist(memtable_of([first]), None, Stats())
    one = p.held_bytes
    p.persist(memtable_of([second]), None, Stats())
    assert one > 1000 and p.held_bytes > one
    with pytest.raises(StoreFullError, match="cap of 4096"):
        p.persist(memtable_of([random_chunk(3000)]), None, Stats())
    held = p.held_bytes
    p.persist(memtable_of([first]), None, Stats())  # the same table again is not counted twice
    assert p.held_bytes == held
    assert p.open(table.name, 1, Stats()).count() == 1  # what it held is intact


def test_commit_optimistic_lock_fail() -> None:
    fm, p = MemoryManifest(), MemoryTablePersister()
    s = make_store(fm, p)
    interloper_write(fm, p, b"new root", *TEST_CHUNKS)
    assert not s.commit(Addr.of(b"new root 2"), EMPTY_ADDR)
    assert all(s.has(Addr.of(c)) for c in TEST_CHUNKS)
    assert s.commit(Addr.of(b"new root 2"), Addr.of(b"new root"))


def test_manifest_preemptive_optimistic_lock_fail() -> None:
    fm, p = MemoryManifest(), MemoryTablePersister()
    manager = ManifestManager(fm, ManifestCache(8 << 20), ManifestLocks.create())
    store = NomsBlockStore(manager, p, InlineConjoiner(), 0)
    interloper = NomsBlockStore(manager, p, InlineConjoiner(), 0)
    h = interloper.put(b"hello")
    assert interloper.commit(h, EMPTY_ADDR)
    g = store.put(b"goodbye")
    assert store.memtable is not None
    assert not store.commit(g, EMPTY_ADDR)
    assert store.memtable is not None  # doomed by the cache before persisting
    assert store.commit(g, store.root())
    assert store.memtable is None and store.root() == g and store.version() == "7.18"


class PreemptManifest(Manifest):
    """Runs ``pre_update`` at the start of every update, then delegates."""

    def __init__(self, inner: Manifest, pre_update: Callable[[], None] | None = None) -> None:
        self.inner = inner
        self.pre_update = pre_update
        self.updates = 0

    def name(self) -> str:
        return self.inner.name()

    def parse_if_exists(self, stats: Stats, read_hook: Hook | None = None) -> ManifestContents | None:
        return self.inner.parse_if_exists(stats, read_hook)

    def update(self, last_lock: Addr, new: ManifestContents, stats: Stats,
               write_hook: Hook | None = None) -> ManifestContents:
        self.updates += 1
        if self.pre_update is not None:
            self.pre_update()
        return self.inner.update(last_lock, new, stats, write_hook)


def test_commit_locks_out_fetch() -> None:
    wrapped = PreemptManifest(MemoryManifest("foo"))
    manager = ManifestManager(wrapped, ManifestCache(8 << 20), ManifestLocks.create())
    store = NomsBlockStore(manager, MemoryTablePersister(), InlineConjoiner(), 0)
    fetched: list[ManifestContents | None] = []
    fetcher = threading.Thread(target=lambda: fetched.append(manager.fetch(Stats())))
    wrapped.pre_update = fetcher.start
    h = store.put(b"new root")
    assert store.commit(h, store.root())
    fetcher.join()
    assert fetched[0] is not None and fetched[0].root == store.root() == h


def test_serialize_commits() -> None:
    inner = MemoryManifest("foo")
    cache, locks, p = ManifestCache(8 << 20), ManifestLocks.create(), MemoryTablePersister()
    store_side = PreemptManifest(inner)
    interloper_side = PreemptManifest(inner)
    store = NomsBlockStore(ManifestManager(store_side, cache, locks), p, InlineConjoiner(), 0)
    interloper = NomsBlockStore(ManifestManager(interloper_side, cache, locks), p, InlineConjoiner(), 0)
    results: list[bool] = []

    def interlope() -> None:
        interloper.put(b"interloper")
        results.append(interloper.commit(interloper.root(), interloper.root()))

    thread = threading.Thread(target=interlope)
    store_side.pre_update = thread.start
    store.put(b"store")
    assert store.commit(store.root(), store.root())
    thread.join()
    assert results == [True]
    assert store_side.updates + interloper_side.updates == 2
    assert interloper.has(Addr.of(b"store")) and interloper.has(Addr.of(b"interloper"))


# --- conjoin on commit (TestBlockStoreConjoinOnCommit) -----------------------------------------

class CannedConjoiner(Conjoiner):
    """Conjoins exactly as told: each entry names how many leading tables to merge."""

    def __init__(self, fm: MemoryManifest, plans: list[int]) -> None:
        self.fm = fm
        self.plans = list(plans)
        self.runs = 0

    def conjoin_required(self, tables: TableSet) -> bool:
        return bool(self.plans)

    def conjoin(self, upstream: ManifestContents, updater: object, persister: TablePersister,
                stats: Stats) -> ManifestContents:
        n = self.plans.pop(0)
        self.runs += 1
        sources = [persister.open(s.name, s.chunk_count, stats) for s in upstream.specs]
        joined = persister.conjoin_all(sources[:n], stats)
        specs = [TableSpec(joined.name, joined.count()), *upstream.specs[n:]]
        new = ManifestContents.for_commit(upstream.root, specs)
        assert self.fm.update(upstream.lock, new, stats) == new
        return new


def _conjoin_setup(sizes: list[int]) -> tuple[MemoryManifest, MemoryTablePersister, list[bytes], ManifestContents]:
    fm, p = MemoryManifest(), MemoryTablePersister()
    chunks: list[bytes] = []
    specs = []
    for i, size in enumerate(sizes):
        table_chunks = [bytes([i, j]) for j in range(size)]
        chunks += table_chunks
        src = p.persist(memtable_of(table_chunks), None, Stats())
        specs.append(TableSpec(src.name, src.count()))
    contents = ManifestContents("7.18", Addr.of(b"\xbe"), Addr.of(b"\xef"), tuple(specs))
    fm.set(contents)
    return fm, p, chunks, contents


def test_no_conjoin() -> None:
    s = make_store(memtable_size=MT)
    h = s.put(b"gnu")
    assert s.commit(h, EMPTY_ADDR) and s.has(h)


@pytest.mark.parametrize("sizes,plans", [([1, 1, 3, 7], [2]), ([1, 1, 3, 7, 13], [2, 4])])
def test_conjoin_on_commit(sizes: list[int], plans: list[int]) -> None:
    fm, p, chunks, contents = _conjoin_setup(sizes)
    conjoiner = CannedConjoiner(fm, plans)
    s = make_store(fm, p, memtable_size=MT, conjoiner=conjoiner)
    h = s.put(b"gnu")
    assert s.commit(h, contents.root)
    assert conjoiner.runs == len(plans)
    assert s.has(h) and all(s.has(Addr.of(c)) for c in chunks)
    stored = fm.parse_if_exists(Stats())
    assert stored is not None and stored.root == h
    assert len(stored.specs) == len(sizes) - sum(n - 1 for n in plans) + 1


def test_inline_conjoin_keeps_table_count_bounded(tmp_path: Path) -> None:
    s = new_local_store(str(tmp_path), MT, max_tables=4)
    addrs = []
    for i in range(12):
        addrs.append(s.put(b"chunk %d" % i))
        assert s.commit(addrs[-1], s.root())
        assert s.table_set.size() <= 5
    stats = s.stats()
    assert stats.conjoin_latency.samples >= 2
    reopened = new_local_store(str(tmp_path), MT)
    assert reopened.root() == addrs[-1]
    assert all(reopened.get(a) == b"chunk %d" % i for i, a in enumerate(addrs))
