"""The tables a store reads from: novel ones it wrote and upstream ones its manifest names.

A ``TableSet`` is an immutable value; every change returns a new set.  Novel
tables are newest first and are searched one by one, before upstream tables.
Upstream tables, which may number up to the conjoin threshold, are searched
through one ``ChunkDirectory``, shared by the sets derived from each other and,
through the index cache, by the stores of one location in a process (the
daemon's sessions of one store).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from nbs.addr import Addr
from nbs.chunk_directory import ChunkDirectory
from nbs.chunk_source import ChunkSource, Located, TableChunkSource
from nbs.forksafe import Semaphore
from nbs.manifest import TableSpec
from nbs.mem_table import MemTable
from nbs.persisting_chunk_source import CONCURRENT_PERSISTS, PersistingChunkSource
from nbs.stats import Stats
from nbs.table_index import index_size
from nbs.table_persister import TablePersister

Reads = tuple[TableChunkSource, Located]  # chunks to read from one table


class TableSet:
    def __init__(self, persister: TablePersister, stats: Stats,
                 novel: Sequence[ChunkSource] = (), upstream: Sequence[ChunkSource] = (),
                 slots: Semaphore | None = None, location: str = "", directory: ChunkDirectory | None = None,
                 view: dict[int, TableChunkSource] | None = None) -> None:
        """``location`` (the manifest's name) lets stores of one location share a directory.

        ``directory`` (of a set this one derives from) is reused; ``view`` says it already indexes ``upstream``.
        """
        self.persister = persister
        self.stats = stats
        self.novel: tuple[ChunkSource, ...] = tuple(novel)
        self.upstream: tuple[ChunkSource, ...] = tuple(upstream)
        self.location = location
        self._slots = slots if slots is not None else Semaphore(CONCURRENT_PERSISTS)
        if directory is None or view is None:
            directory, view = self._index_upstream(directory)
        self._directory = directory
        self._view = view

    def _index_upstream(self, directory: ChunkDirectory | None
                        ) -> tuple[ChunkDirectory, dict[int, TableChunkSource]]:
        """The directory to read upstream through: this lineage's or the location's, unless worn; else a fresh one."""
        tables = [t for t in (s.persisted() for s in self.upstream) if t is not None]
        cache = self.persister.index_cache
        shared = cache.directories.get(self.location) if cache is not None and self.location else None
        for candidate in (directory, shared if shared is not directory else None):
            if candidate is not None:
                view = candidate.add(tables)
                if not candidate.worn(view):
                    return candidate, view
        fresh = ChunkDirectory(cache.charge if cache is not None else None)
        if cache is not None and self.location:
            cache.directories[self.location] = fresh
        return fresh, fresh.add(tables)

    def _derive(self, novel: Sequence[ChunkSource], upstream: Sequence[ChunkSource]) -> TableSet:
        same = tuple(upstream) == self.upstream
        return TableSet(self.persister, self.stats, novel, upstream, self._slots, self.location, self._directory,
                        self._view if same else None)

    @property
    def directory(self) -> ChunkDirectory:
        """The index over the upstream tables (shared with the sets this one derives from)."""
        return self._directory

    def sources(self) -> tuple[ChunkSource, ...]:
        return self.novel + self.upstream

    def size(self) -> int:
        return len(self.novel) + len(self.upstream)

    def has(self, addr: bytes) -> bool:
        return any(s.has(addr) for s in self.novel) or self._directory.locate(addr, self._view) is not None

    def get(self, addr: bytes) -> bytes | None:
        for source in self.novel:
            data = source.get(addr)
            if data is not None:
                return data
        located = self._directory.locate(addr, self._view)
        if located is None:
            return None
        table, ordinal = located
        return table.get_ordinal(ordinal, addr)

    def has_many(self, addrs: Sequence[bytes]) -> list[bytes]:
        """Addresses no table holds."""
        remaining = list(addrs)
        for source in self.novel:
            if not remaining:
                return remaining
            remaining = source.has_many(remaining)
        return self._directory.absent(remaining, self._view) if remaining else remaining

    def get_many(self, addrs: Sequence[bytes], found: dict[bytes, bytes],
                 origins: dict[bytes, Addr] | None = None) -> list[bytes]:
        """Fill ``found``; with ``origins``, also record which table served each chunk."""
        reads, missing = self.locate_many(addrs, found, origins)
        for table, located in reads:
            table.read_into(located, found)
            if origins is not None:
                origins.update(dict.fromkeys(located.addrs, table.name))
        return missing

    def locate_many(self, addrs: Sequence[bytes], found: dict[bytes, bytes],
                    origins: dict[bytes, Addr] | None = None) -> tuple[list[Reads], list[bytes]]:
        """The tables to read the chunks of ``addrs`` from, and the addresses no table holds.

        Chunks already in memory (a memtable still persisting) go into ``found``
        at once (and their table into ``origins``); every other chunk is only
        located, so that a caller can read them a batch at a time.
        """
        reads: list[Reads] = []
        remaining = list(addrs)
        for source in self.novel:
            if not remaining:
                return reads, remaining
            in_memory = isinstance(source, PersistingChunkSource) and source.memtable is not None
            table = None if in_memory else source.persisted()
            if table is not None:
                located, remaining = table.locate(remaining)
                if located:
                    reads.append((table, located))
                continue
            before = remaining
            remaining = source.get_many(remaining, found)
            if origins is not None and len(remaining) < len(before):
                left = set(remaining)
                name = source.name
                origins.update((a, name) for a in before if a not in left)
        if remaining:
            groups, remaining = self._directory.locate_many(remaining, self._view)
            reads.extend(groups.items())
        return reads, remaining

    def upstream_holders(self, addrs: Sequence[bytes]) -> dict[bytes, Addr]:
        """The upstream table holding each address that one holds: an index lookup, no chunk is read."""
        groups, _ = self._directory.locate_many(addrs, self._view)
        return {a: table.name for table, located in groups.items() for a in located.addrs}

    def calc_reads(self, addrs: Sequence[bytes]) -> tuple[int, list[bytes]]:
        reads = 0
        remaining = list(addrs)
        for source in self.sources():
            if not remaining:
                break
            n, remaining = source.calc_reads(remaining)
            reads += n
        return reads, remaining

    def count(self) -> int:
        return sum(s.count() for s in self.sources())

    def uncompressed_len(self) -> int:
        return sum(s.uncompressed_len() for s in self.sources())

    def physical_len(self) -> int:
        """Bytes of chunk data and indexes (footers not counted, as in Go)."""
        total = 0
        for source in self.sources():
            if source.count():
                index = source.index()
                total += index.data_len + index_size(index.chunk_count)
        return total

    def prepend(self, memtable: MemTable) -> TableSet:
        """A set with ``memtable`` persisting in front; dedup against this set."""
        source = PersistingChunkSource(memtable, self, self.persister, self.stats, self._slots)
        return self._derive((source,) + self.novel, self.upstream)

    def prepend_source(self, source: ChunkSource) -> TableSet:
        """A set with an already-persisted novel table in front."""
        return self._derive((source,) + self.novel, self.upstream)

    def extract(self) -> Iterator[tuple[bytes, bytes]]:
        """Every chunk, oldest table first."""
        for source in reversed(self.upstream):
            yield from source.extract()
        for source in reversed(self.novel):
            yield from source.extract()

    def flatten(self) -> TableSet:
        """Novel tables become upstream (after a successful manifest update)."""
        novel = [s for s in self.novel if s.count() > 0]
        return self._derive((), novel + list(self.upstream))

    def rebase(self, specs: Sequence[TableSpec]) -> TableSet:
        """Keep novel tables; upstream becomes the tables of ``specs`` (opened once each)."""
        novel = [s for s in self.novel if s.count() > 0]
        open_now = {bytes(s.name): s for s in self.upstream}
        wanted: dict[bytes, TableSpec] = {}
        for spec in specs:
            wanted.setdefault(bytes(spec.name), spec)
        to_open = [spec for name, spec in wanted.items() if name not in open_now]
        opened = {bytes(s.name): s for s in self.persister.open_many(to_open, self.stats)}
        upstream = [open_now.get(name) or opened[name] for name in wanted]
        return self._derive(novel, upstream)

    def to_specs(self) -> list[TableSpec]:
        """Specs of novel (non-empty) then upstream tables; waits for persists."""
        specs = [TableSpec(s.name, s.count()) for s in self.novel if s.count() > 0]
        specs.extend(TableSpec(s.name, s.count()) for s in self.upstream)
        return specs
