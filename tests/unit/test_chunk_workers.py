"""Chunk worker processes: the same bytes as in-thread work, and never a failure of their own.

These start real worker processes (``nbs/chunk_worker.py``) over real memfds
and pipes; faults are real too (a killed or stopped worker).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import crc32c
import psutil
import pytest

import nbs.chunk_workers as workers
from nbs import chunk_source
from nbs import chunk_worker as wire
from nbs.addr import Addr, addresses_of, digests_of
from nbs.chunk_jobs import encode_all, hash_all, hash_encode_all, verify_all
from nbs.errors import CorruptTableError
from nbs.factory import new_local_store
from nbs.record import RecordBatchError, decode_records, encode_record, encode_records
from nbs.table_index import parse_table_index
from tests.forking import in_child


def mixed(count: int) -> list[bytes]:
    """Distinct chunks from 1 byte to 9 KiB, random and repetitive."""
    return [os.urandom(1 + i * 37 % 9000) if i % 2 else b"row %d;" % i * (1 + i % 300) for i in range(count)]


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[workers.ChunkWorkers]:
    """A pool of two workers of this test's own."""
    fresh = workers.ChunkWorkers(2)
    monkeypatch.setattr(workers, "_POOL", fresh)
    yield fresh
    fresh.shutdown()


def all_worker_pids() -> set[int]:
    return {p.pid for p in psutil.Process().children() if any("chunk_worker" in a for a in p.cmdline())}


_OTHERS: set[int] = set()


def worker_pids() -> set[int]:
    """Chunk workers of this process but for those earlier tests left to the process's own pool."""
    return all_worker_pids() - _OTHERS


@pytest.fixture(autouse=True)
def _others() -> None:
    _OTHERS.clear()
    _OTHERS.update(all_worker_pids())


def kill_a_worker() -> int:
    """SIGKILL one of the pool's workers (a child of this process: reaped here); its pid."""
    victim = min(worker_pids())
    os.kill(victim, signal.SIGKILL)
    psutil.Process(victim).wait(5)
    return victim


def records_of(chunks: list[bytes]) -> tuple[bytes, list[int]]:
    encoded = [records for _, records in encode_all(chunks)]
    return b"".join(r.data for r in encoded), [n for r in encoded for n in r.lengths]


@pytest.mark.parametrize("count", [0, 2, 1, 4])
def test_workers_give_the_bytes_of_in_thread_work(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    fresh = workers.ChunkWorkers(count)
    monkeypatch.setattr(workers, "_POOL", fresh)
    chunks = mixed(3 * workers.BATCH_CHUNKS + 17)
    try:
        assert hash_all(chunks) == addresses_of(chunks)
        data, lengths = records_of(chunks)
        expected = encode_records(chunks)
        assert data == expected.data and lengths == expected.lengths
        assert verify_all(data, lengths, addresses_of(chunks), 9000) == sum(map(len, chunks))
        both = list(hash_encode_all(b"".join(chunks), [len(c) for c in chunks]))
        digests = [a for _, batch_addrs, _ in both for a in batch_addrs]
        assert digests == addresses_of(chunks) and b"".join(r.data for _, _, r in both) == expected.data
        assert all(type(a) is bytes and not gc.is_tracked(a) for a in digests)  # nbsd's: no Addr for the GC
        assert len(worker_pids()) == min(count, 4)  # the batches went to that many processes
    finally:
        fresh.shutdown()
    assert not worker_pids()


def test_batches_are_bounded_by_count_and_bytes_and_a_huge_chunk_stays_here(pool: workers.ChunkWorkers) -> None:
    big = workers.BATCH_BYTES + 1
    assert workers.batches([1] * 600) == [(0, 256), (256, 512), (512, 600)]
    assert workers.batches([workers.BATCH_BYTES // 2] * 3 + [big, 5]) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    chunks = [os.urandom(100), os.urandom(big), os.urandom(100)]
    assert hash_all(chunks) == addresses_of(chunks)
    assert records_of(chunks)[0] == encode_records(chunks).data


def test_a_lie_in_a_late_batch_is_named_by_its_position(pool: workers.ChunkWorkers) -> None:
    chunks = mixed(3 * workers.BATCH_CHUNKS)
    data, lengths = records_of(chunks)
    addrs = addresses_of(chunks)
    lie = 2 * workers.BATCH_CHUNKS + 9
    addrs[lie] = Addr.of(b"something else")
    with pytest.raises(RecordBatchError, match="does not hash to its address") as err:
        verify_all(data, lengths, addrs, 9000)
    assert err.value.position == lie
    damaged = bytearray(data)
    damaged[sum(lengths[:lie]) + 2] ^= 0xFF
    with pytest.raises(RecordBatchError) as err:
        verify_all(bytes(damaged), lengths, addresses_of(chunks), 9000)
    assert err.value.position == lie
    assert hash_all(chunks) == addresses_of(chunks)  # the workers that found the lies still serve


def test_a_killed_worker_is_replaced_and_its_batch_done_here(pool: workers.ChunkWorkers,
                                                             caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "RESTART_DELAY_S", 0.0)
    chunks = mixed(4 * workers.BATCH_CHUNKS)
    assert hash_all(chunks) == addresses_of(chunks)
    victim = kill_a_worker()
    with caplog.at_level(logging.WARNING, "nbs.chunk_workers"):
        assert hash_all(chunks) == addresses_of(chunks)
    assert pool.failures == 1 and f"chunk worker {victim} failed" in caplog.text
    assert hash_all(chunks) == addresses_of(chunks)
    assert len(worker_pids()) == 2 and victim not in worker_pids()  # a new one took its place


def test_a_hung_worker_is_given_up_on_within_the_reply_timeout(pool: workers.ChunkWorkers,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = mixed(4 * workers.BATCH_CHUNKS)
    assert hash_all(chunks) == addresses_of(chunks)
    stuck = min(worker_pids())
    monkeypatch.setattr(workers, "REPLY_TIMEOUT_S", 2.0)  # long enough for a healthy worker on a loaded machine
    os.kill(stuck, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert records_of(chunks)[0] == encode_records(chunks).data
        assert time.monotonic() - started < 10
        assert pool.failures == 1
    finally:
        if psutil.pid_exists(stuck):
            os.kill(stuck, signal.SIGCONT)
    assert stuck not in worker_pids()


def test_an_abandoned_stream_leaves_no_answer_behind(pool: workers.ChunkWorkers) -> None:
    chunks = mixed(6 * workers.BATCH_CHUNKS)
    stream = encode_all(chunks)
    next(stream)
    stream.close()  # the consumer failed: batches still in the workers must be collected
    assert hash_all(chunks) == addresses_of(chunks)
    assert records_of(chunks)[0] == encode_records(chunks).data


def test_a_forked_child_starts_workers_of_its_own(pool: workers.ChunkWorkers) -> None:
    chunks = mixed(3 * workers.BATCH_CHUNKS)
    assert hash_all(chunks) == addresses_of(chunks)
    parents = worker_pids()

    def child() -> bool:
        ok = hash_all(chunks) == addresses_of(chunks) and records_of(chunks)[0] == encode_records(chunks).data
        mine = worker_pids()
        return ok and len(mine) == 2 and not mine & parents

    assert in_child(child, timeout=60)
    assert worker_pids() == parents  # the child's exit took nothing of the parent's
    assert hash_all(chunks) == addresses_of(chunks)


def test_workers_exit_when_their_parent_is_killed(tmp_path: object) -> None:
    script = textwrap.dedent("""
        import os, sys, time
        from nbs.chunk_jobs import hash_all
        hash_all([os.urandom(100) for _ in range(1000)])
        print("ready", flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        orphans = [p for p in psutil.Process(parent.pid).children() if "chunk_worker" in " ".join(p.cmdline())]
        assert len(orphans) >= 1
    finally:
        parent.kill()
        parent.wait()
    _, alive = psutil.wait_procs(orphans, timeout=10)
    assert not alive


def test_no_worker_is_started_for_a_while_after_one_failed(pool: workers.ChunkWorkers,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that keeps dying (a broken interpreter, a crashing input) cannot make the pool spawn in a loop."""
    monkeypatch.setattr(workers, "RESTART_DELAY_S", 60.0)
    chunks = mixed(4 * workers.BATCH_CHUNKS)
    assert hash_all(chunks) == addresses_of(chunks)
    kill_a_worker()
    for _ in range(3):
        assert hash_all(chunks) == addresses_of(chunks)
    assert pool.failures == 1 and pool.running == 1 and len(worker_pids()) == 1


def test_no_workers_where_the_executable_is_not_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(workers.WORKERS_ENV, raising=False)
    monkeypatch.setattr(sys, "executable", "/usr/bin/uwsgi")
    assert workers.configured_workers() == 0
    monkeypatch.setattr(sys, "executable", "/opt/venv/bin/python3.11")
    assert workers.configured_workers() == ((os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 else 0)
    monkeypatch.delattr(os, "memfd_create")
    assert workers.configured_workers() == 0


@pytest.mark.parametrize(("text", "expected"), [("0", 0), ("3", 3), ("1000", 64), ("-2", 0), ("many", 0)])
def test_workers_per_process_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, text: str,
                                                        expected: int) -> None:
    monkeypatch.setenv(workers.WORKERS_ENV, text)
    assert workers.configured_workers() == expected


def test_default_is_one_worker_per_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(workers.WORKERS_ENV, raising=False)
    cpus = os.cpu_count() or 1
    assert workers.configured_workers() == (cpus if cpus > 1 else 0)


def test_the_worker_knows_the_library_s_record_limits() -> None:
    """The worker imports nothing of ``nbs``: its copies of the record format's constants must agree."""
    from nbs import chunk_worker, record
    from nbs.addr import ADDR_SIZE

    assert (chunk_worker.CRC_SIZE, chunk_worker.MAX_EXPANSION, chunk_worker.ADDR_SIZE) == (
        record.CRC_SIZE, record.MAX_EXPANSION, ADDR_SIZE)


def test_a_record_claiming_more_than_snappy_can_expand_is_refused_before_it_is_decompressed(
        pool: workers.ChunkWorkers) -> None:
    chunks = mixed(2 * workers.BATCH_CHUNKS)
    data, lengths = records_of(chunks)
    bomb = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + b"\x00" * 20  # a header claiming 4 GiB, in 25 bytes
    record = bomb + crc32c.crc32c(bomb).to_bytes(4, "big")
    at = workers.BATCH_CHUNKS + 3
    start = sum(lengths[:at])
    forged = data[:start] + record + data[start + lengths[at]:]
    forged_lengths = [*lengths[:at], len(record), *lengths[at + 1:]]
    with pytest.raises(RecordBatchError, match="claims 4294967295 uncompressed bytes") as err:
        verify_all(forged, forged_lengths, addresses_of(chunks), 1 << 32)
    assert err.value.position == at


def test_a_fork_in_the_middle_of_a_stream_leaves_both_sides_whole(pool: workers.ChunkWorkers) -> None:
    """Workers leased by a stream at the fork are the parent's: the child lets go of them too."""
    chunks = mixed(8 * workers.BATCH_CHUNKS)
    stream = encode_all(chunks)
    first = [next(stream)]  # both workers leased, batches in flight
    parents = worker_pids()
    pipes = [w.process.stdin.fileno() for w in pool._running if w.process.stdin is not None]
    assert len(pipes) == 2

    def open_fd(fd: int) -> bool:
        try:
            os.fstat(fd)
        except OSError:
            return False
        return True

    def child() -> bool:
        # the parent's workers must see their stdin close when the parent exits, whatever the child does
        released = not any(open_fd(fd) for fd in pipes)
        mine_ok = hash_all(chunks) == addresses_of(chunks)
        return released and mine_ok and pool.running == 2 and not worker_pids() & parents

    assert in_child(child, timeout=60)
    rest = list(stream)
    assert b"".join(r.data for _, r in first + rest) == encode_records(chunks).data
    assert pool.failures == 0 and worker_pids() == parents


def test_a_caller_waits_for_a_busy_worker_and_works_here_once_the_wait_runs_out(
        monkeypatch: pytest.MonkeyPatch) -> None:
    one = workers.ChunkWorkers(1)
    monkeypatch.setattr(workers, "_POOL", one)
    chunks = mixed(4 * workers.BATCH_CHUNKS)
    try:
        holder = encode_all(chunks)
        next(holder)  # the only worker is leased to this stream
        results: list[bool] = []
        waiter = threading.Thread(target=lambda: results.append(hash_all(chunks) == addresses_of(chunks)))
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive()  # waiting for the worker, not hashing in its own thread
        list(holder)  # the stream ends and gives the worker back
        waiter.join(10)
        assert results == [True]

        monkeypatch.setattr(workers, "LEASE_WAIT_S", 0.2)
        holder = encode_all(chunks)
        next(holder)
        started = time.monotonic()
        assert hash_all(chunks) == addresses_of(chunks)  # done here once the short wait ran out
        assert time.monotonic() - started < 5
        holder.close()
        assert one.failures == 0 and one.running == 1
    finally:
        one.shutdown()


def test_callers_waiting_for_a_worker_get_it_in_the_order_they_came() -> None:
    """A caller that gives its worker back and asks again at once must queue behind those already waiting."""
    one = workers.ChunkWorkers(1)
    try:
        held = one.lease(1)
        assert len(held) == 1
        order: list[str] = []

        def take(name: str) -> None:
            got = one.lease(1)
            order.append(name if got else f"{name} (none)")
            if got:
                one.give_back(got[0], broken=False)

        waiters = []
        for name in ("first", "second"):
            waiter = threading.Thread(target=take, args=(name,))
            waiter.start()
            waiters.append(waiter)
            deadline = time.monotonic() + 10
            while one.waiting < len(waiters) and time.monotonic() < deadline:
                time.sleep(0.001)
            assert one.waiting == len(waiters)
        one.give_back(held[0], broken=False)
        take("returning")  # the caller that just gave the worker back, at once
        for waiter in waiters:
            waiter.join(10)
        assert order == ["first", "second", "returning"] and one.waiting == 0
    finally:
        one.shutdown()


def test_a_worker_is_given_back_once_a_caller_has_no_more_batches_for_it(pool: workers.ChunkWorkers,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller reading its last answers must not hold a worker it has nothing more for: nbsd hashes each part
    of a write (a batch per worker) on a thread of its own, and the next part's thread waited for both workers
    while the one before read its second answer, leaving a worker idle between every two parts."""
    monkeypatch.setattr(workers, "LEASE_WAIT_S", 0.3)
    chunks = mixed(2 * workers.BATCH_CHUNKS)  # two batches: one on each worker
    stream = encode_all(chunks)
    first = next(stream)  # the first worker has answered its only batch, the second is still leased
    taken = pool.lease(1)
    assert len(taken) == 1  # at once: the worker free of this stream's batches
    pool.give_back(taken[0], broken=False)
    assert b"".join(r.data for _, r in [first, *stream]) == encode_records(chunks).data
    assert_both_idle(pool)


def test_a_worker_with_batches_of_a_caller_in_flight_stays_leased_to_it(pool: workers.ChunkWorkers,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers come in the order of the requests: a worker is given back only once none are owed to its caller."""
    monkeypatch.setattr(workers, "LEASE_WAIT_S", 0.3)
    chunks = mixed(8 * workers.BATCH_CHUNKS)
    stream = encode_all(chunks)
    first = next(stream)
    assert pool.lease(1) == []  # both workers still owe this stream answers: the wait ran out
    assert b"".join(r.data for _, r in [first, *stream]) == encode_records(chunks).data
    assert_both_idle(pool)


def assert_both_idle(pool: workers.ChunkWorkers) -> None:
    """Both workers of ``pool`` are idle and sound (leased at once, and given back)."""
    both = pool.lease(2)
    for worker in both:
        pool.give_back(worker, broken=False)
    assert len(both) == 2 and pool.failures == 0


@pytest.mark.parametrize("where", ["workers", "here"])
def test_chunks_that_change_while_they_are_hashed_are_stored_as_hashed(
        pool: workers.ChunkWorkers, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """nbsd hashes parts read in a client's own shared memory, which the client can still write: every
    record must hold the bytes its address was computed from, whenever they change."""
    import nbs.chunk_jobs as jobs

    chunks = mixed(2 * workers.BATCH_CHUNKS)
    shared = bytearray(b"".join(chunks))

    def scribble() -> None:
        shared[:] = bytes(len(shared))

    if where == "workers":  # changed once a batch has reached its worker
        send = jobs.HashEncodeJob.send

        def send_then_scribble(self: jobs.HashEncodeJob, worker: workers.ChunkWorker) -> None:
            send(self, worker)
            scribble()
        monkeypatch.setattr(jobs.HashEncodeJob, "send", send_then_scribble)
    else:  # changed between the hash and the encoding of a batch done in this thread
        monkeypatch.setattr(workers.ChunkWorkers, "lease", lambda self, count: [])
        def digests_then_scribble(items: list[bytes]) -> list[bytes]:
            digests = digests_of(items)
            scribble()
            return digests
        monkeypatch.setattr(jobs, "digests_of", digests_then_scribble)
    results = list(hash_encode_all(memoryview(shared), [len(c) for c in chunks]))
    assert not any(shared)  # it did change under the work
    for _, addrs, records in results:
        spans, at = [], 0
        for length in records.lengths:
            spans.append((at, length))
            at += length
        assert addrs == digests_of(decode_records(records.data, spans, 1 << 20))
    first = results[0][1]
    assert first == digests_of(chunks[:len(first)])  # the first batch was copied before anything changed


# Decoding a local table's records on the workers (TableChunkSource.read_into with a local reader).

@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[tuple[str, list[bytes]]]:
    """A local store of ``3 * BATCH_CHUNKS + 17`` mixed chunks, committed (no worker started): (directory, chunks)."""
    chunks = mixed(3 * workers.BATCH_CHUNKS + 17)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(workers, "_POOL", workers.ChunkWorkers(0))
        store = new_local_store(str(tmp_path))
        addrs = store.put_many(chunks)
        assert store.commit(addrs[-1], store.root())
        store.close()
    yield str(tmp_path), chunks


DECODERS: set[int] = set()


@pytest.fixture
def reads_on_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads of two jobs or more go to the workers (the test store's reads are four jobs)."""
    monkeypatch.setattr(chunk_source, "WORKER_JOBS", 2)


def decodes_sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list to which each batch sent to decode adds its record count (and ``DECODERS`` its worker)."""
    sent: list[int] = []
    DECODERS.clear()
    send_filled = workers.ChunkWorker.send_filled

    def spy(self: workers.ChunkWorker, op: int, fill: Callable[[memoryview], int], lengths: Sequence[int],
            reply_size: int, extra: bytes = b"") -> None:
        if op == wire.DECODE:
            sent.append(len(lengths))
            DECODERS.add(self.process.pid)
        send_filled(self, op, fill, lengths, reply_size, extra)
    monkeypatch.setattr(workers.ChunkWorker, "send_filled", spy)
    return sent


def get_all(directory: str, chunks: list[bytes]) -> dict[bytes, bytes]:
    store = new_local_store(directory)
    try:
        return store.get_many(addresses_of(chunks))
    finally:
        store.close()


@pytest.mark.usefixtures("reads_on_workers")
@pytest.mark.parametrize("count", [0, 2, 3])
def test_a_local_get_many_is_decoded_by_idle_workers_into_the_chunks_written(
        monkeypatch: pytest.MonkeyPatch, local_store: tuple[str, list[bytes]], count: int) -> None:
    fresh = workers.ChunkWorkers(count)
    monkeypatch.setattr(workers, "_POOL", fresh)
    directory, chunks = local_store
    try:
        fresh.lease_idle(0)  # starts the workers, as an earlier read would
        sent = decodes_sent(monkeypatch)
        assert get_all(directory, chunks) == dict(zip(addresses_of(chunks), chunks))
        assert (0 < sum(sent) <= len(chunks)) if count else not sent
        assert all(n <= workers.BATCH_CHUNKS for n in sent)
        assert len(DECODERS) == (count - 1 if count else 0)  # a CPU left for the reading thread's own share
        assert fresh.failures == 0
    finally:
        fresh.shutdown()


def test_a_read_of_fewer_jobs_than_worth_a_worker_is_decoded_here_and_starts_none(
        pool: workers.ChunkWorkers, monkeypatch: pytest.MonkeyPatch, local_store: tuple[str, list[bytes]]) -> None:
    """Handing a job to a worker costs a wake-up and a wait for its answer: a short read would only lose time."""
    directory, chunks = local_store
    assert len(chunks) < chunk_source.WORKER_JOBS * workers.BATCH_CHUNKS
    sent = decodes_sent(monkeypatch)
    for _ in range(2):
        assert get_all(directory, chunks) == dict(zip(addresses_of(chunks), chunks))
    assert sent == [] and not worker_pids()
    pool.lease_idle(0)
    assert get_all(directory, chunks) == dict(zip(addresses_of(chunks), chunks)) and sent == []


@pytest.mark.usefixtures("reads_on_workers")
def test_a_read_starts_workers_for_the_next_one_and_decodes_here_meanwhile(
        pool: workers.ChunkWorkers, monkeypatch: pytest.MonkeyPatch, local_store: tuple[str, list[bytes]]) -> None:
    """Starting a worker (an interpreter) takes longer than most reads: the read that starts them does not wait."""
    directory, chunks = local_store
    sent = decodes_sent(monkeypatch)
    assert not worker_pids()
    assert len(get_all(directory, chunks)) == len(chunks)
    assert sent == [] and len(worker_pids()) == 2
    assert get_all(directory, chunks) == dict(zip(addresses_of(chunks), chunks))
    assert sent and all(n <= workers.BATCH_CHUNKS for n in sent)


@pytest.mark.usefixtures("reads_on_workers")
def test_a_read_neither_waits_for_busy_workers_nor_jumps_the_queue(
        pool: workers.ChunkWorkers, monkeypatch: pytest.MonkeyPatch, local_store: tuple[str, list[bytes]]) -> None:
    monkeypatch.setattr(workers, "LEASE_WAIT_S", 60.0)
    directory, chunks = local_store
    pool.lease_idle(0)
    sent = decodes_sent(monkeypatch)
    both = pool.lease(2)  # another caller's batches
    results: list[bool] = []
    reader = threading.Thread(target=lambda: results.append(len(get_all(directory, chunks)) == len(chunks)))
    reader.start()
    reader.join(10)
    assert results == [True] and sent == []  # decoded here at once
    for worker in both:
        pool.give_back(worker, broken=False)
    with pool._lock:
        in_line = threading.Condition(pool._lock)  # a caller waiting for a worker, about to be woken
        pool._queue.append(in_line)
    try:
        assert pool.lease_idle(2) == []  # idle workers are the waiting caller's first
    finally:
        with pool._lock:
            pool._queue.remove(in_line)
    assert len(get_all(directory, chunks)) == len(chunks) and sent


@pytest.mark.usefixtures("reads_on_workers")
def test_a_bad_record_far_into_a_read_on_the_workers_is_named(
        pool: workers.ChunkWorkers, local_store: tuple[str, list[bytes]]) -> None:
    directory, chunks = local_store
    pool.lease_idle(0)
    (name,) = [f for f in os.listdir(directory) if f not in ("manifest", "LOCK")]
    path = os.path.join(directory, name)
    data = Path(path).read_bytes()
    index = parse_table_index(data, name, len(data))
    bad = 2 * workers.BATCH_CHUNKS + 9
    damaged = bytearray(data)
    damaged[index.offsets[index.lookup(Addr.of(chunks[bad]))] + 1] ^= 0xFF
    Path(path).write_bytes(damaged)
    store = new_local_store(directory)
    try:
        with pytest.raises(CorruptTableError, match=f"chunk {Addr.of(chunks[bad])}: .*CRC-32C"):
            store.get_many(addresses_of(chunks))
        assert_both_idle(pool)  # the workers that found it still serve
        os.truncate(path, index.offsets[index.lookup(Addr.of(chunks[bad]))])
        with pytest.raises(CorruptTableError, match="short read"):
            store.get_many(addresses_of(chunks))
        assert_both_idle(pool)
    finally:
        store.close()


@pytest.mark.usefixtures("reads_on_workers")
def test_records_that_decompress_past_the_worker_s_memory_are_finished_here(
        pool: workers.ChunkWorkers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A read of 1 MiB of records can hold 22 MiB of chunks; the worker decodes what fits in its output memory."""
    import nbs.chunk_jobs as jobs

    chunks = [b"%d;" % i + bytes(128 << 10) for i in range(200)]  # records of ~6 KiB: two reads of 1 MiB
    store = new_local_store(str(tmp_path))
    assert store.commit(store.put_many(chunks)[-1], store.root())
    pool.lease_idle(0)
    finished_here: list[int] = []
    decode = jobs.DecodeJob._decode

    def spy(self: jobs.DecodeJob, first: int) -> list[bytes]:
        finished_here.append(first)
        return decode(self, first)
    monkeypatch.setattr(jobs.DecodeJob, "_decode", spy)
    try:
        assert store.get_many(addresses_of(chunks)) == dict(zip(addresses_of(chunks), chunks))
    finally:
        store.close()
    assert finished_here and all(done > 0 for done in finished_here)  # each began on a worker


@pytest.mark.parametrize("problem", ["crc", "size", "snappy", "room"])
def test_the_worker_names_the_first_record_it_cannot_decode(problem: str) -> None:
    good = [encode_record(c)[0] for c in mixed(5)]
    bad = {
        "crc": good[3][:-1] + bytes([good[3][-1] ^ 1]),
        "size": forged(bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + b"\x00" * 20),  # claims 4 GiB
        "snappy": forged(b"\x10\x0f"),  # 16 bytes claimed, a literal of 16 with no bytes behind it
        "room": good[3],
    }[problem]
    records = [*good[:3], bad, good[4]]
    offsets = list(itertools.accumulate((len(r) for r in records[:-1]), initial=0))
    expected = [len(c) for c in mixed(3)]
    room = sum(expected) + (0 if problem == "room" else 1 << 20)
    answer = wire.decode_records(memoryview(b"".join(records)), tuple(offsets), tuple(map(len, records)), 1 << 20,
                                 memoryview(bytearray(room)))
    position, verdict, _ = wire.VERDICT.unpack_from(answer)
    sizes = struct.unpack_from("<5I", answer, wire.VERDICT.size)
    codes = {"crc": wire.BAD_RECORD, "size": wire.BAD_SIZE, "snappy": wire.BAD_SNAPPY, "room": wire.NO_ROOM}
    assert (position, verdict) == (3, codes[problem]) and list(sizes[:3]) == expected


def forged(compressed: bytes) -> bytes:
    """A record of ``compressed`` with a right CRC."""
    return compressed + crc32c.crc32c(compressed).to_bytes(4, "big")


@pytest.mark.usefixtures("reads_on_workers")
def test_a_child_forked_after_reads_on_the_workers_decodes_on_its_own(
        pool: workers.ChunkWorkers, local_store: tuple[str, list[bytes]]) -> None:
    directory, chunks = local_store
    pool.lease_idle(0)
    store = new_local_store(directory)
    try:
        expected = dict(zip(addresses_of(chunks), chunks))
        assert store.get_many(addresses_of(chunks)) == expected
        parents = worker_pids()

        def child() -> bool:
            first = store.get_many(addresses_of(chunks)) == expected  # here: its workers are only starting
            second = store.get_many(addresses_of(chunks)) == expected
            return first and second and len(worker_pids()) == 2 and not worker_pids() & parents

        assert in_child(child, timeout=60)
        assert store.get_many(addresses_of(chunks)) == expected and worker_pids() == parents
    finally:
        store.close()


def test_a_read_does_the_next_jobs_itself_while_its_worker_is_busy_and_hands_results_on_in_order(
        pool: workers.ChunkWorkers, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read's thread, waiting for an answer, runs the jobs not yet sent; a failure among them (a lie in a
    batch) surfaces in its turn, after the results of the jobs before it."""
    import nbs.chunk_jobs as jobs

    monkeypatch.setattr(workers, "REPLY_TIMEOUT_S", 1.0)
    monkeypatch.setattr(workers, "RESTART_DELAY_S", 0.0)
    chunks = mixed(6 * workers.BATCH_CHUNKS)
    lengths = [len(c) for c in chunks]
    addrs = addresses_of(chunks)
    ran_here: list[int] = []

    class Noted(jobs.VerifyJob):
        def run_here(self) -> int:
            ran_here.append(self.start)
            return super().run_here()

    records, record_lengths = records_of(chunks)
    starts = list(itertools.accumulate(record_lengths, initial=0))

    def batches_of(expected: list[Addr]) -> list[Noted]:
        return [Noted(memoryview(records), starts[start], record_lengths[start:end], expected[start:end], 9000)
                for start, end in workers.batches(lengths)]

    def stopped_workers() -> list[int]:
        pool.lease_idle(0)  # started if they were found broken
        deadline = time.monotonic() + 10
        while len(worker_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        pids = sorted(worker_pids())
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)  # busy, as far as the caller can tell
        return pids

    sums = [sum(lengths[start:end]) for start, end in workers.batches(lengths)]
    firsts = [starts[start] for start, _ in workers.batches(lengths)]
    assert len(sums) == 6
    for lie_at in (None, 4 * workers.BATCH_CHUNKS + 7):
        expected = list(addrs)
        if lie_at is not None:
            expected[lie_at] = Addr.of(b"not this one")
        ran_here.clear()
        stopped = stopped_workers()
        try:
            results = pool.run(batches_of(expected), wait=False)
            if lie_at is None:
                assert list(results) == sums
            else:
                assert [next(results) for _ in range(4)] == sums[:4]  # the results before the lie's batch
                with pytest.raises(RecordBatchError, match="does not hash to its address") as err:
                    next(results)
                assert err.value.position == 7
        finally:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):  # the one found hung was stopped for good
                    os.kill(pid, signal.SIGCONT)
        assert ran_here == firsts[2:] + firsts[:2]  # the four unsent first, then the two the worker never answered
