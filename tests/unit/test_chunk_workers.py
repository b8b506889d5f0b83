"""Chunk worker processes: the same bytes as in-thread work, and never a failure of their own.

These start real worker processes (``nbs/chunk_worker.py``) over real memfds
and pipes; faults are real too (a killed or stopped worker).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import crc32c
import psutil
import pytest

import nbs.chunk_workers as workers
from nbs.addr import Addr, addresses_of, digests_of
from nbs.chunk_jobs import encode_all, hash_all, hash_encode_all, verify_all
from nbs.record import RecordBatchError, decode_records, encode_records
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
