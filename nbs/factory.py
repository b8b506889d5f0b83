"""Constructors for stores: ``new_local_store``, ``new_memory_store`` and ``LocalStoreFactory``.

Stores made by the ``new_*`` functions share process-wide caches (index cache
8 MiB, descriptor cache of 192 files, manifest cache 8 MiB, manifest locks), as
Go does; a factory owns private ones sized by its arguments.

Local stores sync every table and manifest before a commit returns (see
``nbs.durable_files``); ``sync=False`` skips that for scratch stores.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from nbs.conjoiner import DEFAULT_MAX_TABLES, InlineConjoiner
from nbs.durable_files import make_directories
from nbs.errors import InvalidStoreNameError, StoreNotFoundError
from nbs.fd_cache import FDCache
from nbs.file_manifest import FileManifest
from nbs.file_table_persister import FSTablePersister
from nbs.index_cache import IndexCache
from nbs.manifest import ManifestContents
from nbs.manifest_cache import ManifestCache
from nbs.manifest_manager import ManifestLocks, ManifestManager
from nbs.memory_manifest import MemoryManifest
from nbs.memory_table_persister import MemoryTablePersister
from nbs.spec import StoreSpec, local_path, parse_store_spec
from nbs.store import NomsBlockStore
from nbs.store_name import validate_store_name

DEFAULT_INDEX_CACHE_SIZE = 8 << 20
DEFAULT_MANIFEST_CACHE_SIZE = 8 << 20
DEFAULT_MAX_OPEN_FILES = DEFAULT_MAX_TABLES


@dataclass
class SharedCaches:
    """Caches and locks shared by the stores of one process or one factory."""

    index_cache: IndexCache | None
    fd_cache: FDCache
    manifest_cache: ManifestCache
    manifest_locks: ManifestLocks

    @classmethod
    def create(cls, index_cache_size: int = DEFAULT_INDEX_CACHE_SIZE,
               max_open_files: int = DEFAULT_MAX_OPEN_FILES,
               manifest_cache_size: int = DEFAULT_MANIFEST_CACHE_SIZE) -> SharedCaches:
        return cls(IndexCache(index_cache_size) if index_cache_size > 0 else None,
                   FDCache(max_open_files), ManifestCache(manifest_cache_size), ManifestLocks.create())


_GLOBAL = SharedCaches.create()  # bounds, not allocations: empty until used


def global_caches() -> SharedCaches:
    """The process-wide caches (a forked child keeps them; each resets its own locks)."""
    return _GLOBAL


def _require_directory(directory: str) -> str:
    if not os.path.exists(directory):
        raise StoreNotFoundError(f"store directory {directory!r} does not exist")
    if not os.path.isdir(directory):
        raise StoreNotFoundError(f"store path {directory!r} is not a directory")
    return directory


def make_store_directory(directory: str, sync: bool = True) -> str:
    """Create a store directory (and missing parents), durably with ``sync``; failures are typed errors."""
    try:
        make_directories(directory, sync)
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            raise InvalidStoreNameError(f"store path too long for the file system: {directory!r}") from err
        raise StoreNotFoundError(f"cannot create store directory {directory!r}: {err}") from err
    return directory


def local_store_with(directory: str, caches: SharedCaches, memtable_size: int = 0,
                     max_tables: int = DEFAULT_MAX_TABLES,
                     contents: ManifestContents | None = None, sync: bool = True) -> NomsBlockStore:
    """A store in ``directory`` sharing ``caches``; ``contents`` skips the manifest read."""
    manager = ManifestManager(FileManifest(directory, sync), caches.manifest_cache, caches.manifest_locks)
    persister = FSTablePersister(directory, caches.fd_cache, caches.index_cache, sync)
    return NomsBlockStore(manager, persister, InlineConjoiner(max_tables), memtable_size, contents)


def new_local_store(directory: str, memtable_size: int = 0,
                    max_tables: int = DEFAULT_MAX_TABLES, sync: bool = True) -> NomsBlockStore:
    """Open (or start) a store in an existing directory, Go's ``NewLocalStore``.

    ``sync=False`` makes commits cheaper but not crash-safe (for scratch stores).
    """
    return local_store_with(_require_directory(directory), global_caches(), memtable_size, max_tables, sync=sync)


def new_memory_store(memtable_size: int = 0) -> NomsBlockStore:
    """A fresh store held entirely in memory (the ``mem`` spec)."""
    caches = global_caches()
    manager = ManifestManager(MemoryManifest(), caches.manifest_cache, caches.manifest_locks)
    return NomsBlockStore(manager, MemoryTablePersister(), InlineConjoiner(), memtable_size)


class LocalStoreFactory:
    """Many named stores under one directory, sharing private caches (Go's ``LocalStoreFactory``)."""

    def __init__(self, directory: str, index_cache_size: int = 0,
                 max_open_files: int = DEFAULT_MAX_OPEN_FILES, sync: bool = True) -> None:
        """``sync=False``: the factory's stores skip syncing on commit (not crash-safe; for scratch stores)."""
        self.directory = _require_directory(directory)
        self.caches = SharedCaches.create(index_cache_size, max_open_files)
        self.sync = sync

    def _store_dir(self, name: str) -> str:
        return os.path.join(self.directory, validate_store_name(name))

    def create_store(self, name: str, memtable_size: int = 0) -> NomsBlockStore:
        directory = make_store_directory(self._store_dir(name), self.sync)
        return local_store_with(directory, self.caches, memtable_size, DEFAULT_MAX_TABLES, sync=self.sync)

    def create_store_from_cache(self, name: str, memtable_size: int = 0) -> NomsBlockStore | None:
        """A store built from the factory's cached manifest without reading it, or None."""
        directory = self._store_dir(name)
        entry = self.caches.manifest_cache.get(directory)
        if entry is None:
            return None
        return local_store_with(_require_directory(directory), self.caches, memtable_size, DEFAULT_MAX_TABLES,
                            contents=entry[0] if entry[0].vers else ManifestContents(), sync=self.sync)

    def close(self) -> None:
        """Close every cached descriptor (Go's ``Shutter``)."""
        self.caches.fd_cache.drop()


def open_store(spec: str | StoreSpec, memtable_size: int = 0, create: bool = True) -> NomsBlockStore:
    """Open the store a spec names; local directories are created when ``create`` is set.

    A local spec's ``?sync=false`` opens a scratch store (see ``new_local_store``).
    ``aws:`` specs reach AWS with the credentials, region and endpoint of the
    spec's options or the environment (see ``nbs.aws_factory``).
    """
    parsed = parse_store_spec(spec) if isinstance(spec, str) else spec
    if parsed.protocol == "mem":
        return new_memory_store(memtable_size)
    if parsed.protocol == "nbs":
        directory = local_path(parsed)
        if create:
            make_store_directory(directory, parsed.sync)
        return new_local_store(directory, memtable_size, sync=parsed.sync)
    from nbs.aws_factory import open_aws_store  # imported late: it builds on this module

    return open_aws_store(parsed, memtable_size)
