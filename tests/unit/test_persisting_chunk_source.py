"""Persisting chunk source (NBS-FORMAT.md 4.2, 14.7)."""

import pytest

from nbs.addr import EMPTY_ADDR, Addr
from nbs.forksafe import Semaphore
from nbs.mem_table import MemTable
from nbs.persisting_chunk_source import PersistingChunkSource
from nbs.stats import Stats
from tests.helpers import TEST_CHUNKS, memtable_of
from tests.unit.fakes import GatedPersister


def test_empty_memtable_persists_to_empty_source() -> None:
    p = GatedPersister()
    p.release.set()
    src = PersistingChunkSource(MemTable(256), None, p, Stats(), Semaphore(1))
    assert src.name == EMPTY_ADDR
    assert src.count() == 0


def test_answers_from_memtable_until_persisted() -> None:
    p = GatedPersister()
    mt = memtable_of(TEST_CHUNKS, 256)
    stats = Stats()
    src = PersistingChunkSource(mt, None, p, stats, Semaphore(1))
    assert all(src.has(Addr.of(c)) for c in TEST_CHUNKS)
    assert src.memtable is mt and mt.count() == 3
    assert not p.tables  # nothing written yet
    p.release.set()
    assert src.name != EMPTY_ADDR
    assert src.count() == 3
    assert all(src.has(Addr.of(c)) for c in TEST_CHUNKS)
    assert src.memtable is None
    assert stats.persist_latency.samples == 1
    mt.add_chunk(Addr.of(b"additional"), b"additional")
    assert src.count() == 3 and not src.has(Addr.of(b"additional"))


def test_failed_persist_is_reported_then_retried() -> None:
    p = GatedPersister(failures=1)
    p.release.set()
    src = PersistingChunkSource(memtable_of(TEST_CHUNKS, 256), None, p, Stats(), Semaphore(1))
    with pytest.raises(OSError, match="injected"):
        src.count()
    assert src.has(Addr.of(TEST_CHUNKS[0]))  # the memtable still answers
    assert p.attempts == 1  # no retry runs in the background against a failing backend
    assert src.count() == 3  # the retry, once the table was needed, succeeded
    assert p.attempts == 2


def test_semaphore_bounds_concurrent_persists() -> None:
    p = GatedPersister()
    slots = Semaphore(1)
    PersistingChunkSource(memtable_of([b"a"]), None, p, Stats(), slots)
    assert not slots.acquire(blocking=False)  # the one slot is held by the running persist
    p.release.set()
    assert slots.acquire(timeout=5)
