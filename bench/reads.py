"""Cached chunk reads: nbsd fast path and requests, against direct nbs reads, raw LMDB and raw ZeroMQ."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import lmdb
import psutil
import zmq

from bench.common import Figure, Report, percentile, populate, progress, run_parallel, wait_until
from nbs.factory import new_local_store
from nbsclient.protocol import decode_reply, encode_get_one
from nbsclient.sockets import send_frame
from nbsd.runner import DaemonProcess

BATCH = 256
REPLY_WAIT_MS = 10_000  # a bare socket's wait for a round trip's reply


def _latencies(get: Any, addrs: list[bytes], n: int) -> list[float]:
    rng = random.Random(1)
    picks = [rng.choice(addrs) for _ in range(n)]
    for a in picks[:200]:
        get(a)
    out = []
    clock = time.perf_counter_ns
    for a in picks:
        t = clock()
        get(a)
        out.append((clock() - t) / 1000)
    return out


def _throughput(get_many: Any, addrs: list[bytes], size: int, seconds: float, start_at: float) -> float:
    batches = [addrs[i:i + BATCH] for i in range(0, len(addrs), BATCH)]
    get_many(batches[0])
    wait_until(start_at)
    done = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for batch in batches:
            done += len(get_many(batch))
    return done * size / (time.perf_counter() - t0) / 1e6


def client_throughput(args: tuple[str, str, list[bytes], bool, int, float, float]) -> float:
    import nbsclient

    spec, endpoint, addrs, fast, size, seconds, start_at = args
    with nbsclient.connect(spec, endpoint, fast_path=fast) as store:
        return _throughput(store.get_many, addrs, size, seconds, start_at)


def direct_throughput(args: tuple[str, list[bytes], int, float, float]) -> float:
    spec, addrs, size, seconds, start_at = args
    return _throughput(new_local_store(spec).get_many, addrs, size, seconds, start_at)


def _raw_env(info: dict[str, Any]) -> Any:
    env = lmdb.open(info["path"], readonly=True, lock=True, map_size=info["map_size"],
                    max_readers=info["max_readers"], max_dbs=4)
    return env, env.open_db(b"chunks", create=False)


def lmdb_throughput(args: tuple[dict[str, Any], list[bytes], int, float, float]) -> float:
    info, addrs, size, seconds, start_at = args
    env, db = _raw_env(info)

    def get_many(batch: list[bytes]) -> list[bytes]:
        with env.begin(db=db) as txn:
            return [txn.get(a) for a in batch]

    return _throughput(get_many, addrs, size, seconds, start_at)


def _dealer(context: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
    """A bare socket for round trips whose every wait for a reply is bounded."""
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.RCVTIMEO, REPLY_WAIT_MS)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def paired_latencies(args: tuple[str, str, str, list[bytes], int]) -> dict[str, list[float]]:
    """Single-get latencies of every path, measured in turn in one process so they share the noise.

    The raw LMDB floor reads through the client's own environment handle (a process
    may open an environment once); the raw ZeroMQ floor is a round trip to an echo
    server answering with a payload of the chunk size.  A compact get sent to the
    daemon from a bare socket (``compact``) splits a daemon request's time into the
    daemon's share (compact against the floor) and the client library's (request
    against compact).
    """
    import nbsclient

    spec, endpoint, echo, addrs, n = args
    fast = nbsclient.connect(spec, endpoint, fast_path=True)
    request = nbsclient.connect(spec, endpoint, fast_path=False)
    direct = new_local_store(spec)
    assert fast._cache is not None
    env, db = fast._cache.env, fast._cache.db
    context = zmq.Context()
    sock = _dealer(context, echo)
    bare = _dealer(context, endpoint)
    handle = request._handle  # the session the request path reads in
    assert handle is not None
    request_ids = itertools.count(1)

    def raw_lmdb(a: bytes) -> None:
        txn = env.begin(db=db)
        txn.get(a)
        txn.abort()

    def raw_zmq(a: bytes) -> None:
        send_frame(sock, a)
        sock.recv()

    def compact(a: bytes) -> bytes:
        send_frame(bare, encode_get_one(next(request_ids), handle, a))
        return bare.recv()

    _, chunk, error = decode_reply(compact(addrs[0]))  # timed undecoded: make sure it is the chunk once
    if error is not None or chunk != request.get(addrs[0]):
        raise RuntimeError(f"the bare compact get did not return the chunk: {error or 'another reply'}")

    paths = {"fast": fast.get, "lmdb": raw_lmdb, "direct": direct.get, "request": request.get, "compact": compact,
             "zmq": raw_zmq}
    rng = random.Random(1)
    out: dict[str, list[float]] = {name: [] for name in paths}
    clock = time.perf_counter_ns
    block = 200
    for round_ in range(n // block + 1):
        picks = [rng.choice(addrs) for _ in range(block)]
        for name, get in paths.items():  # blocks in turn: warm caches within a block, shared noise across
            if name in ("request", "compact", "zmq") and round_ % 4:
                continue  # round trips are slow; a quarter of the samples is plenty
            try:
                for a in picks:
                    t = clock()
                    get(a)
                    if round_:
                        out[name].append((clock() - t) / 1000)
            except zmq.Again:
                raise RuntimeError(f"no reply on the {name} path within {REPLY_WAIT_MS} ms") from None
    fast.close()
    request.close()
    return out


def run(report: Report, quick: bool) -> None:
    for size, count in ((4096, 2048 if quick else 8192), (65536, 256 if quick else 1024)):
        _run_size(report, size, count, quick)


def _run_size(report: Report, size: int, count: int, quick: bool) -> None:
    label = f"{size // 1024} KiB"
    section = f"cached reads {label}"
    seconds = 1.0 if quick else 3.0
    n = 2000 if quick else 10000
    progress(f"[{section}] {count} chunks")
    workdir = tempfile.mkdtemp(prefix="nbs-bench-")
    daemon = DaemonProcess(workdir, cache_size="2GiB", extra=["--max-open-files", "256"])
    with daemon:
        spec = os.path.join(daemon.stores, "reads")
        addrs = [bytes(a) for a in populate(spec, count, size)]
        with __import__("nbsclient").connect(spec, daemon.endpoint, fast_path=False) as warm:
            for i in range(0, count, BATCH):
                warm.get_many(addrs[i:i + BATCH])
        info = _cache_info(daemon.endpoint)
        echo = subprocess.Popen([sys.executable, "-m", "bench.zmq_echo", f"ipc://{workdir}/echo", str(size)])
        try:
            lat = run_parallel(paired_latencies, [(spec, daemon.endpoint, f"ipc://{workdir}/echo", addrs, n)])[0]
        finally:
            echo.kill()
        for p in (50, 99):
            report.add(Figure(section, f"get p{p}, fast path", percentile(lat["fast"], p), "us",
                              f"raw py-lmdb get p{p}", percentile(lat["lmdb"], p),
                              "p50 <= 10 us" if p == 50 and size == 4096 else "",
                              percentile(lat["fast"], p) <= 10 if p == 50 and size == 4096 else None))
            report.add(Figure(section, f"get p{p}, daemon request", percentile(lat["request"], p), "us",
                              f"raw ZeroMQ round trip p{p}", percentile(lat["zmq"], p),
                              "<= 1.5x raw round trip" if p == 50 else "",
                              percentile(lat["request"], p) <= 1.5 * percentile(lat["zmq"], p) if p == 50 else None))
            report.add(Figure(section, f"get p{p}, compact frame to nbsd", percentile(lat["compact"], p), "us",
                              f"raw ZeroMQ round trip p{p}", percentile(lat["zmq"], p)))
            report.add(Figure(section, f"get p{p}, direct nbs", percentile(lat["direct"], p), "us"))
        for procs in (1, 4, 8):
            start_at = time.time() + 2.0 + procs * 0.4
            rss_peak = _watch_daemon(daemon.pid)
            fast = sum(run_parallel(client_throughput, [(spec, daemon.endpoint, addrs, True, size, seconds,
                                                         start_at)] * procs))
            usage = rss_peak.stop()
            start_at = time.time() + 2.0 + procs * 0.4
            direct = sum(run_parallel(direct_throughput, [(spec, addrs, size, seconds, start_at)] * procs))
            start_at = time.time() + 2.0 + procs * 0.4
            raw = sum(run_parallel(lmdb_throughput, [(info, addrs, size, seconds, start_at)] * procs))
            target = ">= 500 MB/s per client" if size == 4096 and procs == 1 else ""
            report.add(Figure(section, f"get_many, {procs} proc, fast path", fast, "MB/s", "direct nbs", direct,
                              target, fast >= 500 if target else None))
            report.add(Figure(section, f"get_many, {procs} proc, fast path vs raw", fast, "MB/s",
                              "raw py-lmdb", raw))
            start_at = time.time() + 2.0 + procs * 0.4
            via = sum(run_parallel(client_throughput, [(spec, daemon.endpoint, addrs, False, size, seconds / 2,
                                                        start_at)] * procs))
            report.add(Figure(section, f"get_many, {procs} proc, daemon requests", via, "MB/s", "direct nbs",
                              direct))
            if procs == 8:
                report.add(Figure("daemon resources", f"rss under 8-client load ({label})", usage["rss"] / 2**20,
                                  "MiB"))
                report.add(Figure("daemon resources", f"open files under load ({label})", usage["files"],
                                  "files", "max-open-files budget", 256, "<= budget", usage["files"] <= 256))


def _cache_info(endpoint: str) -> dict[str, Any]:
    from nbsclient.connection import Connection
    from nbsclient.protocol import HELLO

    with Connection(endpoint) as conn:
        return conn.request(HELLO, {})["cache"]  # type: ignore[no-any-return]


class _watch_daemon:
    """Samples the daemon's resident memory and open files until stopped."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = {"rss": 0, "files": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak["rss"] = max(self.peak["rss"], self.proc.memory_info().rss)
            self.peak["files"] = max(self.peak["files"], len(self.proc.open_files()))
            time.sleep(0.05)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return self.peak
