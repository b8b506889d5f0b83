"""Bounded memory while importing: one persist at a time per store, and streamed records not kept (issue 16)."""

from __future__ import annotations

import os
import random
import threading
import tracemalloc
import weakref
from pathlib import Path

import pytest

from nbs import mem_table, store
from nbs.addr import addresses_of
from nbs.chunk_source import ChunkSource
from nbs.factory import new_local_store
from nbs.mem_table import Haver, MemTable
from nbs.memory_table_persister import MemoryTablePersister
from nbs.stats import Stats
from nbs.table_writer import TableStream, build_table
from tests.forking import in_child
from tests.unit.fakes import GatedPersister
from tests.unit.test_block_store import make_store

KIB = 1 << 10
MIB = 1 << 20


def random_chunks(count: int, size: int = 4 * KIB, seed: int = 32) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(size) for _ in range(count)]


def put_in_thread(target: store.NomsBlockStore, chunks: list[bytes]) -> threading.Thread:
    thread = threading.Thread(target=target.put_many, args=(chunks,), daemon=True)
    thread.start()
    return thread


def test_streamed_records_are_not_kept_and_the_bytes_are_the_same() -> None:
    addrs_chunks = [(bytes(addresses_of([c])[0]), c) for c in random_chunks(600, 1 * KIB)]
    kept = build_table(addrs_chunks)
    stream = TableStream([a for a, _ in addrs_chunks], [c for _, c in addrs_chunks])
    assert b"".join(stream.pieces(keep=False)) == kept.data
    table = stream.table
    assert table.pieces == (kept.pieces[-1],)  # the index alone
    assert (table.name, table.size, table.chunk_count, table.compressed_len) == (
        kept.name, kept.size, kept.chunk_count, kept.compressed_len)
    assert table.index().addresses() == kept.index().addresses()
    with pytest.raises(ValueError, match="without keeping its records"):
        _ = table.data


def test_put_many_waits_for_the_persist_slot_and_resumes_when_the_persist_ends() -> None:
    persister = GatedPersister()
    s = make_store(persister=persister, memtable_size=16 * KIB)
    chunks = random_chunks(12)  # three memtables: one persisting, one waiting for the slot, one filling
    putter = put_in_thread(s, chunks)
    putter.join(0.5)
    assert putter.is_alive() and persister.attempts == 0  # the second full memtable waits for the slot
    persister.release.set()
    putter.join(10)
    assert not putter.is_alive()
    assert s.commit(s.put(b"root"), s.root())
    assert s.get_many(addresses_of(chunks)).keys() == set(addresses_of(chunks))


def test_a_failed_persist_frees_its_slot() -> None:
    persister = GatedPersister(failures=1)
    persister.release.set()
    s = make_store(persister=persister, memtable_size=16 * KIB)
    chunks = random_chunks(16)
    putter = put_in_thread(s, chunks)
    putter.join(10)
    assert not putter.is_alive()  # the persists after the failed one got the slot
    root = s.put(b"root")
    with pytest.raises(OSError, match="injected"):
        s.commit(root, s.root())
    assert s.commit(root, s.root())  # the failed table is persisted again once needed
    assert len(s.get_many(addresses_of(chunks))) == len(chunks)


def test_a_child_forked_while_a_persist_holds_the_slot_can_put(tmp_path: Path) -> None:
    persister = GatedPersister()
    s = make_store(persister=persister, memtable_size=16 * KIB)
    s.put_many(random_chunks(5))  # one full memtable persisting (gated): the only slot is taken

    def import_in_child() -> int:
        persister.release.set()  # the child's persists run; the parent's is not in the child
        chunks = random_chunks(12, seed=7)
        s.put_many(chunks)  # would wait forever for the parent's slot
        assert s.commit(s.put(b"child root"), s.root())
        return len(s.get_many(addresses_of(chunks)))

    try:
        assert in_child(import_in_child, timeout=20) == 12
    finally:
        persister.release.set()
    assert s.commit(s.put(b"parent root"), s.root())


class _LiveMemtables(MemTable):
    live: weakref.WeakSet[MemTable] = weakref.WeakSet()

    def __init__(self, max_data: int) -> None:
        super().__init__(max_data)
        self.live.add(self)


class _CountingPersister(MemoryTablePersister):
    """Notes how many memtables are alive whenever a persist starts."""

    def __init__(self) -> None:
        super().__init__()
        self.most_live = 0

    def persist(self, memtable: MemTable, haver: Haver | None, stats: Stats) -> ChunkSource:
        self.most_live = max(self.most_live, len(_LiveMemtables.live))
        return super().persist(memtable, haver, stats)


def test_an_import_holds_at_most_the_filling_and_the_persisting_memtable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mem_table, "MemTable", _LiveMemtables)
    monkeypatch.setattr(store, "MemTable", _LiveMemtables)
    persister = _CountingPersister()
    s = make_store(persister=persister, memtable_size=64 * KIB)
    chunks = random_chunks(32 * 16)  # 32 memtables
    most_live = 0
    for start in range(0, len(chunks), 8):
        s.put_many(chunks[start:start + 8])
        most_live = max(most_live, len(_LiveMemtables.live))
    assert s.commit(s.put(b"root"), s.root())
    assert 0 < persister.most_live <= 2 and most_live <= 2


def test_a_local_import_traces_about_two_memtables(tmp_path: Path) -> None:
    """Python's allocations while importing 16 MiB stay within the bound README states (2 memtables + overhead)."""
    memtable_size = 1 * MIB
    s = new_local_store(str(tmp_path), memtable_size, sync=False)
    rng = random.Random(32)
    tracemalloc.start()
    try:
        for _ in range(16 * MIB // (64 * 4 * KIB)):
            s.put_many([rng.randbytes(4 * KIB) for _ in range(64)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert s.commit(s.put(b"root"), s.root())
    s.close()
    assert len(os.listdir(tmp_path)) > 16  # the import wrote its tables
    assert peak <= 2 * memtable_size + 2 * MIB, f"traced peak {peak / MIB:.1f} MiB"
