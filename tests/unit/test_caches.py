"""Size-LRU, index cache, manifest cache and descriptor cache (NBS-FORMAT.md 9, 14.19, 14.20)."""

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nbs.addr import Addr
from nbs.fd_cache import FDCache
from nbs.index_cache import IndexCache
from nbs.manifest import ManifestContents, TableSpec
from nbs.manifest_cache import ManifestCache
from nbs.size_cache import SizeCache
from nbs.table_index import TableIndex, parse_table_index
from nbs.table_writer import build_table
from tests.helpers import TEST_CHUNKS



def test_contents_size() -> None:
    assert ManifestContents(vers="").size() == 40
    assert ManifestContents().size() == 44
    assert ManifestContents(specs=(TableSpec(Addr.of(b"t"), 1),)).size() == 68


def test_manifest_cache_get_and_put() -> None:
    cache = ManifestCache(2 * 40 + 8)
    a = ManifestContents(lock=Addr.of(b"lockA"))
    b = ManifestContents(lock=Addr.of(b"lockB"))
    cache.put("dbA", a, 1)
    cache.put("dbB", b, 2)
    assert cache.get("dbA") == (a, 1) and cache.get("dbB") == (b, 2)


def test_manifest_cache_drops_lru() -> None:
    empty = ManifestContents(vers="")
    cache = ManifestCache(5 * 40)
    for i in range(1, 10):
        cache.put(f"db{i}", empty, i)
        assert cache.total_size == min(i, 5) * 40
    assert all(cache.get(f"db{i}") is None for i in range(1, 5))
    assert all(cache.get(f"db{i}") is not None for i in range(5, 10))
    cache.get("db5")
    cache.put("novel", empty, 10)
    assert cache.get("db6") is None
    big = ManifestContents(vers="big version")
    assert big.size() == 51
    cache.put("big", big, 11)
    assert cache.get("db7") is None and cache.get("db8") is None
    assert all(cache.get(k) is not None for k in ["db9", "novel", "big"])


def test_manifest_cache_too_large_and_zero_size() -> None:
    small = ManifestCache(16)
    small.put("x", ManifestContents(vers=""), 1)
    assert small.get("x") is None
    zero = ManifestCache(0)
    zero.put("x", ManifestContents(vers=""), 1)
    assert zero.get("x") is None


def test_size_cache_evicts_and_calls_expiry() -> None:
    expired: list[str] = []
    cache: SizeCache[str, int] = SizeCache(10, lambda k, v: expired.append(k))
    assert cache.add("a", 4, 1) and cache.add("b", 4, 2)
    cache.get("a")
    cache.add("c", 4, 3)
    assert expired == ["b"] and cache.keys() == ["a", "c"]
    assert not cache.add("huge", 11, 0)
    assert cache.add("a", 4, 99) and cache.get("a") == 1  # re-add bumps, keeps value
    cache.drop("a")
    assert expired == ["b"] and cache.total_size == 4


def test_size_cache_put_replaces_value_and_size() -> None:
    expired: list[str] = []
    cache: SizeCache[str, int] = SizeCache(10, lambda k, v: expired.append(k))
    assert cache.put("a", 4, 1) and cache.put("b", 4, 2)
    assert cache.put("a", 6, 3) and cache.get("a") == 3
    assert cache.total_size == 10 and expired == []
    assert not cache.put("b", 11, 4)  # too large: the old value goes too, without expiry
    assert cache.get("b") is None and cache.total_size == 6 and expired == []
    assert cache.put("c", 5, 5)
    assert expired == ["a"] and cache.keys() == ["c"]


def test_manifest_cache_put_replaces_an_entry() -> None:
    cache = ManifestCache(1 << 10)
    old, new = ManifestContents(lock=Addr.of(b"old")), ManifestContents(vers="longer version", lock=Addr.of(b"new"))
    cache.put("db", old, 1)
    cache.put("db", new, 2)
    assert cache.get("db") == (new, 2) and cache.total_size == new.size()


def test_index_cache_loads_once_under_concurrency() -> None:
    t = build_table((Addr.of(c), c) for c in TEST_CHUNKS)
    cache = IndexCache(1024)
    loads = []
    barrier = threading.Barrier(4)

    def load():  # type: ignore[no-untyped-def]
        loads.append(1)
        return parse_table_index(t.data, "t")

    def worker() -> None:
        barrier.wait()
        cache.get_or_load(t.name, load)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(loads) == 1
    assert cache.total_size == parse_table_index(t.data, "t").memory_size  # charged once


class SlowFailure(Exception):
    """What a load that takes long to fail (S3 unreachable) raises."""


def _wait_until_blocked(threads: list[threading.Thread], deadline: float = 10.0) -> None:
    """Return once every thread sits in a ``threading`` wait (queued on a lock, condition or future)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        frames = sys._current_frames()
        if all(_in_threading_wait(frames.get(t.ident or 0)) for t in threads):
            return
        time.sleep(0.005)
    raise AssertionError("the callers never queued")


def _in_threading_wait(frame: object) -> bool:
    while frame is not None:
        code = frame.f_code  # type: ignore[attr-defined]
        if code.co_name == "wait" and code.co_filename == threading.__file__:
            return True
        frame = frame.f_back  # type: ignore[attr-defined]
    return False


def _first_then_queued(call: Callable[[], None], loading: threading.Event, queued: int) -> list[threading.Thread]:
    """Run ``call`` in a thread until its load starts, then in ``queued`` more that wait behind it."""
    first = threading.Thread(target=call)
    first.start()
    assert loading.wait(10)
    others = [threading.Thread(target=call) for _ in range(queued)]
    for th in others:
        th.start()
    _wait_until_blocked(others)
    return [first, *others]


def test_index_cache_callers_queued_behind_a_failing_load_share_its_failure() -> None:
    t = build_table((Addr.of(c), c) for c in TEST_CHUNKS)
    cache = IndexCache(1024)
    loading, fail = threading.Event(), threading.Event()
    loads: list[int] = []

    def failing_load() -> TableIndex:
        loads.append(1)
        loading.set()
        assert fail.wait(10)
        raise SlowFailure("s3 unreachable")

    outcomes: list[BaseException] = []

    def open_table() -> None:
        try:
            cache.get_or_load(t.name, failing_load)
        except SlowFailure as error:
            outcomes.append(error)

    threads = _first_then_queued(open_table, loading, 5)
    fail.set()
    for th in threads:
        th.join(10)
    assert len(loads) == 1  # one slow failure for all six, not six in turn
    assert len(outcomes) == 6 and all(error is outcomes[0] for error in outcomes)
    # The failure is not kept: the next open loads again, and succeeds.
    index = cache.get_or_load(t.name, lambda: parse_table_index(t.data, "t"))
    assert index.chunk_count == len(TEST_CHUNKS) and cache.get(t.name) is index


def test_index_cache_callers_queued_behind_a_load_get_its_index_even_when_it_is_too_large_to_keep() -> None:
    t = build_table((Addr.of(c), c) for c in TEST_CHUNKS)
    cache = IndexCache(1)
    loading, release = threading.Event(), threading.Event()
    loads: list[int] = []
    indexes: list[TableIndex] = []

    def slow_load() -> TableIndex:
        loads.append(1)
        loading.set()
        assert release.wait(10)
        return parse_table_index(t.data, "t")

    threads = _first_then_queued(lambda: indexes.append(cache.get_or_load(t.name, slow_load)), loading, 3)
    release.set()
    for th in threads:
        th.join(10)
    assert len(loads) == 1 and len(indexes) == 4 and all(index is indexes[0] for index in indexes)
    assert cache.get(t.name) is None and len(cache) == 0  # not kept: a later open loads again


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    paths = []
    for i in range(3):
        p = tmp_path / f"file{i}"
        p.write_text(f"file{i}")
        paths.append(str(p))
    return paths


def test_fd_cache_concurrent_open(files: list[str]) -> None:
    cache = FDCache(3)
    barrier = threading.Barrier(3)
    fds: list[int] = []

    def worker() -> None:
        barrier.wait()
        fds.append(cache.ref_file(files[0]))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(set(fds)) == 1
    assert cache.entries() == [files[0]] and cache.refcount(files[0]) == 3


def test_fd_cache_no_evictions(files: list[str]) -> None:
    cache = FDCache(2)
    f0 = cache.ref_file(files[0])
    f1 = cache.ref_file(files[1])
    assert f0 != f1
    assert cache.ref_file(files[0]) == f0
    assert os.pread(f0, 5, 0) == b"file0"


def test_fd_cache_evictions(files: list[str]) -> None:
    cache = FDCache(1)
    f0 = cache.ref_file(files[0])
    f1 = cache.ref_file(files[1])
    assert f0 != f1
    assert cache.ref_file(files[0]) == f0
    assert cache.entries() == sorted(files[:2])
    cache.unref_file(files[1])
    assert cache.entries() == [files[0]]
    f1b = cache.ref_file(files[1])
    f2 = cache.ref_file(files[2])
    assert f2 not in (f0, f1b)
    cache.unref_file(files[0])
    cache.unref_file(files[0])
    cache.unref_file(files[1])
    assert cache.entries() == [files[2]]


def test_fd_cache_drop_closes_everything(files: list[str]) -> None:
    cache = FDCache(5)
    fd = cache.ref_file(files[0])
    cache.drop()
    assert cache.entries() == []
    with pytest.raises(OSError):
        os.fstat(fd)


def test_fd_cache_discard_closes_only_idle_files(files: list[str]) -> None:
    cache = FDCache(5)
    busy = cache.ref_file(files[0])
    idle = cache.ref_file(files[1])
    cache.unref_file(files[1])
    cache.discard(files[0])
    cache.discard(files[1])
    cache.discard(files[2])
    assert cache.entries() == [files[0]]
    assert os.pread(busy, 5, 0) == b"file0"
    with pytest.raises(OSError):
        os.fstat(idle)


def test_an_index_is_charged_what_it_holds_in_memory_not_only_go_s_36_bytes_per_chunk() -> None:
    small = parse_table_index(build_table((Addr.of(c), c) for c in TEST_CHUNKS).data, "small")
    chunks = [bytes([i % 256, i // 256]) * 8 for i in range(5000)]
    big = parse_table_index(build_table((Addr.of(c), c) for c in chunks).data, "big")
    assert small.memory_size > 5 * 36 * small.chunk_count  # objects and the cache entry, not the arrays, dominate
    assert 36 * big.chunk_count < big.memory_size < 40 * big.chunk_count + 2048
