"""Compaction plans and the conjoin policy (NBS-FORMAT.md 6.3, 7, 14.9, 14.10)."""

import pytest

from nbs.addr import Addr
from nbs.chunk_source import BytesReaderAt, ChunkSource, TableChunkSource
from nbs.conjoiner import choose_conjoinees, conjoin
from nbs.manifest import ManifestContents, TableSpec, generate_lock_hash
from nbs.memory_manifest import MemoryManifest
from nbs.memory_table_persister import MemoryTablePersister
from nbs.stats import Stats
from nbs.table_index import parse_table_index
from nbs.table_persister import plan_conjoin
from tests.helpers import TEST_CHUNKS, memtable_of, table_source


def test_plan_compaction() -> None:
    sources = [table_source(TEST_CHUNKS), table_source([b"red", b"blue"]), table_source([b"solo"])]
    plan = plan_conjoin(sources)
    assert [p.data_len for p in plan.sources] == [39, 19, 10]
    assert [p.source for p in plan.sources] == sources
    index = parse_table_index(plan.merged_index, "merged")
    assert index.chunk_count == 6 and index.total_uncompressed == 32
    reader = TableChunkSource(plan.name, index, BytesReaderAt(b""), 4096)
    for c in [*TEST_CHUNKS, b"red", b"blue", b"solo"]:
        assert reader.has(Addr.of(c))


def test_conjoined_table_equals_rewriting_the_chunks() -> None:
    persister = MemoryTablePersister()
    stats = Stats()
    sources = [persister.persist(memtable_of(TEST_CHUNKS), None, stats),
               persister.persist(memtable_of([b"red", b"blue"]), None, stats)]
    joined = persister.conjoin_all(sources, stats)
    rewritten = persister.persist(memtable_of([*TEST_CHUNKS, b"red", b"blue"]), None, stats)
    assert joined.name == rewritten.name
    assert persister.tables[bytes(joined.name)] == persister.tables[bytes(rewritten.name)]
    assert stats.bytes_per_conjoin.sum == len(persister.tables[bytes(joined.name)])


def test_conjoin_keeps_duplicates() -> None:
    persister = MemoryTablePersister()
    stats = Stats()
    sources = [persister.persist(memtable_of(TEST_CHUNKS), None, stats) for _ in range(3)]
    assert len({s.name for s in sources}) == 1
    joined = persister.conjoin_all(sources, stats)
    assert joined.count() == 9
    assert all(joined.has(Addr.of(c)) for c in TEST_CHUNKS)


class _Sized(ChunkSource):
    """Only count and name matter for choosing conjoinees."""

    def __init__(self, n: int, i: int) -> None:
        self.n = n
        self._name = Addr(i.to_bytes(20, "big"))

    @property
    def name(self) -> Addr:
        return self._name

    def count(self) -> int:
        return self.n

    uncompressed_len = has = get = has_many = get_many = extract = index = read_at = calc_reads = None  # type: ignore


CHOOSE_CASES = [
    ([1, 1, 1, 1, 1], [5]),
    ([1, 1, 1, 1, 5], [4, 5]),
    ([5, 5, 5], [15]),
    ([5, 6, 10, 11, 35, 64], [32, 35, 64]),
    ([1, 2, 4, 8, 16, 32, 64], [3, 4, 8, 16, 32, 64]),
    ([2, 3, 4, 8, 16, 32, 64], [129]),
]


@pytest.mark.parametrize("pre,post", CHOOSE_CASES)
def test_choose_conjoinees(pre: list[int], post: list[int]) -> None:
    conjoinees, keepers = choose_conjoinees([_Sized(n, i) for i, n in enumerate(pre)])
    assert sorted([sum(s.count() for s in conjoinees)] + [s.count() for s in keepers]) == post


def _make_test_srcs(sizes: list[int], persister: MemoryTablePersister) -> list[ChunkSource]:
    """One table per size; chunks are 4-byte counters continuing across tables."""
    counter = 0
    sources = []
    for size in sizes:
        chunks = [(counter + i).to_bytes(4, "big") for i in range(size)]
        counter += size
        sources.append(persister.persist(memtable_of(chunks, 256), None, Stats()))
    return sources


def _setup(pre: list[int]) -> tuple[MemoryTablePersister, MemoryManifest, ManifestContents, list[ChunkSource]]:
    persister = MemoryTablePersister()
    sources = _make_test_srcs(pre, persister)
    specs = tuple(TableSpec(s.name, s.count()) for s in sources)
    upstream = ManifestContents("7.18", Addr.of(b"lock"), Addr.of(b"root"), specs)
    manifest = MemoryManifest()
    manifest.set(upstream)
    return persister, manifest, upstream, sources


def _sorted_counts(contents: ManifestContents) -> list[int]:
    return sorted(s.chunk_count for s in contents.specs)


def _all_present(persister: MemoryTablePersister, contents: ManifestContents, sources: list[ChunkSource]) -> bool:
    opened = [persister.open(s.name, s.chunk_count, Stats()) for s in contents.specs]
    return all(any(o.has(a) for o in opened) for src in sources for a, _ in src.extract())


@pytest.mark.parametrize("pre,post", CHOOSE_CASES)
def test_conjoin_success(pre: list[int], post: list[int]) -> None:
    persister, manifest, upstream, sources = _setup(pre)
    result = conjoin(upstream, manifest, persister, Stats())
    stored = manifest.parse_if_exists(Stats())
    assert stored is not None and stored == result
    assert _sorted_counts(stored) == post
    assert stored.root == upstream.root
    assert stored.lock == generate_lock_hash(stored.root, stored.specs)
    assert _all_present(persister, stored, sources)


class _Interfering:
    """Every update first resets the manifest to what ``reset`` returns (another writer)."""

    def __init__(self, manifest: MemoryManifest, reset: ManifestContents) -> None:
        self.manifest = manifest
        self.reset = reset

    def update(self, last_lock: Addr, new: ManifestContents, stats: Stats) -> ManifestContents:
        self.manifest.set(self.reset)
        return self.manifest.update(last_lock, new, stats)


@pytest.mark.parametrize("pre,post", CHOOSE_CASES)
def test_conjoin_retry_reuses_the_conjoined_table(pre: list[int], post: list[int]) -> None:
    persister, manifest, upstream, sources = _setup(pre)
    extra = persister.persist(memtable_of([b"\xde\xad"]), None, Stats())
    reset = ManifestContents("7.18", Addr.of(b"lock2"), upstream.root,
                             upstream.specs + (TableSpec(extra.name, 1),))
    conjoined_before = len(persister.tables)
    result = conjoin(upstream, _Interfering(manifest, reset), persister, Stats())
    assert len(persister.tables) == conjoined_before + 1  # built once, reused by the retry
    assert result.lock != reset.lock and result == manifest.parse_if_exists(Stats())
    assert _sorted_counts(result) == sorted([1, *post])
    assert _all_present(persister, result, [*sources, extra])


@pytest.mark.parametrize("pre,post", CHOOSE_CASES)
def test_conjoin_gives_up_when_tables_dropped_upstream(pre: list[int], post: list[int]) -> None:
    persister, manifest, upstream, _ = _setup(pre)
    reset = ManifestContents("7.18", Addr.of(b"lock2"), upstream.root, upstream.specs[1:])
    result = conjoin(upstream, _Interfering(manifest, reset), persister, Stats())
    assert result == reset
    assert _sorted_counts(result) == sorted(pre[1:])
