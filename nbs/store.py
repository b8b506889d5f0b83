"""``NomsBlockStore``: a chunk store over a manifest, a table persister and a conjoiner.

Puts fill a memtable; a full memtable is prepended to the table set and
persisted in the background.  ``commit`` writes pending tables and swaps the
manifest with optimistic concurrency, retrying while only the table list
changed underneath it (NBS-FORMAT.md section 8).  A read that finds a table
file gone (another writer conjoined it, or a collector removed it) rebases
onto the current manifest once and reads again; so does a commit whose
conjoin or rebase meets such a table.
"""

from __future__ import annotations

import enum
import functools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from nbs.addr import Addr, compute_addr
from nbs.chunk_source import ChunkSource
from nbs.chunk_store import ITER_BATCH, ITER_WINDOW, check_batch, iter_in_batches, iter_windows
from nbs.conjoiner import Conjoiner
from nbs.errors import StoreClosedError, TableNotFoundError
from nbs.forksafe import register
from nbs.manifest import NOMS_VERSION, ManifestContents, TableSpec
from nbs.manifest_manager import ManifestManager
from nbs.mem_table import MemTable, check_and_hash, check_chunk, fill_memtables
from nbs.stats import Stats, humanize_bytes
from nbs.table_persister import TablePersister
from nbs.table_set import TableSet
from nbs.table_upload import TableUpload
from nbs.table_writer import WrittenTable

DEFAULT_MEMTABLE_SIZE = 128 << 20
PREFLUSH_CHUNK_COUNT = 8
T = TypeVar("T")


class _Outcome(enum.Enum):
    SUCCESS = enum.auto()
    LAST_ROOT_MISMATCH = enum.auto()
    LOCK_FAILED_ROOT = enum.auto()
    LOCK_FAILED_TABLES = enum.auto()


class NomsBlockStore:
    """A content-addressed chunk store with one mutable root."""

    def __init__(self, manager: ManifestManager, persister: TablePersister, conjoiner: Conjoiner,
                 memtable_size: int = 0, contents: ManifestContents | None = None) -> None:
        """Open the store; ``contents`` (if given) is used instead of fetching the manifest."""
        started = time.perf_counter_ns()
        self._mm = manager
        self._persister = persister
        self._conjoiner = conjoiner
        self._memtable_size = memtable_size or DEFAULT_MEMTABLE_SIZE
        self._lock = threading.RLock()
        register(self)
        self._stats = Stats()
        self._memtable: MemTable | None = None
        self._tables = TableSet(persister, self._stats, location=manager.name())
        self._upstream = ManifestContents()
        self._put_count = 0
        self._closed = False
        self._names: tuple[TableSet, frozenset[bytes]] | None = None
        if contents is None:
            contents = manager.fetch(self._stats)
            fetched = True
        else:
            fetched = False
        if contents is not None:
            self._upstream = contents
            self._tables = self._tables.rebase(contents.specs)
        if fetched:
            self._stats.open_latency.sample_time(started)

    def after_fork_in_child(self) -> None:
        self._lock = threading.RLock()

    # -- reads -------------------------------------------------------------------------------

    def _snapshot(self) -> tuple[MemTable | None, TableSet]:
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"store {self._mm.name()} is closed")
            return self._memtable, self._tables

    def _read(self, read: Callable[[MemTable | None, TableSet], T]) -> T:
        """``read`` of a snapshot; if a table file is gone, rebase once and read again.

        The newer manifest names the tables that hold the chunks now; if it
        still names the missing table, the retry raises ``TableNotFoundError``.
        """
        try:
            return read(*self._snapshot())
        except TableNotFoundError:
            self.rebase()
        return read(*self._snapshot())

    def get(self, addr: bytes) -> bytes | None:
        started = time.perf_counter_ns()

        def read(memtable: MemTable | None, tables: TableSet) -> bytes | None:
            data = memtable.get(addr) if memtable is not None else None
            return data if data is not None else tables.get(addr)

        data = self._read(read)
        self._stats.get_latency.sample_time(started)
        self._stats.chunks_per_get.sample(1)
        return data

    def get_many(self, addrs: Iterable[bytes]) -> dict[bytes, bytes]:
        return self.get_many_with_origins(addrs, None)

    def iter_many(self, addrs: Iterable[bytes], batch: int = ITER_BATCH) -> Iterator[tuple[bytes, bytes]]:
        """Go's ``GetMany``, read in file order: ``ITER_WINDOW`` batches of addresses are located at a time,
        then read ``batch`` chunks at a time in the order of their tables, so that records near each other
        are read together whatever the order asked (in hash order, 2.4x as fast as batches read as asked)."""
        check_batch(batch)
        return iter_windows(functools.partial(self._read_in_file_order, batch=batch), addrs, batch * ITER_WINDOW)

    def _read_in_file_order(self, wanted: list[bytes], batch: int) -> Iterator[tuple[bytes, bytes]]:
        """The chunks of ``wanted``, ``batch`` at a time in file order.  If a table file is gone (conjoined or
        collected meanwhile), the chunks not yet read go through ``get_many``, which rebases."""
        started = time.perf_counter_ns()
        memtable, tables = self._snapshot()
        found: dict[bytes, bytes] = {}
        remaining = memtable.get_many(wanted, found) if memtable is not None else wanted
        reads, _ = tables.locate_many(remaining, found)
        self._sample_get(started, len(found))
        yield from found.items()
        for position, (table, located) in enumerate(reads):
            located = located.in_file_order()
            for start in range(0, len(located), batch):
                started = time.perf_counter_ns()
                found = {}
                try:
                    table.read_into(located.part(start, start + batch), found)
                except TableNotFoundError:
                    unread = located.addrs[start:] + [a for _, later in reads[position + 1:] for a in later.addrs]
                    yield from iter_in_batches(self.get_many, unread, batch)
                    return
                self._sample_get(started, len(found))
                yield from found.items()

    def get_many_with_origins(self, addrs: Iterable[bytes],
                              origins: dict[bytes, Addr] | None) -> dict[bytes, bytes]:
        """``get_many`` that also records, in ``origins``, the table that served each chunk.

        Chunks still in the memtable have no table and get no origin; a cache
        keyed by table (the daemon's) must not record them.
        """
        started = time.perf_counter_ns()
        wanted = list(addrs)

        def read(memtable: MemTable | None, tables: TableSet) -> dict[bytes, bytes]:
            found: dict[bytes, bytes] = {}
            remaining = memtable.get_many(wanted, found) if memtable is not None else wanted
            if remaining:
                tables.get_many(remaining, found, origins)
            return found

        found = self._read(read)
        if wanted:
            self._sample_get(started, len(wanted))
        return found

    def _sample_get(self, started: int, chunks: int) -> None:
        if chunks:
            self._stats.get_latency.sample_time(started)
            self._stats.chunks_per_get.sample(chunks)

    def has(self, addr: bytes) -> bool:
        started = time.perf_counter_ns()
        memtable, tables = self._snapshot()
        present = (memtable is not None and memtable.has(addr)) or tables.has(addr)
        self._stats.has_latency.sample_time(started)
        self._stats.addresses_per_has.sample(1)
        return present

    def has_many(self, addrs: Iterable[bytes]) -> set[bytes]:
        started = time.perf_counter_ns()
        wanted = list(addrs)
        memtable, tables = self._snapshot()
        remaining = memtable.has_many(wanted) if memtable is not None else wanted
        if remaining:
            remaining = tables.has_many(remaining)
        if wanted:
            self._stats.has_latency.sample_time(started)
            self._stats.addresses_per_has.sample(len(wanted))
        return set(remaining)

    def tables_holding(self, addrs: Iterable[bytes]) -> dict[bytes, Addr]:
        """Which of the tables this store's manifest names holds each address (absent ones left out).

        An index lookup, no chunk is read: a cache keyed by table (the daemon's)
        re-tags entries with it when a conjoin replaced the table they came from.
        """
        _, tables = self._snapshot()
        return tables.upstream_holders(list(addrs))

    def count(self) -> int:
        memtable, tables = self._snapshot()
        return (memtable.count() if memtable is not None else 0) + tables.count()

    def root(self) -> Addr:
        with self._lock:
            return self._upstream.root

    def version(self) -> str:
        with self._lock:
            return self._upstream.vers

    def stats(self) -> Stats:
        return self._stats.copy()

    def table_names(self) -> frozenset[bytes]:
        """Names of every table this store reads (novel and upstream): its view of the storage."""
        tables = self._tables  # replaced whole, never changed in place: no lock needed to read it
        cached = self._names
        if cached is not None and cached[0] is tables:
            return cached[1]
        names = frozenset(bytes(s.name) for s in tables.sources())
        self._names = (tables, names)
        return names

    def stats_summary(self) -> str:
        with self._lock:
            tables = self._tables
            root = self._upstream.root
        count = sum(s.count() for s in tables.sources())
        return f"Root: {root}; Chunk Count {count}; Physical Bytes {humanize_bytes(tables.physical_len())}"

    def extract_chunks(self) -> Iterator[tuple[bytes, bytes]]:
        """Every chunk in insertion order: tables oldest first, then the memtable."""
        memtable, tables = self._snapshot()
        yield from tables.extract()
        if memtable is not None:
            yield from memtable.extract()

    # -- writes ------------------------------------------------------------------------------

    def put(self, data: bytes) -> Addr:
        """Buffer ``data`` as a chunk; it is durable after the next successful commit."""
        started = time.perf_counter_ns()
        check_chunk(data, self._memtable_size)
        addr = compute_addr(data)
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"store {self._mm.name()} is closed")
            if self._memtable is None:
                self._memtable = MemTable(self._memtable_size)
            if not self._memtable.add_chunk(addr, data):
                self._tables = self._tables.prepend(self._memtable)
                self._memtable = MemTable(self._memtable_size)
                self._memtable.add_chunk(addr, data)
            self._put_count += 1
        self._stats.put_latency.sample_time(started)
        return Addr(addr)

    def put_many(self, chunks: Iterable[bytes]) -> list[Addr]:
        """``[put(c) for c in chunks]``, hashed by the chunk workers; nothing is put if any chunk is refused."""
        started = time.perf_counter_ns()
        items = list(chunks)
        addrs = check_and_hash(items, self._memtable_size)
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"store {self._mm.name()} is closed")
            self._memtable = fill_memtables(self._memtable, self._memtable_size, addrs, items, self._spill)
            self._put_count += len(items)
        self._stats.put_latency.sample_time(started)
        return addrs

    def _spill(self, memtable: MemTable) -> None:
        """A full memtable starts persisting (caller holds the lock)."""
        self._tables = self._tables.prepend(memtable)

    def write_table(self, data: bytes) -> TableSpec:
        """Persist a complete table built elsewhere and add it to the pending (novel) tables.

        This is how clients of the daemon write: they build tables themselves,
        so compression and hashing run in their processes.  The table becomes
        durable in the store at the next successful commit.
        """
        table = WrittenTable.from_bytes(data)
        self._snapshot()
        source = self._persister.persist_table(table, self._stats)
        with self._lock:
            self._tables = self._tables.prepend_source(source)
        return TableSpec(source.name, source.count())

    def receive_table(self) -> TableUpload:
        """A table to be received in verified parts, as ``write_table`` receives it whole; ``add_received`` ends it.

        nbsd's clients stream their tables this way, so the daemon hashes,
        encodes and stores one part while the next is on its way.
        """
        self._snapshot()
        return TableUpload(self._persister.begin_upload(), self._stats, self.has_many)

    def add_received(self, upload: TableUpload, name: bytes | None = None, count: int | None = None) -> TableSpec:
        """Persist the table ``upload`` received (if given, it must be ``name`` with ``count`` chunks) as a pending
        table; a table of no chunks (all were stored already) is not added, and its spec counts 0."""
        self._snapshot()
        source = upload.finish(None if name is None else Addr(name), count)
        if source.count():
            with self._lock:
                self._tables = self._tables.prepend_source(source)
        return TableSpec(source.name, source.count())

    def add_novel_tables(self, specs: Sequence[TableSpec]) -> None:
        """Adopt tables already persisted (by an earlier session) as pending tables."""
        sources = self._persister.open_many(specs, self._stats)
        with self._lock:
            for source in sources:
                self._tables = self._tables.prepend_source(source)

    def rebase(self) -> None:
        with self._lock:
            contents = self._mm.fetch(self._stats)
            if contents is not None:
                self._upstream = contents
                self._tables = self._tables.rebase(contents.specs)

    def commit(self, current: bytes, last: bytes) -> bool:
        """Move the root from ``last`` to ``current``; False if another writer moved it."""
        started = time.perf_counter_ns()
        try:
            current, last = Addr(current), Addr(last)
            with self._lock:
                if self._closed:
                    raise StoreClosedError(f"store {self._mm.name()} is closed")
                if self._memtable is None and not self._tables.novel and current == last:
                    self.rebase()
                    return True
                if self._memtable is not None and self._memtable.count() > PREFLUSH_CHUNK_COUNT:
                    self._tables = self._tables.prepend(self._memtable)
                    self._memtable = None
            self._mm.lock_for_update()
            try:
                while True:
                    try:
                        outcome = self._update_manifest(current, last)
                    except TableNotFoundError:
                        # A conjoin or rebase met a table collected since our view: catch up and try
                        # again, as long as there is something newer to catch up with.
                        seen = self._upstream.lock
                        self.rebase()
                        if self._upstream.lock == seen:
                            raise
                        continue
                    if outcome is _Outcome.SUCCESS:
                        return True
                    if outcome is not _Outcome.LOCK_FAILED_TABLES:
                        return False
            finally:
                self._mm.unlock_for_update()
        finally:
            self._stats.commit_latency.sample_time(started)

    def _update_manifest(self, current: Addr, last: Addr) -> _Outcome:
        with self._lock:
            if self._upstream.root != last:
                return _Outcome.LAST_ROOT_MISMATCH
            cached = self._mm.update_will_fail(self._upstream.lock)
            if cached is not None:
                return self._optimistic_failure(cached, last)
            if self._memtable is not None and self._memtable.count() > 0:
                self._tables = self._tables.prepend(self._memtable)
                self._memtable = None
            if self._conjoiner.conjoin_required(self._tables):
                self._upstream = self._conjoiner.conjoin(self._upstream, self._mm, self._persister, self._stats)
                self._tables = self._tables.rebase(self._upstream.specs)
                return _Outcome.LOCK_FAILED_TABLES
            new = ManifestContents.for_commit(current, self._tables.to_specs())
            stored = self._mm.update(self._upstream.lock, new, self._stats)
            if stored.lock != new.lock:
                return self._optimistic_failure(stored, last)
            self._upstream = new
            self._tables = self._tables.flatten()
            return _Outcome.SUCCESS

    def _optimistic_failure(self, upstream: ManifestContents, last: Addr) -> _Outcome:
        self._upstream = upstream
        self._tables = self._tables.rebase(upstream.specs)
        return _Outcome.LOCK_FAILED_ROOT if last != upstream.root else _Outcome.LOCK_FAILED_TABLES

    # -- lifecycle and introspection ---------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sources: tuple[ChunkSource, ...] = self._tables.sources()
        for source in sources:
            source.close()

    def __enter__(self) -> NomsBlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def put_count(self) -> int:
        """Puts since opening, duplicates included (Go's ``putCount``)."""
        return self._put_count

    @property
    def memtable(self) -> MemTable | None:
        return self._memtable

    @property
    def table_set(self) -> TableSet:
        return self._tables

    @property
    def manifest_name(self) -> str:
        return self._mm.name()

    @property
    def upstream(self) -> ManifestContents:
        return self._upstream

    def __repr__(self) -> str:
        return f"NomsBlockStore({self._mm.name()!r}, root={self.root()}, version={NOMS_VERSION})"
