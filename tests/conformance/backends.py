"""Backends the conformance suite runs against.

A backend opens handles on ONE store; two handles see each other's commits
(after a rebase), which is how concurrency rules are checked.  Later
backends (AWS over a moto server, nbsd clients) register here too.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ContextManager

import pytest

from nbs.chunk_store import ChunkStore
from nbs.conjoiner import InlineConjoiner
from nbs.factory import new_local_store
from nbs.manifest_cache import ManifestCache
from nbs.manifest_manager import ManifestLocks, ManifestManager
from nbs.memory_manifest import MemoryManifest
from nbs.memory_table_persister import MemoryTablePersister
from nbs.store import NomsBlockStore


class Backend(abc.ABC):
    @abc.abstractmethod
    def open(self, memtable_size: int = 0) -> ChunkStore:
        """A new handle on this backend's store."""


class LocalBackend(Backend):
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def open(self, memtable_size: int = 0) -> ChunkStore:
        return new_local_store(str(self.directory), memtable_size)


class MemoryBackend(Backend):
    """Handles share one in-memory manifest and table store, as one process's ``mem`` store would."""

    def __init__(self) -> None:
        self.manifest = MemoryManifest()
        self.persister = MemoryTablePersister()
        self.cache = ManifestCache(8 << 20)
        self.locks = ManifestLocks.create()

    def open(self, memtable_size: int = 0) -> ChunkStore:
        manager = ManifestManager(self.manifest, self.cache, self.locks)
        return NomsBlockStore(manager, self.persister, InlineConjoiner(), memtable_size)


BackendFactory = Callable[[pytest.FixtureRequest, Path], ContextManager[Backend]]


@contextmanager
def _local(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield LocalBackend(tmp_path)


@contextmanager
def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield MemoryBackend()


BACKENDS: dict[str, BackendFactory] = {
    "local": _local,
    "mem": _memory,
}


class DaemonBackend(Backend):
    """Handles are nbsd clients (in this test process) on a store under the daemon's local root."""

    def __init__(self, endpoint: str, path: str) -> None:
        self.endpoint = endpoint
        self.path = path
        self.handles: list[ChunkStore] = []

    def open(self, memtable_size: int = 0) -> ChunkStore:
        from nbsclient import connect

        options = {"memtable_size": memtable_size} if memtable_size else {}
        store = connect(self.path, self.endpoint, timeout=20.0, **options)
        self.handles.append(store)
        return store


@contextmanager
def _nbsd_local(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    daemon = request.getfixturevalue("nbsd_daemon")
    backend = DaemonBackend(daemon.endpoint, daemon.store_path(tmp_path.name))
    try:
        yield backend
    finally:
        for handle in backend.handles:
            handle.close()


BACKENDS["nbsd-local"] = _nbsd_local
