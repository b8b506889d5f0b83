"""Tables as files in a local store directory, named by their base32 table name.

New tables are written to a temp file and renamed into place, synced first
unless the store was opened with ``sync=False`` (see ``nbs.durable_files``);
reads go through the process's ``FDCache`` so open descriptors stay within
its budget.  OS failures surface as ``TableNotFoundError`` or ``StoreIOError``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from nbs.addr import Addr
from nbs.chunk_source import FILE_BLOCK_SIZE, FILE_MAX_READ, ChunkSource, EmptyChunkSource, ReaderAt, TableChunkSource
from nbs.durable_files import Writer, remove_quietly, rename_into_place, sync_directory, write_temp
from nbs.errors import CorruptTableError, StoreIOError, TableNotFoundError, UploadError
from nbs.fd_cache import FDCache
from nbs.index_cache import IndexCache
from nbs.stats import Stats
from nbs.table_index import TableIndex, parse_table_index, tail_size
from nbs.table_persister import TablePersister, copy_chunk_regions, plan_conjoin
from nbs.table_upload import UploadSink
from nbs.table_writer import TableStream, WrittenTable

TABLE_TEMP_PREFIX = "nbs_table_"
T = TypeVar("T")


class FileReaderAt(ReaderAt):
    """Positioned reads of one table file through the descriptor cache."""

    local = True

    def __init__(self, path: str, fd_cache: FDCache, stats: Stats) -> None:
        self.path = path
        self._fd_cache = fd_cache
        self._stats = stats

    def read_at(self, offset: int, length: int) -> bytes:
        return self._read(lambda fd: os.pread(fd, length, offset), length)

    def read_into(self, offset: int, buffer: memoryview) -> int:
        return self._read(lambda fd: os.preadv(fd, [buffer], offset), len(buffer))

    def _read(self, read: Callable[[int], T], length: int) -> T:
        """``read(fd)`` of the table's descriptor, held meanwhile, timed and counted as a read of ``length``."""
        started = time.perf_counter_ns()
        fd = ref_table_file(self._fd_cache, self.path)
        try:
            result = read(fd)
        except OSError as err:
            raise StoreIOError("read table", self.path, err) from err
        finally:
            self._fd_cache.unref_file(self.path)
        if length:
            self._stats.file_bytes_per_read.sample(length)
            self._stats.file_read_latency.sample_time(started)
        return result


def ref_table_file(fd_cache: FDCache, path: str) -> int:
    """``fd_cache.ref_file(path)`` with OS errors as typed errors (a missing file: ``TableNotFoundError``)."""
    try:
        return fd_cache.ref_file(path)
    except FileNotFoundError as err:
        raise TableNotFoundError(os.path.basename(path), os.path.dirname(path)) from err
    except OSError as err:
        raise StoreIOError("open table", path, err) from err


class FSTablePersister(TablePersister):
    def __init__(self, directory: str, fd_cache: FDCache, index_cache: IndexCache | None,
                 sync: bool = True) -> None:
        self.directory = directory
        self.fd_cache = fd_cache
        self.index_cache = index_cache
        self.sync = sync

    def _path(self, name: Addr) -> str:
        return os.path.join(self.directory, str(name))

    def persist_table(self, table: WrittenTable, stats: Stats) -> ChunkSource:
        self._write_file(table.name, lambda write: [write(piece) for piece in table.pieces], table.index)
        return self.open(table.name, table.chunk_count, stats)

    def persist_stream(self, stream: TableStream, stats: Stats) -> ChunkSource:
        """Write each batch of records while the next ones are encoded, keeping none once written."""
        self._write_file(stream.name, lambda write: [write(piece) for piece in stream.pieces(keep=False)],
                         lambda: stream.table.index())
        return self.open(stream.name, stream.chunk_count, stats)

    def begin_upload(self) -> UploadSink:
        """Parts go straight to a temp file in the store directory, so an upload holds no table in memory."""
        return FileUploadSink(self)

    def conjoin_all(self, sources: Sequence[ChunkSource], stats: Stats) -> ChunkSource:
        plan = plan_conjoin(sources, stats)
        if plan.chunk_count == 0:
            return EmptyChunkSource()

        def emit(write: Writer) -> None:
            copy_chunk_regions(plan, write)
            write(plan.merged_index)

        index = parse_table_index(plan.merged_index, str(plan.name))
        self._write_file(plan.name, emit, lambda: index)
        return self.open(plan.name, plan.chunk_count, stats)

    def open(self, name: Addr, chunk_count: int, stats: Stats) -> ChunkSource:
        path = self._path(name)
        if self.index_cache is not None:
            index = self.index_cache.get_or_load(name, lambda: self._load_index(path, name, chunk_count))
        else:
            index = self._load_index(path, name, chunk_count)
        if index.chunk_count != chunk_count:
            raise CorruptTableError(str(name), f"has {index.chunk_count} chunks, manifest says {chunk_count}")
        return TableChunkSource(name, index, FileReaderAt(path, self.fd_cache, stats), FILE_BLOCK_SIZE, FILE_MAX_READ)

    def _load_index(self, path: str, name: Addr, chunk_count: int) -> TableIndex:
        fd = ref_table_file(self.fd_cache, path)
        try:
            size = os.fstat(fd).st_size
            want = tail_size(chunk_count)
            if size < want:
                raise CorruptTableError(str(name), f"file of {size} bytes is too short for {chunk_count} chunks")
            tail = os.pread(fd, want, size - want)
        except OSError as err:
            raise StoreIOError("read table", path, err) from err
        finally:
            self.fd_cache.unref_file(path)
        return parse_table_index(tail, str(name), size)

    def cache_index(self, name: Addr, index: TableIndex) -> None:
        if self.index_cache is not None:
            self.index_cache.put(name, index)

    def _write_file(self, name: Addr, emit: Callable[[Writer], object], index: Callable[[], TableIndex]) -> None:
        """Write a table file, then cache its index (known once ``emit`` has run)."""
        write_via_temp(self.directory, self._path(name), emit, self.sync)
        self.cache_index(name, index())


def write_via_temp(directory: str, path: str, emit: Callable[[Writer], object], sync: bool) -> int:
    """Write a table file through a temp file in ``directory`` renamed to ``path``; returns its size.

    Readers never see a partial table, a failed write leaves no temp file
    behind, and with ``sync`` the table is on disk under its name on return.
    """
    try:
        temp, size = write_temp(directory, TABLE_TEMP_PREFIX, emit, sync)
        try:
            rename_into_place(temp, path, sync)
        except BaseException:
            remove_quietly(temp)
            raise
    except OSError as err:
        raise StoreIOError("write table", path, err) from err
    return size


class FileUploadSink(UploadSink):
    """An upload's records written at their offsets in a temp file, which ``finish`` completes and renames.

    The temp file has the store's temp prefix, so the store's garbage
    collection removes one that a crash left behind.  Durability is that of
    every table write: the file is synced, renamed, then its directory synced.
    """

    def __init__(self, persister: FSTablePersister) -> None:
        self._persister = persister
        self._lock = threading.Lock()
        self._fd = -1
        self._temp = ""
        self._ended = False

    def _file(self) -> int:
        """The temp file's descriptor, created on the first write (lock held)."""
        if self._ended:
            raise UploadError("the upload has ended")
        if self._fd < 0:
            try:
                self._fd, self._temp = tempfile.mkstemp(prefix=TABLE_TEMP_PREFIX, dir=self._persister.directory)
            except OSError as err:
                raise StoreIOError("create table", self._persister.directory, err) from err
        return self._fd

    def write(self, offset: int, pieces: Sequence[bytes]) -> None:
        with self._lock:
            fd = self._file()
            try:
                written = os.pwritev(fd, pieces, offset)
                if written != sum(map(len, pieces)):  # short writes are rare (a full disk): finish them one by one
                    _pwrite_all(fd, b"".join(pieces)[written:], offset + written)
            except OSError as err:
                raise StoreIOError("write table", self._temp, err) from err

    def finish(self, name: Addr, index: TableIndex, tail: bytes, stats: Stats) -> ChunkSource:
        persister = self._persister
        path = persister._path(name)
        with self._lock:
            fd = self._file()
            try:
                _pwrite_all(fd, tail, index.data_len)
                if persister.sync:
                    os.fsync(fd)
                os.close(fd)
                self._fd = -1
                os.rename(self._temp, path)
                self._temp = ""  # the name is free for other temp files: never remove it again
                self._ended = True
                if persister.sync:
                    sync_directory(persister.directory)
            except OSError as err:
                self._abort()
                raise StoreIOError("write table", path, err) from err
        persister.cache_index(name, index)
        return persister.open(name, index.chunk_count, stats)

    def abort(self) -> None:
        with self._lock:
            self._abort()

    def _abort(self) -> None:
        self._ended = True
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._temp:
            remove_quietly(self._temp)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
