"""The per-process pool of chunk worker processes (``nbs/chunk_worker.py``) and the batches they run.

Hashing, encoding, verifying and decoding many small chunks use the
machine's other cores only through processes (the worker module says why
threads cannot).  Batches go to leased workers, a few in flight, and come
back in order.  Callers share the workers: one whose workers are all busy
with other threads' batches waits for one (bounded); a read takes idle ones
only (``lease_idle``).  Anything a worker cannot do -
none could be started, the wait ran out, a batch too large for the shared
memory, a worker that died or stopped answering - is done in the calling
thread instead, so the pool only ever makes work faster, never fails it (a
broken worker is logged and replaced on a later lease).

``NBS_CHUNK_WORKERS`` sets the number of workers per process (default: the
number of CPUs; 0 turns them off, as does a single CPU).  They are started
on the first batch big enough to need them and exit when their parent does.
A forked child never uses its parent's workers: it starts its own.
"""

from __future__ import annotations

import functools
import logging
import mmap
import os
import re
import select
import struct
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from nbs import chunk_worker as wire
from nbs.forksafe import register

log = logging.getLogger(__name__)
R = TypeVar("R")

WORKERS_ENV = "NBS_CHUNK_WORKERS"
BATCH_CHUNKS = 256  # chunks per request: about 1 MiB of 4 KiB chunks, so the pipe messages stay small
BATCH_BYTES = 4 << 20  # input bytes per request: bounds the shared memory of a worker
REPLY_TIMEOUT_S = 30.0  # a worker silent this long on one batch is taken for hung
SLOTS = 2  # batches in flight per worker
LEASE_WAIT_S = 5.0  # the most a caller waits for a worker other callers are using
RESTART_DELAY_S = 5.0  # after a worker failed, none is started for this long (a crash loop costs nothing)


class WorkerFailed(Exception):
    """A chunk worker died or hung; its batch is redone in the calling thread."""


def configured_workers() -> int:
    """Workers per process from ``NBS_CHUNK_WORKERS`` (default: one per CPU, none on one CPU).

    None where ``sys.executable`` is not a Python interpreter (an embedding
    server such as uWSGI names its own binary there: running it would start
    another server, not a worker), nor without ``memfd_create`` (not Linux).
    """
    if not re.fullmatch(r"python[0-9.]*[dmt]?", os.path.basename(sys.executable or "")):
        log.info("chunk workers off: %r is not a Python interpreter", sys.executable)
        return 0
    if not hasattr(os, "memfd_create"):  # not Linux
        return 0
    cpus = os.cpu_count() or 1
    text = os.environ.get(WORKERS_ENV, "")
    try:
        count = int(text) if text else (cpus if cpus > 1 else 0)
    except ValueError:
        log.warning("%s=%r is not a number: chunk workers are off", WORKERS_ENV, text)
        return 0
    return max(0, min(count, 64))


class SharedMemory:
    """A ``memfd`` of ``SLOTS`` regions of ``stride`` bytes, mapped here; pages exist once touched."""

    def __init__(self, name: str, stride: int) -> None:
        self.stride = stride
        self.fd = os.memfd_create(name)
        try:
            os.ftruncate(self.fd, SLOTS * stride)
            self.map = mmap.mmap(self.fd, SLOTS * stride)
        except OSError:
            os.close(self.fd)
            raise

    def region(self, slot: int) -> memoryview:
        return memoryview(self.map)[slot * self.stride:(slot + 1) * self.stride]

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)


class ChunkWorker:
    """One worker process, its request and reply pipes, and its shared memory for ``SLOTS`` batches.

    Two batches in flight let the worker start the next while this process
    copies in the one after it and reads the last answer.  Answers come in
    the order of the requests, and a slot is written again only once the
    answer to its last batch has been read.
    """

    def __init__(self) -> None:
        self.inputs = SharedMemory("nbs-chunks-in", BATCH_BYTES)
        self.outputs = SharedMemory("nbs-chunks-out", wire.max_encoded_len(BATCH_BYTES) + 40 * BATCH_CHUNKS)
        fds = (self.inputs.fd, self.outputs.fd)
        try:
            self.process = subprocess.Popen(
                [sys.executable, wire.__file__, *map(str, fds), str(self.inputs.stride), str(self.outputs.stride)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=fds,
                start_new_session=True)  # a Ctrl-C for the parent must not hit it mid-batch
        except OSError:
            self.inputs.close()
            self.outputs.close()
            raise
        assert self.process.stdin is not None and self.process.stdout is not None
        self._requests, self._replies = self.process.stdin.fileno(), self.process.stdout.fileno()
        self._sent = 0
        self.broken = False
        self._owed: deque[tuple[int, int]] = deque()  # (answer size, slot) of each request not yet answered

    def send(self, op: int, pieces: Sequence[bytes | memoryview], lengths: Sequence[int], reply_size: int,
             extra: bytes = b"") -> None:
        """Put ``pieces`` (the chunks or records, back to back) in a free slot and ask for ``op`` on them.

        ``reply_size`` is the length of the answer ``receive`` will read for it.
        """
        self.send_filled(op, functools.partial(_lay, pieces), lengths, reply_size, extra)

    def send_filled(self, op: int, fill: Callable[[memoryview], int], lengths: Sequence[int], reply_size: int,
                    extra: bytes = b"") -> None:
        """``send``, the input written by ``fill`` (into a free slot's region; it returns the bytes it wrote),
        so a table's records can be read straight into the worker's memory.

        What ``fill`` raises (a failed read) passes on: nothing was sent.
        """
        slot = self._sent % SLOTS
        size = fill(self.inputs.region(slot))
        try:
            _write_all(self._requests, wire.REQUEST.pack(op, slot, len(lengths), size)
                       + struct.pack(f"<{len(lengths)}I", *lengths) + extra)
        except OSError as err:
            raise WorkerFailed(f"sending a batch: {err}") from err
        self._sent += 1
        self._owed.append((reply_size, slot))

    def receive(self) -> tuple[bytes, memoryview]:
        """The answer to the oldest request, within ``REPLY_TIMEOUT_S``, and its slot's output region."""
        size, slot = self._owed.popleft()
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        parts, got = [], 0
        while got < size:
            remaining = deadline - time.monotonic()
            try:
                ready = remaining > 0 and select.select([self._replies], [], [], remaining)[0]
            except (OSError, ValueError) as err:
                raise WorkerFailed(f"waiting for its answer: {err}") from err
            if not ready:
                raise WorkerFailed(f"no answer within {REPLY_TIMEOUT_S:.0f} s")
            try:
                part = os.read(self._replies, size - got)
            except OSError as err:
                raise WorkerFailed(f"reading its answer: {err}") from err
            if not part:
                raise WorkerFailed(f"worker exited with status {self.process.poll()}")
            parts.append(part)
            got += len(part)
        return b"".join(parts), self.outputs.region(slot)

    def answered(self) -> bool:
        """Whether the answer to the oldest request has begun to arrive (never waits)."""
        try:
            return bool(select.select([self._replies], [], [], 0)[0])
        except (OSError, ValueError):
            return True  # receive finds out what is wrong

    def stop(self) -> None:
        """End the process (it exits when its stdin closes) and free the shared memory."""
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        try:
            self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.inputs.close()
        self.outputs.close()

    def abandon(self) -> None:
        """In a forked child: let go of the parent's worker without touching it."""
        for fd in (self._requests, self._replies, self.inputs.fd, self.outputs.fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.process.returncode = 0  # not our child: never wait for it
        self.broken = True  # and never use it


def _lay(pieces: Sequence[bytes | memoryview], region: memoryview) -> int:
    """Write ``pieces`` back to back at the start of ``region`` (one join and one copy beat a copy per piece)."""
    data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    region[:len(data)] = data
    return len(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Job(ABC, Generic[R]):
    """One batch: what to send a worker, how to read its answer, and how to do it here instead."""

    def __init__(self, input_size: int) -> None:
        self.input_size = input_size

    def fits(self) -> bool:
        """Whether a worker may take it: its input fits the bound on shared memory."""
        return self.input_size <= BATCH_BYTES

    @abstractmethod
    def send(self, worker: ChunkWorker) -> None: ...

    @abstractmethod
    def receive(self, worker: ChunkWorker) -> R: ...

    @abstractmethod
    def run_here(self) -> R: ...


class _Done(Job[R]):
    """A job already run here, out of its turn: its result (or what it raised) waits for its turn."""

    def __init__(self, job: Job[R]) -> None:
        super().__init__(job.input_size)
        self._result: R | None = None
        self._error: BaseException | None = None
        try:
            self._result = job.run_here()
        except Exception as err:  # noqa: BLE001 - raised in its turn, where the caller expects it
            self._error = err

    def send(self, worker: ChunkWorker) -> None:
        raise AssertionError("a job run here is never sent")

    def receive(self, worker: ChunkWorker) -> R:
        raise AssertionError("a job run here is never sent")

    def run_here(self) -> R:
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]


class ChunkWorkers:
    """The workers of this process, leased to one caller at a time each."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._lock = threading.Lock()
        self._idle: list[ChunkWorker] = []
        self._running: set[ChunkWorker] = set()
        self._queue: deque[threading.Condition] = deque()  # callers waiting for a worker, in the order they came
        self._failures = 0
        self._start_after = 0.0  # monotonic time before which no worker is started
        register(self)

    def after_fork_in_child(self) -> None:
        """Let go of every worker of the parent's, idle or leased (a lease cannot end here: its thread is gone)."""
        self._lock = threading.Lock()
        self._queue = deque()
        self._start_after = 0.0
        for worker in self._running:
            worker.abandon()
        self._idle = []
        self._running = set()

    def lease(self, wanted: int) -> list[ChunkWorker]:
        """Up to ``wanted`` workers, starting any not yet running.

        If every worker is busy with other callers' batches, wait (at most
        ``LEASE_WAIT_S``) for one: their cores are busy anyway, and doing the
        batches here would only add a thread fighting for the GIL.  Waiting
        callers are served in the order they came, and a newcomer queues
        behind them: a caller that gives a worker back and asks again at once
        (it holds the GIL) used to win it every time, and with 4 threads
        sharing 2 workers the slowest call took 161-163 ms against 10-14 ms
        now (the bench's "slowest hash_all").  None (work here) only when no
        worker runs or the wait ran out.
        """
        deadline = time.monotonic() + LEASE_WAIT_S
        with self._lock:
            turn = threading.Condition(self._lock)
            self._queue.append(turn)
            try:
                while True:
                    if self._queue[0] is turn:
                        taken = self._take(wanted)
                        if taken or not self._running:
                            return taken
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return []
                    turn.wait(remaining)
            finally:
                self._queue.remove(turn)
                self._wake_next()

    def lease_idle(self, wanted: int) -> list[ChunkWorker]:
        """Up to ``wanted`` workers already running and idle, at once, or none.

        For a read, which decodes in its own thread when it gets none (as all
        reads did before the workers): it never waits for a worker, and one in
        line for them has the idle ones first.  Workers not yet running are
        started for later calls, not this one: an interpreter takes ~60 ms to
        start, longer than most reads.
        """
        with self._lock:
            if self._queue:
                return []
            taken = [self._idle.pop() for _ in range(min(wanted, len(self._idle)))]
            self._idle.extend(self._start(self.count - len(self._running)))  # for later calls
            return taken

    def _take(self, wanted: int) -> list[ChunkWorker]:
        """Idle workers, then new ones, up to ``wanted`` (the lock held)."""
        taken = [self._idle.pop() for _ in range(min(wanted, len(self._idle)))]
        return taken + self._start(wanted - len(taken))

    def _start(self, wanted: int) -> list[ChunkWorker]:
        """Up to ``wanted`` new workers, within the count and not while a failure's delay runs (the lock held)."""
        started: list[ChunkWorker] = []
        while len(started) < wanted and len(self._running) < self.count and time.monotonic() >= self._start_after:
            try:
                worker = ChunkWorker()
            except OSError as err:
                log.warning("cannot start a chunk worker (%s): working in this thread", err)
                self._start_after = time.monotonic() + RESTART_DELAY_S
                break
            started.append(worker)
            self._running.add(worker)
        return started

    def give_back(self, worker: ChunkWorker, broken: bool) -> None:
        if broken:
            worker.stop()
            with self._lock:
                self._running.discard(worker)
                self._failures += 1
                self._start_after = time.monotonic() + RESTART_DELAY_S
                self._wake_next()  # it works here now rather than wait out the delay
            return
        with self._lock:
            self._idle.append(worker)
            self._wake_next()

    def _wake_next(self) -> None:
        """Tell the first caller in line that workers came back or changed (the lock held)."""
        if self._queue:
            self._queue[0].notify()

    @property
    def waiting(self) -> int:
        """Callers in line for a worker."""
        return len(self._queue)

    @property
    def running(self) -> int:
        """Workers started and not found broken."""
        return len(self._running)

    @property
    def failures(self) -> int:
        """Workers found dead or hung since this process started them."""
        return self._failures

    def shutdown(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._running.difference_update(idle)
        for worker in idle:
            worker.stop()

    def run(self, jobs: Sequence[Job[R]], wait: bool = True) -> Iterator[R]:
        """Each job's result, in order; up to ``SLOTS`` batches in flight per leased worker, the rest here.

        A worker goes back as soon as none of these jobs is left for it, before
        the result is handed on: a caller waiting for a worker starts on it while
        this one reads its other answers.  nbsd hashes each part of a write (a
        batch per worker) on a thread of its own; when the lease ended with the
        call, a worker idled between every two parts.

        Without ``wait`` (a read), only idle workers are used (``lease_idle``),
        one fewer than the CPUs, and the calling thread runs the next job not
        yet sent whenever the answer it would wait for has not begun to come:
        a read's own thread has a share of its own (it copies every chunk
        out), the rest of the time it would idle.  A job run so out of its
        turn keeps its result, or what it raised, for its turn.
        """
        if len(jobs) < 2:
            leased = []
        elif wait:
            leased = self.lease(min(self.count, len(jobs)))
        else:
            leased = self.lease_idle(min(max(1, self.count - 1), len(jobs)))
        if not leased:
            yield from (job.run_here() for job in jobs)
            return
        free: deque[ChunkWorker] = deque(worker for _ in range(SLOTS) for worker in leased)  # one per free slot
        flying: deque[tuple[Job[R], ChunkWorker | None]] = deque()
        waiting = iter(jobs)
        held = set(leased)
        try:
            self._start_more(waiting, free, flying)
            while flying:
                if not wait and flying[0][1] is not None and not flying[0][1].answered():
                    spare = next(waiting, None)
                    if spare is not None:  # the worker is still at it: do the next job here meanwhile
                        flying.append((_Done(spare), None))
                        continue
                job, worker = flying.popleft()
                result = self._finish(job, worker, free)
                self._start_more(waiting, free, flying)
                if worker is not None and worker in held and all(other is not worker for _, other in flying):
                    held.discard(worker)
                    if not worker.broken:
                        self.give_back(worker, broken=False)
                yield result
        finally:
            for _, worker in flying:  # abandoned early: collect the answers owed, do no more work
                if worker is not None and not worker.broken:
                    self._drain(worker)
            for worker in held:
                if not worker.broken:
                    self.give_back(worker, broken=False)

    def _start_more(self, waiting: Iterator[Job[R]], free: deque[ChunkWorker],
                    flying: deque[tuple[Job[R], ChunkWorker | None]]) -> None:
        """Send waiting jobs while a slot is free (a job too big for a worker waits its turn to run here)."""
        while free:
            job = next(waiting, None)
            if job is None:
                return
            worker = None
            while job.fits() and free and worker is None:
                worker = free.popleft()
                worker = None if worker.broken else worker
            if worker is not None:
                try:
                    job.send(worker)
                except WorkerFailed as err:
                    self._broken(worker, err)
                    worker = None
            flying.append((job, worker))

    def _finish(self, job: Job[R], worker: ChunkWorker | None, free: deque[ChunkWorker]) -> R:
        if worker is None or worker.broken:
            return job.run_here()
        try:
            result = job.receive(worker)
        except WorkerFailed as err:
            self._broken(worker, err)
            return job.run_here()
        except BaseException:
            free.append(worker)  # it answered; the answer was refused (a verdict of a bad record)
            raise
        free.append(worker)
        return result

    def _drain(self, worker: ChunkWorker) -> None:
        try:
            worker.receive()
        except WorkerFailed as err:
            self._broken(worker, err)

    def _broken(self, worker: ChunkWorker, err: WorkerFailed) -> None:
        log.warning("chunk worker %d failed (%s): its batches are done in this thread", worker.process.pid, err)
        worker.broken = True
        self.give_back(worker, broken=True)


def batches(lengths: Sequence[int]) -> list[tuple[int, int]]:
    """``(start, end)`` of consecutive batches of at most ``BATCH_CHUNKS`` items and ``BATCH_BYTES`` bytes.

    A single item over ``BATCH_BYTES`` is a batch of its own (done in the calling thread).
    """
    count = len(lengths)
    if count and max(lengths) * BATCH_CHUNKS <= BATCH_BYTES:  # small items: only the count can end a batch
        return [(start, min(start + BATCH_CHUNKS, count)) for start in range(0, count, BATCH_CHUNKS)]
    return runs(lengths, BATCH_BYTES, BATCH_CHUNKS)


def runs(lengths: Sequence[int], max_bytes: int, max_count: int = 1 << 62) -> list[tuple[int, int]]:
    """``(start, end)`` of consecutive runs of at most ``max_count`` items and ``max_bytes`` bytes (an item
    over ``max_bytes`` makes a run of its own)."""
    spans = []
    start = size = 0
    for i, length in enumerate(lengths):
        if i > start and (i - start == max_count or size + length > max_bytes):
            spans.append((start, i))
            start, size = i, 0
        size += length
    if start < len(lengths):
        spans.append((start, len(lengths)))
    return spans


_POOL: ChunkWorkers | None = None
_POOL_LOCK = threading.Lock()


def pool() -> ChunkWorkers:
    """This process's workers (the same object in a forked child, which starts workers of its own)."""
    global _POOL
    if _POOL is None:
        with _POOL_LOCK:
            if _POOL is None:
                _POOL = ChunkWorkers(configured_workers())
    return _POOL


def run_jobs(jobs: Sequence[Job[R]], wait: bool = True) -> Iterator[R]:
    return pool().run(jobs, wait)

