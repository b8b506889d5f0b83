"""Tables as files in a local store directory, named by their base32 table name.

New tables are written to a temp file and renamed into place; reads go through
the process's ``FDCache`` so open descriptors stay within its budget.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence

from nbs.addr import Addr
from nbs.chunk_source import FILE_BLOCK_SIZE, ChunkSource, EmptyChunkSource, ReaderAt, TableChunkSource
from nbs.errors import CorruptTableError, TableNotFoundError
from nbs.fd_cache import FDCache
from nbs.index_cache import IndexCache
from nbs.stats import Stats
from nbs.table_index import TableIndex, parse_table_index, tail_size
from nbs.table_persister import TablePersister, copy_chunk_regions, plan_conjoin
from nbs.table_writer import WrittenTable

TABLE_TEMP_PREFIX = "nbs_table_"

Writer = Callable[[bytes], object]


class FileReaderAt(ReaderAt):
    """Positioned reads of one table file through the descriptor cache."""

    def __init__(self, path: str, fd_cache: FDCache, stats: Stats) -> None:
        self.path = path
        self._fd_cache = fd_cache
        self._stats = stats

    def read_at(self, offset: int, length: int) -> bytes:
        started = time.perf_counter_ns()
        fd = self._fd_cache.ref_file(self.path)
        try:
            data = os.pread(fd, length, offset)
        finally:
            self._fd_cache.unref_file(self.path)
        if length:
            self._stats.file_bytes_per_read.sample(length)
            self._stats.file_read_latency.sample_time(started)
        return data


class FSTablePersister(TablePersister):
    def __init__(self, directory: str, fd_cache: FDCache, index_cache: IndexCache | None) -> None:
        self.directory = directory
        self.fd_cache = fd_cache
        self.index_cache = index_cache

    def _path(self, name: Addr) -> str:
        return os.path.join(self.directory, str(name))

    def persist_table(self, table: WrittenTable, stats: Stats) -> ChunkSource:
        index = table.index()
        self._write_file(table.name, lambda write: write(table.data), index)
        return self.open(table.name, table.chunk_count, stats)

    def conjoin_all(self, sources: Sequence[ChunkSource], stats: Stats) -> ChunkSource:
        plan = plan_conjoin(sources, stats)
        if plan.chunk_count == 0:
            return EmptyChunkSource()

        def emit(write: Writer) -> None:
            copy_chunk_regions(plan, write)
            write(plan.merged_index)

        index = parse_table_index(plan.merged_index, str(plan.name))
        self._write_file(plan.name, emit, index)
        return self.open(plan.name, plan.chunk_count, stats)

    def open(self, name: Addr, chunk_count: int, stats: Stats) -> ChunkSource:
        path = self._path(name)
        if self.index_cache is not None:
            index = self.index_cache.get_or_load(name, lambda: self._load_index(path, name, chunk_count))
        else:
            index = self._load_index(path, name, chunk_count)
        if index.chunk_count != chunk_count:
            raise CorruptTableError(str(name), f"has {index.chunk_count} chunks, manifest says {chunk_count}")
        return TableChunkSource(name, index, FileReaderAt(path, self.fd_cache, stats), FILE_BLOCK_SIZE)

    def _load_index(self, path: str, name: Addr, chunk_count: int) -> TableIndex:
        try:
            fd = self.fd_cache.ref_file(path)
        except FileNotFoundError as err:
            raise TableNotFoundError(str(name), self.directory) from err
        try:
            size = os.fstat(fd).st_size
            want = tail_size(chunk_count)
            if size < want:
                raise CorruptTableError(str(name), f"file of {size} bytes is too short for {chunk_count} chunks")
            tail = os.pread(fd, want, size - want)
        finally:
            self.fd_cache.unref_file(path)
        return parse_table_index(tail, str(name), size)

    def _write_file(self, name: Addr, emit: Callable[[Writer], object], index: TableIndex) -> None:
        write_via_temp(self.directory, self._path(name), emit)
        if self.index_cache is not None:
            self.index_cache.put_locked(name, index)


def write_via_temp(directory: str, path: str, emit: Callable[[Writer], object]) -> int:
    """Write a table file through a temp file in ``directory`` renamed to ``path``; returns its size.

    Readers never see a partial table, and a failed write leaves no temp file behind.
    """
    fd, temp = tempfile.mkstemp(prefix=TABLE_TEMP_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            emit(out.write)
            size = out.tell()
        os.rename(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    return size
