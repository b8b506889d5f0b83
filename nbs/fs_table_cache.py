"""An on-disk cache of S3 table files (Go's ``fsTableCache``, NBS-FORMAT.md section 9.3).

Tables are immutable and named by content, so a local copy never goes
stale.  The cache is bounded twice: by total bytes (a size LRU whose
eviction deletes the file) and by open descriptors (the ``FDCache`` it reads
through).  Tables are stored when written and after a conjoin, so a reader
on the same host does not fetch from S3 what was just written there.

The directory may hold only table files: at start-up leftover temp files are
deleted, table files are registered (oldest first, so recently written ones
survive eviction longest) and anything else is an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from nbs.addr import validate_addr_text
from nbs.errors import TableCacheError
from nbs.fd_cache import FDCache
from nbs.durable_files import Writer
from nbs.file_table_persister import TABLE_TEMP_PREFIX, write_via_temp
from nbs.size_cache import SizeCache


class FSTableCache:
    """Table files in one directory, keyed by table name; safe for concurrent use."""

    def __init__(self, directory: str, max_size: int, fd_cache: FDCache) -> None:
        self.directory = directory
        self._fds = fd_cache
        self._lru: SizeCache[str, int] = SizeCache(max_size, self._expire)
        try:
            os.makedirs(directory, exist_ok=True)
            self._scan()
        except OSError as err:
            raise TableCacheError(f"cannot use table cache directory {directory}: {err.strerror}") from err

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _scan(self) -> None:
        tables: list[tuple[float, str, int]] = []
        for entry in os.scandir(self.directory):
            if entry.name.startswith(TABLE_TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
            elif validate_addr_text(entry.name) and entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                tables.append((st.st_mtime, entry.name, st.st_size))
            else:
                raise TableCacheError(f"table cache directory {self.directory} may hold table files only, "
                                      f"found {entry.name!r}")
        for _, name, size in sorted(tables):
            self._lru.add(name, size, size)

    def _expire(self, name: str, _: int) -> None:
        path = self._path(name)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise TableCacheError(f"cannot delete evicted table {path}: {err}") from err
        self._fds.discard(path)

    def __contains__(self, name: str) -> bool:
        return name in self._lru

    @property
    def total_size(self) -> int:
        return self._lru.total_size

    def names(self) -> list[str]:
        """Cached table names, least recently used first."""
        return self._lru.keys()

    def read_at(self, name: str, offset: int, length: int) -> bytes | None:
        """Bytes of a cached table, or None when it is not cached (or was just evicted)."""
        return self._read(name, lambda fd: (offset, length))

    def read_tail(self, name: str, length: int) -> bytes | None:
        """The last ``length`` bytes of a cached table (its index), or None."""
        return self._read(name, lambda fd: (max(0, os.fstat(fd).st_size - length), length))

    def _read(self, name: str, where: Callable[[int], tuple[int, int]]) -> bytes | None:
        if self._lru.get(name) is None:
            return None
        path = self._path(name)
        try:
            fd = self._fds.ref_file(path)
        except OSError:
            return None  # just evicted, or unreadable: S3 holds the table
        try:
            offset, length = where(fd)
            return os.pread(fd, length, offset)
        except OSError:
            return None
        finally:
            self._fds.unref_file(path)

    def store(self, name: str, emit: Callable[[Writer], object]) -> None:
        """Write a table (``emit`` writes its bytes in order); it becomes the most recently used."""
        size = write_via_temp(self.directory, self._path(name), emit, sync=False)  # a copy: S3 holds the table
        if not self._lru.add(name, size, size):
            self._expire(name, size)
