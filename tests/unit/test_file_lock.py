"""A wait for a local store's LOCK is bounded, names the process holding it, and is not repeated by callers queued
behind a failed one."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nbs.addr import EMPTY_ADDR, Addr
from nbs.errors import StoreIOError, StoreLockedError
from nbs.file_lock import lock_holder
from nbs.file_manifest import FileManifest, format_manifest
from nbs.manifest import Hook, Manifest, ManifestContents
from nbs.manifest_cache import ManifestCache
from nbs.manifest_manager import ManifestLocks, ManifestManager
from nbs.stats import Stats
from tests.lock_holder import held_by_another_process


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    FileManifest(str(tmp_path)).update(EMPTY_ADDR, ManifestContents("7.18", Addr.of(b"first")), Stats())
    return tmp_path


def test_a_held_lock_fails_every_manifest_operation_in_bounded_time_naming_the_holder(store_dir: Path) -> None:
    manifest = FileManifest(str(store_dir), lock_timeout=0.3)
    before = (store_dir / "manifest").read_text()
    newer = ManifestContents("7.18", Addr.of(b"second"))
    with held_by_another_process(store_dir / "LOCK") as holder:
        def enter_locked() -> None:
            with manifest.locked():
                pass

        operations: list[Callable[[], object]] = [lambda: manifest.parse_if_exists(Stats()),
                                                  lambda: manifest.update(Addr.of(b"first"), newer, Stats()),
                                                  enter_locked]
        for operation in operations:
            started = time.monotonic()
            with pytest.raises(StoreLockedError) as caught:
                operation()
            assert 0.3 <= time.monotonic() - started < 5
            assert isinstance(caught.value, StoreIOError)
            assert caught.value.path == str(store_dir / "LOCK") and caught.value.waited >= 0.3
            comm = Path(f"/proc/{holder.pid}/comm").read_text().strip()
            assert caught.value.holder == f"pid {holder.pid} ({comm})" and comm.startswith("python")
            assert f"held by pid {holder.pid} ({comm}) for over" in str(caught.value)
            assert str(store_dir / "LOCK") in str(caught.value)
    # Nothing changed and nothing was left behind.
    assert (store_dir / "manifest").read_text() == before
    assert sorted(os.listdir(store_dir)) == ["LOCK", "manifest"]
    # Once the holder is gone the same object works again.
    assert manifest.update(Addr.of(b"first"), newer, Stats()) == newer
    assert (store_dir / "manifest").read_text() == format_manifest(newer)


def test_a_lock_released_during_the_wait_is_taken(store_dir: Path) -> None:
    manifest = FileManifest(str(store_dir), lock_timeout=30)
    with held_by_another_process(store_dir / "LOCK", seconds=2.0), ThreadPoolExecutor(1) as pool:
        reading = pool.submit(manifest.parse_if_exists, Stats())
        time.sleep(0.2)
        assert not reading.done()  # waiting for the holder
        contents = reading.result(10)
    assert contents is not None and contents.lock == Addr.of(b"first")


def test_no_holder_is_named_for_a_free_lock(store_dir: Path) -> None:
    fd = os.open(store_dir / "LOCK", os.O_RDONLY)
    try:
        assert lock_holder(fd) is None
    finally:
        os.close(fd)


class CountingManifest(Manifest):
    """Counts the reads and writes that reach the wrapped manifest (each one a wait for LOCK)."""

    def __init__(self, inner: Manifest) -> None:
        self.inner = inner
        self.attempts = 0

    def name(self) -> str:
        return self.inner.name()

    def parse_if_exists(self, stats: Stats, read_hook: Hook | None = None) -> ManifestContents | None:
        self.attempts += 1
        return self.inner.parse_if_exists(stats, read_hook)

    def update(self, last_lock: Addr, new: ManifestContents, stats: Stats,
               write_hook: Hook | None = None) -> ManifestContents:
        self.attempts += 1
        return self.inner.update(last_lock, new, stats, write_hook)


def counted_manager(store_dir: Path) -> tuple[ManifestManager, CountingManifest]:
    counting = CountingManifest(FileManifest(str(store_dir), lock_timeout=1.0))
    return ManifestManager(counting, ManifestCache(1 << 20), ManifestLocks.create()), counting


def commit_through(manager: ManifestManager, last: Addr, new: ManifestContents) -> ManifestContents:
    """What a store's commit does with the manager: update under the update lock."""
    manager.lock_for_update()
    try:
        return manager.update(last, new, Stats())
    finally:
        manager.unlock_for_update()


def test_fetches_queued_behind_a_failed_wait_share_its_failure(store_dir: Path) -> None:
    manager, counting = counted_manager(store_dir)
    with held_by_another_process(store_dir / "LOCK") as holder, ThreadPoolExecutor(6) as pool:
        fetches = [pool.submit(manager.fetch, Stats()) for _ in range(6)]
        errors = [fetch.exception(30) for fetch in fetches]
    assert all(isinstance(error, StoreLockedError) for error in errors), errors
    assert all(f"held by pid {holder.pid} " in str(error) for error in errors)
    assert len({id(error) for error in errors}) == 6  # each caller raises its own copy
    assert counting.attempts == 1  # one wait for LOCK, not six in a row
    # A fetch that starts after the failure reads again, and succeeds now that the holder is gone.
    contents = manager.fetch(Stats())
    assert contents is not None and contents.lock == Addr.of(b"first") and counting.attempts == 2


def test_commits_and_fetches_queued_behind_a_failed_commit_share_its_failure(store_dir: Path) -> None:
    manager, counting = counted_manager(store_dir)
    newer = ManifestContents("7.18", Addr.of(b"second"))
    with held_by_another_process(store_dir / "LOCK"), ThreadPoolExecutor(7) as pool:
        first = pool.submit(commit_through, manager, Addr.of(b"first"), newer)
        while counting.attempts == 0 and not first.done():
            time.sleep(0.01)
        commits = [first] + [pool.submit(commit_through, manager, Addr.of(b"first"), newer) for _ in range(3)]
        fetches = [pool.submit(manager.fetch, Stats()) for _ in range(3)]
        errors = [future.exception(30) for future in commits] + [future.exception(30) for future in fetches]
    assert all(isinstance(error, StoreLockedError) for error in errors), errors
    assert counting.attempts == 1
    assert commit_through(manager, Addr.of(b"first"), newer) == newer
    assert (store_dir / "manifest").read_text() == format_manifest(newer)
