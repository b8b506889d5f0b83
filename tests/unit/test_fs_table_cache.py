"""The on-disk table cache (Go's fs_table_cache_test.go, NBS-FORMAT.md 14.18)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbs.addr import Addr
from nbs.errors import StoreIOError, TableCacheError
from nbs.fd_cache import FDCache
from nbs.fs_table_cache import FSTableCache


def store(cache: FSTableCache, data: bytes) -> str:
    name = str(Addr.of(data))
    cache.store(name, lambda write: write(data))
    return name


def test_expire_lru(tmp_path: Path) -> None:
    payloads = sorted([b"hello", b"goodbye", b"world"], key=len)
    cache = FSTableCache(str(tmp_path), len(b"hello") + len(b"goodbye"), FDCache(4))
    names = [store(cache, p) for p in payloads]
    evicted, kept = names[0], names[1:]
    assert cache.read_at(evicted, 0, 5) is None
    assert not (tmp_path / evicted).exists()
    for name, payload in zip(kept, payloads[1:]):
        assert cache.read_at(name, 0, len(payload)) == payload
        assert (tmp_path / name).exists()
    assert cache.total_size == 12


def test_init_success(tmp_path: Path) -> None:
    names = [str(Addr.of(bytes([i]))) for i in range(4)]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    cache = FSTableCache(str(tmp_path), 1024, FDCache(4))
    assert all(cache.read_at(name, 0, 0) == b"" for name in names)
    assert sorted(cache.names()) == sorted(names)


def test_init_registers_oldest_first_and_evicts_over_capacity(tmp_path: Path) -> None:
    names = [str(Addr.of(bytes([i]))) for i in range(3)]
    for age, name in enumerate(names):
        path = tmp_path / name
        path.write_bytes(b"x" * 10)
        os.utime(path, (1000 + age, 1000 + age))
    cache = FSTableCache(str(tmp_path), 20, FDCache(4))
    assert cache.names() == names[1:]
    assert sorted(os.listdir(tmp_path)) == sorted(names[1:])


def test_init_bad_file(tmp_path: Path) -> None:
    (tmp_path / "boo").write_bytes(b"")
    with pytest.raises(TableCacheError):
        FSTableCache(str(tmp_path), 1024, FDCache(4))


def test_init_clears_temp_files(tmp_path: Path) -> None:
    (tmp_path / "nbs_table_boo").write_bytes(b"")
    FSTableCache(str(tmp_path), 1024, FDCache(4))
    assert not (tmp_path / "nbs_table_boo").exists()


def test_init_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    with pytest.raises(TableCacheError):
        FSTableCache(str(tmp_path), 1024, FDCache(4))


def test_unusable_directory_is_a_table_cache_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(TableCacheError, match=f"cannot use table cache directory {tmp_path}/file/x: Not a directory"):
        FSTableCache(str(tmp_path / "file" / "x"), 1024, FDCache(4))


def test_unreadable_table_is_a_miss(tmp_path: Path) -> None:
    fds = FDCache(1)
    cache = FSTableCache(str(tmp_path), 1 << 20, fds)
    name = store(cache, b"payload")
    os.unlink(tmp_path / name)
    os.mkdir(tmp_path / name)  # replaced behind the cache's back by something that opens but cannot be read
    assert cache.read_at(name, 0, 4) is None


def test_creates_missing_directory(tmp_path: Path) -> None:
    cache = FSTableCache(str(tmp_path / "a" / "b"), 1024, FDCache(4))
    assert store(cache, b"payload") in cache


def test_read_tail_and_bounded_descriptors(tmp_path: Path) -> None:
    fds = FDCache(2)
    cache = FSTableCache(str(tmp_path), 1 << 20, fds)
    names = [store(cache, b"table %d" % i) for i in range(5)]
    for i, name in enumerate(names):
        assert cache.read_tail(name, 3) == b"e %d" % i
        assert cache.read_at(name, 0, 5) == b"table"
    assert len(fds) <= 2


def test_too_large_table_is_not_kept(tmp_path: Path) -> None:
    cache = FSTableCache(str(tmp_path), 4, FDCache(2))
    name = store(cache, b"too large")
    assert name not in cache and os.listdir(tmp_path) == []


def test_eviction_closes_idle_descriptors(tmp_path: Path) -> None:
    fds = FDCache(8)
    cache = FSTableCache(str(tmp_path), 10, fds)
    first = store(cache, b"x" * 10)
    assert cache.read_at(first, 0, 1) == b"x"
    assert len(fds) == 1
    store(cache, b"y" * 10)
    assert first not in cache and len(fds) == 0


def test_failed_store_leaves_no_temp_file(tmp_path: Path) -> None:
    cache = FSTableCache(str(tmp_path), 1024, FDCache(2))

    def emit(write: object) -> None:
        raise OSError("disk full")

    with pytest.raises(StoreIOError, match="disk full"):
        cache.store(str(Addr.of(b"x")), emit)
    assert os.listdir(tmp_path) == []
