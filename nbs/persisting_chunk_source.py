"""A memtable on its way to becoming a table.

Prepending a memtable to a table set starts its persist in the background.
Until that finishes, reads are answered from the memtable; afterwards from
the persisted table.  A failed persist is retried the next time the table is
needed, so a transient storage error fails one commit rather than the store.
A persist still running in the parent when the process forks is started
again in the child when the child needs the table (the parent's thread does
not exist there); table names are content hashes, so both writes agree.

One persist runs at a time per store (Go allows five): a full memtable waits
in ``put``/``put_many`` for the previous one to be written.  That back-pressure
bounds a writer's memory to the memtable filling plus the one persisting (and a
few batches of encoded records), whatever the pace of the importer; with more
slots a fast writer would hold one memtable per slot.  The wait is bounded by
one persist: a failed persist frees its slot, and a forked child starts with
every slot free.  Throughput does not need more: a persist already encodes on
every core (the chunk workers), and uploads its parts concurrently on AWS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from nbs.addr import Addr
from nbs.chunk_source import ChunkSource, TableChunkSource
from nbs.forksafe import ProcessLocal, Semaphore, register
from nbs.mem_table import Haver, MemTable
from nbs.stats import Stats
from nbs.table_index import TableIndex
from nbs.table_persister import TablePersister

CONCURRENT_PERSISTS = 1

_EXECUTOR = ProcessLocal(lambda: ThreadPoolExecutor(max_workers=32, thread_name_prefix="nbs-persist"))


class PersistingChunkSource(ChunkSource):
    def __init__(self, memtable: MemTable, haver: Haver | None, persister: TablePersister,
                 stats: Stats, slots: Semaphore) -> None:
        self._memtable: MemTable | None = memtable
        self._haver = haver
        self._persister = persister
        self._stats = stats
        self._slots = slots
        self._started = time.perf_counter_ns()
        self._lock = threading.Lock()
        self._result: ChunkSource | None = None
        self._future: Future[ChunkSource] | None = self._submit()
        register(self)

    def _submit(self) -> Future[ChunkSource]:
        """Start the persist once a slot is free (waiting for one: the back-pressure on puts)."""
        self._slots.acquire()
        return _EXECUTOR.get().submit(self._persist)

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        if self._result is None:
            self._future = None  # the parent's persist cannot finish here: persist again when needed

    def _persist(self) -> ChunkSource:
        try:
            assert self._memtable is not None
            source = self._persister.persist(self._memtable, self._haver, self._stats)
            if source.count() > 0:
                self._stats.persist_latency.sample_time(self._started)
            self._result = source
            self._memtable = None  # freed before the slot: the next memtable may then fill
            self._haver = None
            return source
        finally:
            self._slots.release()

    def wait(self) -> ChunkSource:
        """The persisted table, blocking until the persist finishes; re-raises its failure."""
        result = self._result
        if result is not None:
            return result
        with self._lock:
            if self._result is None:
                if self._future is None:  # the last attempt failed: try again now that the table is needed
                    self._future = self._submit()
                try:
                    self._future.result()
                except BaseException:
                    self._future = None
                    raise
            assert self._result is not None
            return self._result

    @property
    def memtable(self) -> MemTable | None:
        return self._memtable

    @property
    def name(self) -> Addr:
        return self.wait().name

    def count(self) -> int:
        return self.wait().count()

    def uncompressed_len(self) -> int:
        return self.wait().uncompressed_len()

    def index(self) -> TableIndex:
        return self.wait().index()

    def has(self, addr: bytes) -> bool:
        mt = self._memtable
        return mt.has(addr) if mt is not None else self.wait().has(addr)

    def get(self, addr: bytes) -> bytes | None:
        mt = self._memtable
        return mt.get(addr) if mt is not None else self.wait().get(addr)

    def has_many(self, addrs: Sequence[bytes]) -> list[bytes]:
        mt = self._memtable
        return mt.has_many(addrs) if mt is not None else self.wait().has_many(addrs)

    def get_many(self, addrs: Sequence[bytes], found: dict[bytes, bytes]) -> list[bytes]:
        mt = self._memtable
        return mt.get_many(addrs, found) if mt is not None else self.wait().get_many(addrs, found)

    def extract(self) -> Iterator[tuple[bytes, bytes]]:
        return self.wait().extract()

    def read_at(self, offset: int, length: int) -> bytes:
        return self.wait().read_at(offset, length)

    def calc_reads(self, addrs: Sequence[bytes]) -> tuple[int, list[bytes]]:
        return self.wait().calc_reads(addrs)

    def persisted(self) -> TableChunkSource | None:
        return self.wait().persisted()

    def close(self) -> None:
        if self._result is not None:
            self._result.close()
