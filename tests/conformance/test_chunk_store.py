"""The ChunkStore contract, checked against every implementation (see backends.py)."""

from __future__ import annotations

import os
import threading

import pytest

from nbs.addr import EMPTY_ADDR, Addr
from nbs.chunk_store import ITER_BATCH, ChunkStore
from nbs.errors import ChunkError, StoreClosedError
from nbs.stats import Stats
from tests.conformance.backends import Backend

SMALL_MEMTABLE = 4096


def test_implements_protocol(backend: Backend) -> None:
    assert isinstance(backend.open(), ChunkStore)


def test_fresh_store(backend: Backend) -> None:
    s = backend.open()
    assert s.root() == EMPTY_ADDR
    assert s.version() == "7.18"
    assert s.count() == 0
    assert s.get(Addr.of(b"missing")) is None
    assert not s.has(Addr.of(b"missing"))
    assert s.get_many([Addr.of(b"missing")]) == {}
    assert s.has_many([Addr.of(b"missing")]) == {Addr.of(b"missing")}


def test_put_returns_address_and_is_readable_before_commit(backend: Backend) -> None:
    s = backend.open()
    a = s.put(b"abc")
    assert a == Addr.of(b"abc") and isinstance(a, Addr)
    assert s.get(a) == b"abc" and s.has(a)
    assert s.count() == 1


def test_commit_makes_chunks_durable(backend: Backend) -> None:
    s = backend.open()
    chunks = [b"chunk-%d" % i for i in range(50)]
    addrs = [s.put(c) for c in chunks]
    assert s.commit(addrs[-1], s.root())
    assert s.root() == addrs[-1]
    other = backend.open()
    assert other.root() == addrs[-1]
    assert other.get_many(addrs) == dict(zip(addrs, chunks))
    assert other.has_many(addrs) == set()


def test_uncommitted_chunks_are_not_visible_elsewhere(backend: Backend) -> None:
    s = backend.open()
    a = s.put(b"pending")
    other = backend.open()
    assert other.get(a) is None and not other.has(a)


def test_get_many_and_has_many_mixed(backend: Backend) -> None:
    s = backend.open()
    present = [s.put(b"p%d" % i) for i in range(10)]
    assert s.commit(present[0], s.root())
    later = [s.put(b"q%d" % i) for i in range(3)]
    absent = [Addr.of(b"absent%d" % i) for i in range(5)]
    wanted = present + later + absent + present[:2]
    got = s.get_many(wanted)
    assert set(got) == set(present + later)
    assert all(got[a] == s.get(a) for a in got)
    assert s.has_many(wanted) == set(absent)


def test_get_many_keys_are_the_requested_objects(backend: Backend) -> None:
    s = backend.open()
    a = s.put(b"key identity")
    s.commit(a, s.root())
    raw = bytes(a)
    got = s.get_many([raw])
    assert list(got) == [raw]


def test_iter_many_yields_each_found_chunk_once_over_several_batches(backend: Backend) -> None:
    s = backend.open()
    chunks = [b"iter-%d" % i for i in range(ITER_BATCH + 200)]
    addrs = s.put_many(chunks)
    assert s.commit(addrs[-1], s.root())
    pending = s.put_many([b"pending-%d" % i for i in range(3)])
    absent = [Addr.of(b"nowhere-%d" % i) for i in range(4)]
    again = addrs[:5] + [bytes(a) for a in addrs[-5:]]  # asked again in a later batch
    pairs = list(s.iter_many(absent[:2] + addrs + pending + absent[2:] + again))
    expected = {**dict(zip(addrs, chunks)), **{a: b"pending-%d" % i for i, a in enumerate(pending)}}
    assert len(pairs) == len(expected)
    assert dict(pairs) == expected
    assert list(backend.open().iter_many(absent)) == []


def test_binary_and_large_chunks(backend: Backend) -> None:
    s = backend.open()
    chunks = [bytes(range(256)) * 4, os.urandom(1 << 20), b"\x00", bytes(70000)]
    addrs = [s.put(c) for c in chunks]
    assert s.commit(addrs[0], s.root())
    other = backend.open()
    assert [other.get(a) for a in addrs] == chunks


def test_many_tables_from_a_small_memtable(backend: Backend) -> None:
    s = backend.open(SMALL_MEMTABLE)
    chunks = [os.urandom(1000) for _ in range(40)]
    addrs = [s.put(c) for c in chunks]
    assert s.commit(addrs[0], s.root())
    other = backend.open()
    assert other.get_many(addrs) == dict(zip(addrs, chunks))
    assert other.count() == 40


def test_duplicate_puts_are_stored_once(backend: Backend) -> None:
    s = backend.open()
    a = s.put(b"same")
    s.commit(a, s.root())
    b = s.put(b"same")
    assert a == b
    s.commit(b, s.root())
    assert backend.open().count() == 1


def test_commit_with_stale_last_fails_and_catches_up(backend: Backend) -> None:
    s1, s2 = backend.open(), backend.open()
    a = s1.put(b"first writer")
    assert s1.commit(a, EMPTY_ADDR)
    b = s2.put(b"second writer")
    assert not s2.commit(b, EMPTY_ADDR)
    assert s2.root() == a
    assert s2.get(a) == b"first writer"
    assert s2.commit(b, s2.root())
    s1.rebase()
    assert s1.root() == b and s1.get(b) == b"second writer"


def test_rebase_sees_other_commits(backend: Backend) -> None:
    s1, s2 = backend.open(), backend.open()
    a = s1.put(b"rebased")
    assert s1.commit(a, s1.root())
    assert s2.root() == EMPTY_ADDR
    s2.rebase()
    assert s2.root() == a and s2.get(a) == b"rebased"


def test_no_op_commit(backend: Backend) -> None:
    s = backend.open()
    assert s.commit(EMPTY_ADDR, EMPTY_ADDR)
    assert s.root() == EMPTY_ADDR


def test_commit_of_root_never_put(backend: Backend) -> None:
    s = backend.open()
    r = Addr.of(b"never stored")
    assert s.commit(r, EMPTY_ADDR)
    assert backend.open().root() == r


def test_commit_chain(backend: Backend) -> None:
    s = backend.open()
    roots = []
    for i in range(5):
        r = s.put(b"root %d" % i)
        assert s.commit(r, s.root())
        roots.append(r)
    other = backend.open()
    assert other.root() == roots[-1]
    assert all(other.has(r) for r in roots)


def test_invalid_chunks_rejected(backend: Backend) -> None:
    s = backend.open(SMALL_MEMTABLE)
    with pytest.raises(ChunkError):
        s.put(b"")
    with pytest.raises(ChunkError):
        s.put(bytes(SMALL_MEMTABLE + 1))
    assert s.count() == 0


def test_stats(backend: Backend) -> None:
    s = backend.open()
    a = s.put(b"measured")
    s.get(a)
    s.commit(a, s.root())
    st = s.stats()
    assert isinstance(st, Stats)
    assert st.put_latency.samples >= 1 and st.get_latency.samples >= 1 and st.commit_latency.samples >= 1


def test_closed_store_refuses_work(backend: Backend) -> None:
    s = backend.open()
    s.close()
    with pytest.raises(StoreClosedError):
        s.put(b"late")
    with pytest.raises(StoreClosedError):
        s.get(Addr.of(b"late"))


def test_concurrent_puts_from_threads(backend: Backend) -> None:
    s = backend.open(SMALL_MEMTABLE)
    per_thread = 50
    addrs: list[list[Addr]] = [[] for _ in range(4)]

    def writer(t: int) -> None:
        for i in range(per_thread):
            addrs[t].append(s.put(b"t%d-%d" % (t, i) * 20))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert s.commit(addrs[0][0], s.root())
    other = backend.open()
    everything = [a for group in addrs for a in group]
    assert other.has_many(everything) == set()
    assert other.count() >= 4 * per_thread


def test_put_many_returns_addresses_in_order_and_stores_duplicates_once(backend: Backend) -> None:
    s = backend.open()
    chunks = [b"many-%d" % (i % 7) for i in range(20)]
    addrs = s.put_many(chunks)
    assert addrs == [Addr.of(c) for c in chunks] and all(isinstance(a, Addr) for a in addrs)
    assert s.count() == 7
    assert s.get_many(addrs) == {Addr.of(c): c for c in chunks}
    assert s.put_many([]) == []
    assert s.commit(addrs[0], s.root())
    assert backend.open().get_many(addrs) == {Addr.of(c): c for c in chunks}


def test_put_many_over_many_memtables(backend: Backend) -> None:
    s = backend.open(SMALL_MEMTABLE)
    chunks = [os.urandom(700) for _ in range(600)]  # more than one batch of the chunk workers
    addrs = s.put_many(chunks)
    assert s.commit(addrs[-1], s.root())
    other = backend.open()
    assert other.get_many(addrs) == dict(zip(addrs, chunks))
    assert other.count() == 600


def test_put_many_refuses_all_when_one_chunk_is_invalid(backend: Backend) -> None:
    s = backend.open(SMALL_MEMTABLE)
    good = [b"fine-%d" % i for i in range(5)]
    for bad in (b"", b"x" * (SMALL_MEMTABLE + 1)):
        with pytest.raises(ChunkError):
            s.put_many([*good, bad])
    assert s.count() == 0
    assert s.get_many([Addr.of(c) for c in good]) == {}


def test_put_many_on_a_closed_store(backend: Backend) -> None:
    s = backend.open()
    s.close()
    with pytest.raises(StoreClosedError):
        s.put_many([b"late"])
