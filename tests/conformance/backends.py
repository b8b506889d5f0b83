"""Backends the conformance suite runs against.

A backend opens handles on ONE store; two handles see each other's commits
(after a rebase), which is how concurrency rules are checked.  The AWS
backends use the session's moto server (tests/conftest.py) and a fresh store
name per test; the nbsd backend uses the session's daemon.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from nbs.aws_factory import AWSStoreFactory, new_aws_store
from nbs.chunk_store import ChunkStore
from nbs.conjoiner import InlineConjoiner
from nbs.factory import new_local_store
from nbs.manifest_cache import ManifestCache
from nbs.manifest_manager import ManifestLocks, ManifestManager
from nbs.memory_manifest import MemoryManifest
from nbs.memory_table_persister import MemoryTablePersister
from nbs.store import NomsBlockStore
from tests.aws_server import unique_name


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


class OpenerBackend(Backend):
    """Handles made by a function of the memtable size."""

    def __init__(self, opener: Callable[[int], ChunkStore]) -> None:
        self._opener = opener

    def open(self, memtable_size: int = 0) -> ChunkStore:
        return self._opener(memtable_size)


BackendFactory = Callable[[pytest.FixtureRequest, Path], AbstractContextManager[Backend]]


@contextmanager
def _local(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield LocalBackend(tmp_path)


@contextmanager
def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield MemoryBackend()


@contextmanager
def _aws(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """``new_aws_store`` handles: process-wide caches, no table caches."""
    location = request.getfixturevalue("aws_location")
    s3, ddb = location.server.clients()
    name = unique_name("conformance")
    yield OpenerBackend(lambda size: new_aws_store(location.table, name, location.bucket, s3, ddb, size))


@contextmanager
def _aws_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Handles from one ``AWSStoreFactory`` with an on-disk table cache, as the daemon uses it."""
    location = request.getfixturevalue("aws_location")
    with AWSStoreFactory(location.server.session(), location.table, location.bucket, table_cache_size=1 << 30,
                         table_cache_dir=str(tmp_path / "table-cache"), endpoint_url=location.endpoint,
                         io_threads=8) as factory:
        name = unique_name("conformance")
        yield OpenerBackend(lambda size: factory.create_store(name, size))


BACKENDS: dict[str, BackendFactory] = {
    "local": _local,
    "mem": _memory,
    "aws": _aws,
    "aws-factory": _aws_factory,
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
def _through_daemon(endpoint: str, spec: str) -> Iterator[Backend]:
    """Stores of ``spec`` served by the daemon at ``endpoint``; every handle opened is closed after."""
    backend = DaemonBackend(endpoint, spec)
    try:
        yield backend
    finally:
        for handle in backend.handles:
            handle.close()


def _nbsd_local(request: pytest.FixtureRequest, tmp_path: Path) -> AbstractContextManager[Backend]:
    daemon = request.getfixturevalue("nbsd_daemon")
    return _through_daemon(daemon.endpoint, daemon.store_path(tmp_path.name))


BACKENDS["nbsd-local"] = _nbsd_local


def _nbsd_aws(request: pytest.FixtureRequest, tmp_path: Path) -> AbstractContextManager[Backend]:
    daemon = request.getfixturevalue("nbsd_aws_daemon")
    location = request.getfixturevalue("aws_location")
    return _through_daemon(daemon.endpoint, f"aws://{location.table}:{location.bucket}/{tmp_path.name}")


BACKENDS["nbsd-aws"] = _nbsd_aws
