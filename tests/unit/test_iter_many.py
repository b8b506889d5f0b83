"""How a store's ``iter_many`` splits its reads: ``iter_in_batches``, and a local store's reads in file order."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from nbs.chunk_store import iter_in_batches
from nbs.factory import new_local_store


class Recorder:
    """A ``get_many`` over a dict that records the addresses of each call."""

    def __init__(self, stored: dict[bytes, bytes]) -> None:
        self.stored = stored
        self.calls: list[set[bytes]] = []

    def __call__(self, addrs: Iterable[bytes]) -> dict[bytes, bytes]:
        wanted = set(addrs)
        self.calls.append(wanted)
        return {a: self.stored[a] for a in wanted if a in self.stored}


def addresses(count: int) -> list[bytes]:
    return [b"%020d" % i for i in range(count)]


def test_reads_batch_by_batch_and_only_as_far_as_consumed() -> None:
    wanted = addresses(25)
    get_many = Recorder({a: a[::-1] for a in wanted})
    taken: list[bytes] = []

    def lazily() -> Iterator[bytes]:
        for a in wanted:
            taken.append(a)
            yield a

    pairs = iter_in_batches(get_many, lazily(), batch=10)
    first = next(pairs)
    assert get_many.calls == [set(wanted[:10])] and taken == wanted[:10]
    rest = list(pairs)
    assert [len(c) for c in get_many.calls] == [10, 10, 5]
    assert dict([first, *rest]) == {a: a[::-1] for a in wanted}


def test_absent_left_out_and_repeats_read_once() -> None:
    wanted = addresses(12)
    get_many = Recorder(dict.fromkeys(wanted[::2], b"x"))
    pairs = list(iter_in_batches(get_many, wanted + wanted[:4] + [wanted[0]], batch=5))
    assert sorted(a for a, _ in pairs) == wanted[::2]
    assert [len(c) for c in get_many.calls] == [5, 5, 2]  # the last batch repeats only: no call


def test_a_batch_of_no_address_is_refused_at_the_call() -> None:
    with pytest.raises(ValueError, match="at least one address"):
        iter_in_batches(Recorder({}), addresses(3), batch=0)


def test_nothing_asked_nothing_read() -> None:
    get_many = Recorder({})
    assert list(iter_in_batches(get_many, [])) == [] and get_many.calls == []


def test_a_local_store_reads_in_file_order_whatever_the_order_asked(tmp_path: Path) -> None:
    """Batches of addresses in hash order would each need a read per chunk (its neighbours in the file lie in
    other batches); located first and sorted, they read as few times as the same chunks asked in file order."""
    chunks = [os.urandom(1000) for _ in range(3000)]  # incompressible: records 1 KiB apart, gaps beyond a block
    writer = new_local_store(str(tmp_path), sync=False)
    addrs = writer.put_many(chunks)
    assert writer.commit(addrs[-1], writer.root())
    reads = []
    for order in (addrs, sorted(addrs), random.Random(5).sample(addrs, len(addrs))):
        reader = new_local_store(str(tmp_path))
        assert dict(reader.iter_many(order, batch=100)) == dict(zip(addrs, chunks))
        reads.append(reader.stats().file_bytes_per_read.samples)
        assert reader.stats().chunks_per_get.samples == 30  # a sample per batch read
    assert reads[0] <= 30 and reads[1] == reads[2] == reads[0]


def test_a_local_store_reads_its_uncommitted_tables_a_batch_at_a_time(tmp_path: Path) -> None:
    """Tables persisted from full memtables but not yet committed are read in batches too, not all at once."""
    store = new_local_store(str(tmp_path), memtable_size=50_000, sync=False)
    chunks = [os.urandom(1000) for _ in range(205)]  # 4 tables of 50 chunks, and 5 chunks in the memtable
    addrs = store.put_many(chunks)
    assert store.count() == 205  # waits for the tables' persists: all four are read from their files
    asked = random.Random(7).sample(addrs, len(addrs))
    assert dict(store.iter_many(asked, batch=4)) == dict(zip(addrs, chunks))
    largest = max(bucket for bucket, count in enumerate(store.stats().chunks_per_get.buckets) if count)
    assert largest == 2  # samples of 4 to 7 chunks (the memtable's 5, then reads of 4); a table at once is 50
