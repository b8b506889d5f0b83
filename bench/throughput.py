"""Throughput at the hardware limit (issue 16): local writes and reads, and writes and reads via nbsd, on mixed chunks.

Data: 25,000 chunks of 4 KiB, half random, half repetitive JSON-like.  The
baseline of local writes and reads is the one-core limit: the bare per-chunk
pipeline over the same chunks, in the same run, in one thread - for writes
SHA-512, snappy (cramjam raw), CRC-32C and one file write per chunk; for reads
one positioned file read, CRC-32C and snappy decompression per chunk.  Writes
are ``put_many`` of all chunks + ``commit``; reads are one ``get_many`` of all
from a reopened store (warm page cache).  The same hashing and encoding is
also timed in one thread, on a thread per CPU and on the chunk worker
processes: threads or processes, measured.  Each figure is the median of a few
repetitions.  A separate process imports a large payload in batches and
reports its peak RSS growth against the bound README states (two memtables
plus a fixed overhead), for two memtable sizes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import cramjam
import crc32c
import psutil

from bench.common import Figure, Report, environment, mixed_chunks, progress, run_parallel
from nbs.addr import Addr, addresses_of
from nbs.chunk_jobs import encode_all, hash_all
from nbs.chunk_workers import BATCH_CHUNKS, pool
from nbs.chunk_store import ChunkStore
from nbs.factory import new_local_store
from nbs.record import encode_records
from nbsd.runner import DaemonProcess

CHUNK = 4096
COUNT = 25_000
REPEATS = 5
MIB = 1 << 20
HUGE_PAGES = "glibc.malloc.hugetlb=1"
IMPORT_OVERHEAD = 48 * MIB  # beyond two memtables: batches in flight, indexes, threads, allocator (README)


def write_limit(chunks: list[bytes], path: str, sync: bool) -> tuple[float, list[tuple[int, int]]]:
    """Seconds of the one-core write pipeline, and the (offset, length) of each record it wrote."""
    sha512, compress, crc = hashlib.sha512, cramjam.snappy.compress_raw, crc32c.crc32c
    spans = []
    offset = 0
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in chunks:
            sha512(chunk).digest()
            compressed = bytes(compress(chunk))
            record = compressed + crc(compressed).to_bytes(4, "big")
            os.write(fd, record)
            spans.append((offset, len(record)))
            offset += len(record)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - started, spans


def read_limit(path: str, spans: list[tuple[int, int]], keep: bool) -> float:
    """Seconds of the one-core read pipeline over the records ``write_limit`` wrote.

    With ``keep`` every chunk is kept as bytes until the end, as a ``get_many``
    must: that pays for fresh memory (page faults), which the bare pipeline reuses.
    """
    crc, decompress = crc32c.crc32c, cramjam.snappy.decompress_raw
    kept = []
    started = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        for offset, length in spans:
            record = memoryview(os.pread(fd, length, offset))
            if crc(record[:-4]) != int.from_bytes(record[-4:], "big"):
                raise AssertionError("CRC mismatch in the read limit")
            chunk = decompress(record[:-4])
            if keep:
                kept.append(chunk.read())
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - started
    assert len(kept) == (len(spans) if keep else 0)
    return elapsed


def put_all_and_commit(store: ChunkStore, chunks: list[bytes]) -> tuple[float, list[Addr]]:
    started = time.perf_counter()
    addrs = store.put_many(chunks)
    assert store.commit(addrs[-1], store.root())
    return time.perf_counter() - started, addrs


def put_each_and_commit(store: ChunkStore, chunks: list[bytes]) -> float:
    started = time.perf_counter()
    addrs = [store.put(c) for c in chunks]
    assert store.commit(addrs[-1], store.root())
    return time.perf_counter() - started


def get_all(directory: str, addrs: list[Addr]) -> float:
    started = time.perf_counter()
    store = new_local_store(directory)
    found = store.get_many(addrs)
    elapsed = time.perf_counter() - started
    assert len(found) == len(addrs)
    store.close()
    return elapsed


def iterate_all(directory: str, addrs: list[Addr]) -> float:
    """Seconds of an ``iter_many`` of ``addrs`` from a reopened store."""
    started = time.perf_counter()
    store = new_local_store(directory)
    drop_all(store, addrs)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def drop_all(store: ChunkStore, addrs: list[Addr]) -> None:
    """``iter_many`` of ``addrs``, each chunk dropped once seen (Go's ``GetMany`` hands each chunk to the caller,
    who keeps what it needs); every chunk must come."""
    seen = sum(len(chunk) for _, chunk in store.iter_many(addrs))
    assert seen == len(addrs) * CHUNK


def reads_in_this_process(args: tuple[str, list[tuple[int, int]], str, list[Addr]]) -> tuple[float, float, float]:
    """MB/s of the read limit, the limit keeping its chunks and ``get_many`` of all, in this (fresh) process."""
    limit_file, spans, directory, addrs = args
    rates = median_rates(len(addrs) * CHUNK, lambda i: read_limit(limit_file, spans, keep=False),
                         lambda i: read_limit(limit_file, spans, keep=True), lambda i: get_all(directory, addrs))
    return rates[0], rates[1], rates[2]


def median_rates(total: int, *runs: Callable[[int], float]) -> list[float]:
    """MB/s of the median of ``REPEATS`` timed runs of each of ``runs`` (``run(i)`` returns seconds).

    The runs take turns (a, b, a, b, ...), so a figure and its baseline share
    the machine's noise: it is shared with other work and varies by 2x and more.
    """
    seconds: list[list[float]] = [[] for _ in runs]
    for i in range(REPEATS):
        for timed, run in zip(seconds, runs):
            timed.append(run(i))
    return [total / statistics.median(timed) / 1e6 for timed in seconds]


def import_rss(args: tuple[str, int, int]) -> tuple[int, int]:
    """Peak RSS growth (bytes, sampled every 10 ms) of importing ``total`` bytes in ``put_many`` batches,
    and the RSS before it."""
    directory, total, memtable_size = args
    proc = psutil.Process()
    store = new_local_store(directory, memtable_size, sync=False)
    block = random.Random(5).randbytes(CHUNK)
    batch = 1024
    before = proc.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], proc.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    last = None
    for start in range(0, total // CHUNK, batch):
        chunks = [(start + i).to_bytes(8, "big") + block[8:] for i in range(batch)]
        last = store.put_many(chunks)[-1]
    assert last is not None and store.commit(last, store.root())
    store.close()
    done.set()
    sampler.join()
    return peak[0] - before, before


def run(report: Report, quick: bool) -> None:
    count = 5_000 if quick else COUNT
    total = count * CHUNK
    section = f"throughput {count} x 4 KiB mixed"
    progress(f"[{section}]")
    chunks = mixed_chunks(count, seed=16)
    workdir = tempfile.mkdtemp(prefix="nbs-bench-tp-")
    limit_file = os.path.join(workdir, "limit")
    spans: list[tuple[int, int]] = []

    def limit(sync: bool) -> Callable[[int], float]:
        def once(i: int) -> float:
            seconds, spans[:] = write_limit(chunks, limit_file, sync)
            return seconds
        return once

    def store_write(sync: bool, each: bool = False) -> Callable[[int], float]:
        def once(i: int) -> float:
            directory = os.path.join(workdir, f"w-{sync}-{each}-{i}")
            os.makedirs(directory)
            store = new_local_store(directory, sync=sync)
            seconds = put_each_and_commit(store, chunks) if each else put_all_and_commit(store, chunks)[0]
            store.close()
            shutil.rmtree(directory)
            return seconds
        return once

    write_limit_rate, write_rate, each_rate = median_rates(total, limit(False), store_write(False),
                                                          store_write(False, True))
    report.add(Figure(section, "local put_many+commit (sync=False)", write_rate, "MB/s",
                      "one-core write limit", write_limit_rate, ">= 1.0x", write_rate >= write_limit_rate))
    report.add(Figure(section, "local put loop+commit (sync=False)", each_rate,
                      "MB/s", "one-core write limit", write_limit_rate))
    synced_limit, synced = median_rates(total, limit(True), store_write(True))
    report.add(Figure(section, "local put_many+commit (sync=True)", synced, "MB/s",
                      "one-core write limit + fsync", synced_limit))

    read_dir = os.path.join(workdir, "read")
    os.makedirs(read_dir)
    addrs = put_all_and_commit(new_local_store(read_dir, sync=False), chunks)[1]
    by_hash = sorted(addrs)  # the order a walk of a Noms tree asks for chunks in: none in particular
    read_limit_rate, kept_limit_rate, read_rate, iter_rate, hash_order_rate = median_rates(
        total, lambda i: read_limit(limit_file, spans, keep=False), lambda i: read_limit(limit_file, spans, keep=True),
        lambda i: get_all(read_dir, addrs), lambda i: iterate_all(read_dir, addrs),
        lambda i: iterate_all(read_dir, by_hash))
    report.add(Figure(section, "local get_many all (reopened)", read_rate, "MB/s", "one-core read limit",
                      read_limit_rate, ">= 0.6x", read_rate >= 0.6 * read_limit_rate))
    report.add(Figure(section, "local get_many all (reopened), vs chunks kept", read_rate, "MB/s",
                      "one-core read limit keeping the chunks", kept_limit_rate))
    report.add(Figure(section, "local iter_many all (reopened), chunks dropped", iter_rate, "MB/s",
                      "one-core read limit", read_limit_rate, ">= 0.6x", iter_rate >= 0.6 * read_limit_rate))
    report.add(Figure(section, "local iter_many all (reopened), asked in hash order", hash_order_rate, "MB/s",
                      "iter_many asked in file order", iter_rate))
    _huge_pages(report, section, (limit_file, spans, read_dir, addrs))

    _threads_or_processes(report, section, chunks, total)
    _shared_workers(report, section, chunks[:2 * BATCH_CHUNKS])
    _via_nbsd(report, section, workdir, chunks, total)
    _reads_via_nbsd(report, section, workdir, read_dir, addrs)
    _import_memory(report, workdir, (64 if quick else 1024) * MIB, (64 * MIB, 16 * MIB))
    shutil.rmtree(workdir)


def _huge_pages(report: Report, section: str, reads: tuple[str, list[tuple[int, int]], str, list[Addr]]) -> None:
    """The reads again in two fresh processes, one whose allocator asks for transparent huge pages
    (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``): a read keeping 100 MB pays a page fault per 4 KiB of it."""
    for tunables, label in (("", "default allocator"), (HUGE_PAGES, HUGE_PAGES)):
        with environment("GLIBC_TUNABLES", tunables or None):
            limit, kept, read = run_parallel(reads_in_this_process, [reads])[0]
        report.add(Figure(section, f"get_many all, fresh process, {label}", read, "MB/s", "one-core read limit",
                          limit))
        report.add(Figure(section, f"read limit keeping the chunks, fresh process, {label}", kept, "MB/s",
                          "one-core read limit", limit))


def _reads_via_nbsd(report: Report, section: str, workdir: str, read_dir: str, addrs: list[Addr]) -> None:
    """``iter_many`` of all through nbsd against the same read direct: cold (the daemon reads the store and fills
    its cache: a fresh daemon each time; the fill goes on behind the replies, so also until it is done) and again
    (the client's fast path reads the daemon's filled cache)."""
    import nbsclient

    daemons: list[DaemonProcess] = []
    settled: list[float] = []  # seconds of each cold read until its cache fills were done

    def through_nbsd(i: int, cold: bool) -> float:
        if cold:
            daemons.append(running.enter_context(DaemonProcess(os.path.join(workdir, f"nbsd-reads-{i}"))))
            shutil.copytree(read_dir, os.path.join(daemons[-1].stores, "read"))
            os.sync()  # the cache fill writes 200 MB: behind the earlier writes' writeback it ran at half speed
        daemon = daemons[-1]
        started = time.perf_counter()
        with nbsclient.connect(os.path.join(daemon.stores, "read"), daemon.endpoint) as store:
            drop_all(store, addrs)
        elapsed = time.perf_counter() - started
        if cold:
            daemon.stats()  # answered once the fills behind the replies are done
            settled.append(time.perf_counter() - started)
        else:
            daemon.stop()  # its cache done with; leaving the stack stops only a daemon still running
        return elapsed

    with contextlib.ExitStack() as running:
        direct, cold, warm = median_rates(len(addrs) * CHUNK, lambda i: iterate_all(read_dir, addrs),
                                          lambda i: through_nbsd(i, True), lambda i: through_nbsd(i, False))
    report.add(Figure(section, "iter_many all via nbsd, cold (daemon reads and fills its cache)", cold, "MB/s",
                      "local iter_many direct", direct))
    report.add(Figure(section, "iter_many all via nbsd, cold, until the cache fill is done",
                      len(addrs) * CHUNK / statistics.median(settled) / 1e6, "MB/s", "local iter_many direct", direct))
    report.add(Figure(section, "iter_many all via nbsd, again (client reads the daemon's cache)", warm, "MB/s",
                      "local iter_many direct", direct))


def _hash_and_encode(batch: Sequence[bytes]) -> int:
    """The per-chunk CPU work of a write, in-thread: SHA-512, snappy and CRC-32C of each chunk."""
    addresses_of(batch)
    return len(encode_records(batch).data)


def _threads_or_processes(report: Report, section: str, chunks: list[bytes], total: int) -> None:
    """Hashing and encoding the same chunks in one thread, on a thread per CPU, and on the chunk workers."""
    batches = [chunks[i:i + BATCH_CHUNKS] for i in range(0, len(chunks), BATCH_CHUNKS)]
    cpus = os.cpu_count() or 1
    with ThreadPoolExecutor(cpus) as threads:
        def timed(work: Callable[[], object]) -> Callable[[int], float]:
            def once(i: int) -> float:
                started = time.perf_counter()
                work()
                return time.perf_counter() - started
            return once

        one, many, workers = median_rates(
            total, timed(lambda: [_hash_and_encode(b) for b in batches]),
            timed(lambda: list(threads.map(_hash_and_encode, batches))),
            timed(lambda: (hash_all(chunks), sum(len(r.data) for _, r in encode_all(chunks)))))
    report.add(Figure(section, f"hash+encode on {cpus} threads", many, "MB/s", "one thread", one))
    report.add(Figure(section, f"hash+encode on {pool().count} chunk worker processes", workers, "MB/s",
                      "one thread", one))


def _shared_workers(report: Report, section: str, chunks: list[bytes], threads: int = 4, calls: int = 30) -> None:
    """The slowest of many ``hash_all`` calls made at once by ``threads`` threads sharing the chunk workers,
    against the same call alone.

    Waiting callers are served in turn, so a call waits at most for the
    calls ahead of it: the target allows each of ``threads`` calls 4x its time alone.
    """
    def call() -> float:
        started = time.perf_counter()
        hash_all(chunks)
        return time.perf_counter() - started

    alone = statistics.median(call() for _ in range(calls))
    with ThreadPoolExecutor(threads) as pool_of_threads:
        slowest = max(pool_of_threads.map(lambda _: max(call() for _ in range(calls)), range(threads)))
    bound = 4 * threads
    report.add(Figure(section, f"slowest hash_all of {len(chunks)} chunks, {threads} threads at once",
                      slowest * 1e3, "ms", "the same call alone (median)", alone * 1e3, f"<= {bound}x",
                      slowest <= bound * alone))


def _via_nbsd(report: Report, section: str, workdir: str, chunks: list[bytes], total: int) -> None:
    """Writes through nbsd against direct ones, and the CPU each spends: on two cores a write through nbsd
    cannot come near a direct one's speed if it costs much more CPU in all.  Also the same write with its
    parts through the ZeroMQ socket instead of the client's part memory."""
    import nbsclient

    with DaemonProcess(os.path.join(workdir, "nbsd")) as daemon:
        me, served = psutil.Process(), psutil.Process(daemon.pid)
        spent: dict[str, list[float]] = {"direct": [], "client": [], "daemon": [], "socket": []}

        def daemon_side() -> list[psutil.Process]:
            """The daemon and its chunk workers."""
            return [served, *served.children(recursive=True)]

        def writer_side() -> list[psutil.Process]:
            """This process and its chunk workers (not the daemon's)."""
            theirs = {p.pid for p in daemon_side()}
            return [me, *(p for p in me.children(recursive=True) if p.pid not in theirs)]

        def direct(i: int) -> float:
            directory = os.path.join(daemon.stores, f"direct-{i}")
            os.makedirs(directory)
            before = _cpu_seconds(writer_side())
            store = new_local_store(directory)
            seconds = put_all_and_commit(store, chunks)[0]
            store.close()
            spent["direct"].append(_cpu_seconds(writer_side()) - before)
            shutil.rmtree(directory)
            return seconds

        def via(i: int, part_memory: bool = True) -> float:
            client, daemon_cpu = _cpu_seconds([me]), _cpu_seconds(daemon_side())
            with nbsclient.connect(os.path.join(daemon.stores, f"via-{i}-{part_memory}"), daemon.endpoint,
                                   commit_timeout=600.0, part_memory=part_memory) as store:
                seconds = put_all_and_commit(store, chunks)[0]
            cpu = _cpu_seconds([me]) - client, _cpu_seconds(daemon_side()) - daemon_cpu
            if part_memory:
                spent["client"].append(cpu[0])
                spent["daemon"].append(cpu[1])
            else:
                spent["socket"].append(sum(cpu))
            return seconds

        before = daemon.stats()["chunk_parts"]
        direct_rate, via_rate, socket_rate = median_rates(total, direct, via, lambda i: via(i, part_memory=False))
        after = daemon.stats()["chunk_parts"]
    report.add(Figure(section, "put_many+commit via nbsd", via_rate, "MB/s", "local direct", direct_rate,
                      ">= 0.9x", via_rate >= 0.9 * direct_rate))
    report.add(Figure(section, "put_many+commit via nbsd, parts through the socket", socket_rate, "MB/s",
                      "local direct", direct_rate))
    shared = after["shared_memory"] - before["shared_memory"]
    report.add(Figure(section, "parts in part memory / all parts via nbsd", shared, "parts", "all parts",
                      shared + after["socket"] - before["socket"]))
    per_100mb = {key: statistics.median(values) * 100e6 / total for key, values in spent.items()}
    report.add(Figure(section, "CPU per 100 MB via nbsd (client + daemon and its workers)",
                      per_100mb["client"] + per_100mb["daemon"], "s", "direct (writer and its workers)",
                      per_100mb["direct"]))
    report.add(Figure(section, "CPU per 100 MB via nbsd, the client's share", per_100mb["client"], "s"))
    report.add(Figure(section, "CPU per 100 MB via nbsd, parts through the socket", per_100mb["socket"], "s",
                      "direct (writer and its workers)", per_100mb["direct"]))


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    """User and system CPU the processes have spent so far (those that ended meanwhile count for nothing)."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _import_memory(report: Report, workdir: str, total: int, memtable_sizes: tuple[int, ...]) -> None:
    """Peak RSS growth of an import against the bound README states: the memtable filling, the one
    persisting, and a fixed overhead (``IMPORT_OVERHEAD``)."""
    for memtable_size in memtable_sizes:
        section = f"import {total >> 20} MiB, memtable {memtable_size >> 20} MiB"
        progress(f"[{section}]")
        directory = os.path.join(workdir, f"import-{memtable_size}")
        os.makedirs(directory)
        growth, before = run_parallel(import_rss, [(directory, total, memtable_size)])[0]
        bound = 2 * memtable_size + IMPORT_OVERHEAD
        report.add(Figure(section, "peak RSS growth during import", growth / MIB, "MiB",
                          f"2 x memtable + {IMPORT_OVERHEAD >> 20} MiB", bound / MIB, "<= 1.0x", growth <= bound))
        report.add(Figure(section, "RSS before import", before / MIB, "MiB"))
        shutil.rmtree(directory)
