"""A wait for a local store's LOCK is bounded and names the process holding it."""

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
from nbs.manifest import ManifestContents
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
