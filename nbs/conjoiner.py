"""Conjoin: when a store names too many tables, merge the smallest upstream ones into one.

The policy (NBS-FORMAT.md section 7) sorts upstream tables by chunk count and
takes the smallest run whose running sum exceeds the next table's count, so
repeated conjoins behave like a log-structured merge.  The manifest swap is
optimistic; a lost race reuses the conjoined table when its inputs survive.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from typing import Protocol

from nbs.addr import Addr
from nbs.chunk_source import ChunkSource
from nbs.manifest import ManifestContents, TableSpec
from nbs.stats import Stats
from nbs.table_persister import TablePersister
from nbs.table_set import TableSet

DEFAULT_MAX_TABLES = 192
AWS_MAX_TABLES = 128


class ManifestUpdater(Protocol):
    def update(self, last_lock: Addr, new: ManifestContents, stats: Stats) -> ManifestContents: ...


class Conjoiner(abc.ABC):
    @abc.abstractmethod
    def conjoin_required(self, tables: TableSet) -> bool: ...

    @abc.abstractmethod
    def conjoin(self, upstream: ManifestContents, updater: ManifestUpdater,
                persister: TablePersister, stats: Stats) -> ManifestContents: ...


class InlineConjoiner(Conjoiner):
    """Conjoins synchronously inside a commit once the table count passes ``max_tables``."""

    def __init__(self, max_tables: int = DEFAULT_MAX_TABLES) -> None:
        self.max_tables = max_tables

    def conjoin_required(self, tables: TableSet) -> bool:
        # Go would also try with fewer than two upstream tables and panic; nothing can be merged then.
        return tables.size() > self.max_tables and len(tables.upstream) >= 2

    def conjoin(self, upstream: ManifestContents, updater: ManifestUpdater,
                persister: TablePersister, stats: Stats) -> ManifestContents:
        return conjoin(upstream, updater, persister, stats)


def choose_conjoinees(sources: Sequence[ChunkSource]) -> tuple[list[ChunkSource], list[ChunkSource]]:
    """Split sources into (to conjoin, to keep) by the size-tiered rule."""
    ordered = sorted(sources, key=lambda s: (s.count(), bytes(s.name)))
    partition = 2
    total = ordered[0].count() + ordered[1].count()
    while partition < len(ordered) and total > ordered[partition].count():
        total += ordered[partition].count()
        partition += 1
    return ordered[:partition], ordered[partition:]


def conjoin(upstream: ManifestContents, updater: ManifestUpdater,
            persister: TablePersister, stats: Stats) -> ManifestContents:
    """Conjoin upstream tables and swap them in the manifest; returns the resulting contents."""
    started = time.perf_counter_ns()
    sources = persister.open_many(upstream.specs, stats)
    conjoinees, keepers = choose_conjoinees(sources)
    conjoined = persister.conjoin_all(conjoinees, stats)
    stats.conjoin_latency.sample_time(started)
    stats.tables_per_conjoin.sample(len(conjoinees))
    if conjoined.count():
        stats.chunks_per_conjoin.sample(conjoined.count())
    conjoined_spec = TableSpec(conjoined.name, conjoined.count())
    conjoined_names = {bytes(s.name) for s in conjoinees}
    keeper_specs = [TableSpec(s.name, s.count()) for s in keepers]
    while True:
        new = ManifestContents.for_commit(upstream.root, [conjoined_spec, *keeper_specs])
        upstream = updater.update(upstream.lock, new, stats)
        if upstream.lock == new.lock:
            return upstream
        present = {bytes(s.name) for s in upstream.specs}
        if not conjoined_names <= present:
            return upstream
        keeper_specs = [s for s in upstream.specs if bytes(s.name) not in conjoined_names]
