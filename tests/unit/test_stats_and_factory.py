"""Stats sampling (TestStats, NBS-FORMAT.md 14.22) and the local factory (14.21)."""

from pathlib import Path

import pytest

from nbs.addr import EMPTY_ADDR, Addr
from nbs.conjoiner import InlineConjoiner
from nbs.errors import InvalidStoreNameError, StoreNotFoundError
from nbs.factory import LocalStoreFactory, new_local_store
from nbs.file_manifest import FileManifest, format_manifest
from nbs.manifest import ManifestContents, TableSpec
from nbs.stats import Histogram, Stats, Unit


def test_stats(tmp_path: Path) -> None:
    store = new_local_store(str(tmp_path), 256)
    st = store.stats()
    assert st.open_latency.samples == 1 and st.read_manifest_latency.samples == 1
    addrs = [store.put(c) for c in [b"abc", b"def", b"ghi"]]
    st = store.stats()
    assert st.put_latency.samples == 3 and st.persist_latency.samples == 0
    for a in addrs:
        store.has(a)
    st = store.stats()
    assert st.has_latency.samples == 3 and st.addresses_per_has.sum == 3
    for a in addrs:
        store.get(a)
    st = store.stats()
    assert st.get_latency.samples == 3 and st.file_read_latency.samples == 0 and st.chunks_per_get.sum == 3
    assert store.commit(store.root(), store.root())
    st = store.stats()
    assert st.write_manifest_latency.samples == 1 and st.commit_latency.samples == 1
    assert st.persist_latency.samples == 1 and st.chunks_per_persist.sum == 3
    assert st.bytes_per_persist.sum == 131
    for a in addrs:
        store.get(a)
    st = store.stats()
    assert st.file_read_latency.samples == 3 and st.file_bytes_per_read.sum == 27
    store.get_many(addrs)
    st = store.stats()
    assert st.file_read_latency.samples == 4 and st.file_bytes_per_read.sum == 54
    store._conjoiner = InlineConjoiner(2)  # Go's test swaps it the same way
    store.put(b"jkl")
    assert store.commit(store.root(), store.root())
    store.put(b"mno")
    assert store.commit(store.root(), store.root())
    assert store.stats().conjoin_latency.samples == 1


def test_histogram_buckets_and_errors() -> None:
    h = Histogram(Unit.BYTES)
    for v in (1, 2, 3, 1024):
        h.sample(v)
    assert h.buckets[0] == 1 and h.buckets[1] == 2 and h.buckets[10] == 1
    assert h.samples == 4 and h.sum == 1030 and h.mean() == 257.5
    with pytest.raises(ValueError):
        h.sample(0)
    merged = h.copy()
    merged.add(h)
    assert merged.samples == 8 and "Samples: 8" in str(merged)
    assert set(Stats().to_dict()) >= {"get_latency", "persist_latency", "write_manifest_latency"}


def test_local_store_factory(tmp_path: Path) -> None:
    factory = LocalStoreFactory(str(tmp_path), 0, 8)
    store = factory.create_store("db")
    h = store.put(b"\xff")
    assert store.commit(h, EMPTY_ADDR)
    contents = FileManifest(str(tmp_path / "db")).parse_if_exists(Stats())
    assert contents is not None and len(contents.specs) == 1
    table = contents.specs[0].name
    assert (tmp_path / "db" / str(table)).exists()
    clobbered = ManifestContents("7.18", Addr.of(b"jerk"), Addr.of(b"other root"), (TableSpec(table, 1),))
    (tmp_path / "db" / "manifest").write_text(format_manifest(clobbered))
    cached = factory.create_store_from_cache("db")
    assert cached is not None and cached.root() == h
    assert factory.create_store_from_cache("never-opened") is None
    assert factory.create_store("db").root() == Addr.of(b"other root")
    factory.close()


@pytest.mark.parametrize("name", ["", "*table", "../escape", "a/../../b", "/abs", "a//b", "x\x00y"])
def test_factory_rejects_bad_store_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidStoreNameError):
        LocalStoreFactory(str(tmp_path)).create_store(name)
    assert list(tmp_path.iterdir()) == []


def test_factory_needs_existing_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError):
        LocalStoreFactory(str(tmp_path / "missing"))
