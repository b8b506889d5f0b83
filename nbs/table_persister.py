"""Table persisters (where tables live) and the conjoin compaction plan they share."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nbs.addr import Addr
from nbs.chunk_source import ChunkSource, EmptyChunkSource
from nbs.index_cache import IndexCache
from nbs.manifest import TableSpec
from nbs.mem_table import Haver, MemTable, sample_persist
from nbs.stats import Stats
from nbs.table_index import encode_index, name_of_suffixes
from nbs.table_upload import MemoryUploadSink, UploadSink
from nbs.table_writer import TableStream, WrittenTable


class TablePersister(abc.ABC):
    """Writes memtables as tables, conjoins tables, and opens tables by name.

    Implementations must be safe for concurrent use: stores persist in
    background threads.
    """

    index_cache: IndexCache | None = None  # where table indexes (and chunk directories) are accounted

    def persist(self, memtable: MemTable, haver: Haver | None, stats: Stats) -> ChunkSource:
        """Write the chunks of ``memtable`` that ``haver`` lacks; empty source if none."""
        stream = memtable.stream(haver)
        if stream.chunk_count == 0:
            return EmptyChunkSource()
        source = self.persist_stream(stream, stats)
        sample_persist(stream.table, stats)
        return source

    def persist_stream(self, stream: TableStream, stats: Stats) -> ChunkSource:
        """Store a non-empty table while it is encoded; by default once it is finished."""
        return self.persist_table(stream.table, stats)

    @abc.abstractmethod
    def persist_table(self, table: WrittenTable, stats: Stats) -> ChunkSource:
        """Store a finished, non-empty table and return it opened."""

    def begin_upload(self) -> UploadSink:
        """Where a table received in parts waits for its end; by default memory, then ``persist_table``."""
        return MemoryUploadSink(self.persist_table)

    @abc.abstractmethod
    def conjoin_all(self, sources: Sequence[ChunkSource], stats: Stats) -> ChunkSource:
        """Write one table holding every chunk of ``sources`` (duplicates kept)."""

    @abc.abstractmethod
    def open(self, name: Addr, chunk_count: int, stats: Stats) -> ChunkSource:
        """Open a table named by a manifest."""

    def open_many(self, specs: Sequence[TableSpec], stats: Stats) -> list[ChunkSource]:
        """Open several tables; remote persisters override this to open them concurrently."""
        return [self.open(spec.name, spec.chunk_count, stats) for spec in specs]

    def close(self) -> None:
        """Release shared resources (nothing by default)."""


@dataclass(frozen=True)
class PlannedSource:
    source: ChunkSource
    data_len: int


@dataclass(frozen=True)
class CompactionPlan:
    """How to build a conjoined table: chunk regions in ``sources`` order, then ``merged_index``."""

    sources: tuple[PlannedSource, ...]
    merged_index: bytes
    name: Addr
    chunk_count: int
    total_compressed_data: int

    @property
    def table_size(self) -> int:
        return self.total_compressed_data + len(self.merged_index)


def plan_conjoin(sources: Sequence[ChunkSource], stats: Stats | None = None) -> CompactionPlan:
    """Order sources by chunk-region size (largest first, then name) and merge their indexes."""
    planned = sorted((PlannedSource(s, s.index().data_len) for s in sources if s.count() > 0),
                     key=lambda p: (-p.data_len, bytes(p.source.name)))
    tuples: list[tuple[int, int]] = []
    lengths: list[int] = []
    suffixes: list[bytes] = []
    ordinal_offset = 0
    uncompressed = 0
    for p in planned:
        index = p.source.index()
        tuples.extend(index.prefix_tuples(ordinal_offset))
        lengths.extend(index.lengths)
        suffixes.append(index.suffixes)
        ordinal_offset += index.chunk_count
        uncompressed += index.total_uncompressed
    suffix_block = b"".join(suffixes)
    merged = encode_index(tuples, lengths, suffix_block, uncompressed) if planned else b""
    total_data = sum(p.data_len for p in planned)
    if stats is not None and planned:
        stats.bytes_per_conjoin.sample(total_data + len(merged))
    return CompactionPlan(tuple(planned), merged, name_of_suffixes(suffix_block),
                          ordinal_offset, total_data)


def copy_chunk_regions(plan: CompactionPlan, write: Callable[[bytes], object], piece: int = 8 << 20) -> None:
    """Stream each planned source's chunk region to ``write`` in plan order."""
    for p in plan.sources:
        for start in range(0, p.data_len, piece):
            write(p.source.read_at(start, min(piece, p.data_len - start)))
