"""Crash safety of local commits: the order of fsync and rename calls, recorded by wrapping ``os``.

A durable commit writes each table to a temp file, syncs it, renames it into
place and syncs the directory, and only then does the same for the manifest
that names the table.  The recorder sees every ``os.fsync`` (resolved to the
file or directory synced) and ``os.rename`` of the process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import nbs
from nbs.addr import validate_addr_text
from nbs.factory import LocalStoreFactory, new_local_store
from nbs.file_manifest import MANIFEST_FILE, MANIFEST_TEMP_PREFIX, FileManifest
from nbs.file_table_persister import TABLE_TEMP_PREFIX
from nbs.stats import Stats
from nbs.store import NomsBlockStore

Event = tuple[str, ...]

TABLE_WRITE = [("fsync", "table temp"), ("rename", "table temp", "table"), ("fsync", "dir")]
MANIFEST_WRITE = [("fsync", "manifest temp"), ("rename", "manifest temp", "manifest"), ("fsync", "dir")]


class Recorder:
    """Every fsync and rename in one store directory, in order, the paths named by what they are.

    Calls elsewhere (other tests' background threads in this process) are ignored.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = str(directory)
        self.events: list[Event] = []
        self.tables: list[str] = []  # table names in the order they were renamed into place

    def inside(self, path: str) -> bool:
        return path == self.directory or path.startswith(self.directory + os.sep)

    def kind(self, path: str) -> str:
        if path == self.directory:
            return "dir"
        name = os.path.relpath(path, self.directory)
        if name.startswith(TABLE_TEMP_PREFIX):
            return "table temp"
        if name.startswith(MANIFEST_TEMP_PREFIX):
            return "manifest temp"
        if name == MANIFEST_FILE:
            return "manifest"
        return "table" if validate_addr_text(name) else f"other: {name}"

    def fsync(self, real: Callable[[int], None]) -> Callable[[int], None]:
        def fsync(fd: int) -> None:
            real(fd)
            path = os.readlink(f"/proc/self/fd/{fd}")
            if self.inside(path):
                self.events.append(("fsync", self.kind(path)))
        return fsync

    def rename(self, real: Callable[[str, str], None]) -> Callable[[str, str], None]:
        def rename(src: str, dst: str) -> None:
            real(src, dst)
            if self.inside(dst):
                self.events.append(("rename", self.kind(src), self.kind(dst)))
                if self.kind(dst) == "table":
                    self.tables.append(os.path.basename(dst))
        return rename


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "db"
    directory.mkdir()
    return directory


@pytest.fixture
def recorder(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    recorder = Recorder(store_dir)
    monkeypatch.setattr(os, "fsync", recorder.fsync(os.fsync))
    monkeypatch.setattr(os, "rename", recorder.rename(os.rename))
    yield recorder


def manifest_tables(directory: Path) -> list[str]:
    contents = FileManifest(str(directory)).parse_if_exists(Stats())
    assert contents is not None
    return [str(spec.name) for spec in contents.specs]


def commit_one(store: NomsBlockStore) -> nbs.Addr:
    h = store.put(os.urandom(64))
    assert store.commit(h, store.root())
    return h


def test_commit_syncs_the_table_then_the_manifest(store_dir: Path, recorder: Recorder) -> None:
    commit_one(new_local_store(str(store_dir)))
    assert recorder.events == TABLE_WRITE + MANIFEST_WRITE
    assert manifest_tables(store_dir) == recorder.tables


def test_conjoin_syncs_its_table_before_its_manifest_update(store_dir: Path, recorder: Recorder) -> None:
    first = new_local_store(str(store_dir))
    earlier = [commit_one(first) for _ in range(3)][0]
    recorder.events.clear()
    recorder.tables.clear()
    store = new_local_store(str(store_dir), max_tables=2)
    assert store.commit(earlier, store.root())  # no new chunks: the commit only conjoins and moves the root
    # the conjoined table, the conjoin's manifest naming it, then the commit's manifest
    assert recorder.events == TABLE_WRITE + MANIFEST_WRITE + MANIFEST_WRITE
    assert manifest_tables(store_dir) == recorder.tables


@pytest.mark.parametrize("open_scratch", [
    lambda d: new_local_store(str(d), sync=False),
    lambda d: LocalStoreFactory(str(d.parent), sync=False).create_store(d.name),
    lambda d: nbs.open_store(f"nbs:{d}?sync=false"),
], ids=["new_local_store", "LocalStoreFactory", "spec"])
def test_sync_false_renames_without_syncing(store_dir: Path, recorder: Recorder,
                                            open_scratch: Callable[[Path], NomsBlockStore]) -> None:
    store = open_scratch(store_dir)
    commit_one(store)
    assert recorder.events == [("rename", "table temp", "table"), ("rename", "manifest temp", "manifest")]
    assert new_local_store(str(store_dir)).root() == store.root()


def test_created_store_directories_are_synced_into_their_parents(store_dir: Path, recorder: Recorder) -> None:
    """A commit is only durable if the directory holding the store survives too."""
    nbs.open_store(f"nbs:{store_dir}/a/b")
    assert recorder.events == [("fsync", "dir"), ("fsync", "other: a")]  # db gained a, a gained b
