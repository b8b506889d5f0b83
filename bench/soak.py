"""Soak: nbsd under sustained mixed load, local then AWS on moto, watching its memory and descriptors.

Worker processes open stores through nbsd, write chunks, commit roots that
chain to their predecessors, and read back both their own chunks and a hot
set larger than the cache (so eviction runs). Stores grow past the conjoin
threshold. Each worker cycles through a fixed set of chunk contents, so once
the stores hold them they stop growing (a put of a chunk a store holds adds
nothing) while every commit still adds a table and conjoins keep running: an
open store's indexes take memory per chunk, and a store that grows for ever
would hide a leak behind its own growth. Afterwards every store's root chain is walked: every commit a
worker saw succeed must be in it, and nothing else. The daemon's resident
memory is sampled throughout; the figure that matters is the slope over the
last two thirds of the run (a leak keeps climbing, a warm-up levels off).
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.aws import moto_place
from bench.common import Figure, Report, progress, run_parallel
from nbs.addr import Addr
from nbs.chunk_store import ChunkStore
from nbs.factory import new_local_store
from nbs.store import NomsBlockStore
from nbsclient import protocol as p
from nbsclient.connection import Connection
from nbsd.runner import DaemonProcess

CHUNK = 4096
HOT_CHUNKS = 2000  # per store: with 8 stores, 64 MiB against a 32 MiB cache
DISTINCT_CHUNKS = 1000  # per worker: the contents it cycles through
CACHE_SIZE = "32MiB"
INDEX_CACHE_SIZE = "8MiB"  # small budgets fill early, so what grows after that is not a cache filling up
SMALL_TABLE_CACHE_SIZE = "16MiB"
EMPTY = Addr(bytes(20))
ROOT_TAG = b"soak-root"
CACHES = ("index_cache", "small_table_cache")  # the daemon's budgeted in-memory caches, as stats names them
SLOPE_TARGET = 1.0  # MB/min over the last two thirds


def chunk_bytes(worker: int, seq: int) -> bytes:
    """A worker's seq-th chunk, regenerated for verification instead of being kept."""
    return f"{worker}:{seq}:".encode() + random.Random(worker * 1_000_003 + seq).randbytes(CHUNK - 24)


def hot_bytes(store: int, i: int) -> bytes:
    return chunk_bytes(10_000 + store, i)


def root_chunk(prev: Addr, worker: int, seq: int) -> bytes:
    return ROOT_TAG + bytes(prev) + worker.to_bytes(2, "big") + seq.to_bytes(4, "big")


@dataclass
class WorkerTally:
    commits: list[tuple[str, bytes]] = field(default_factory=list)
    reads_verified: int = 0
    wrong: int = 0
    opens: int = 0
    lost_races: int = 0


def soak_worker(args: tuple[int, list[str], str, float]) -> WorkerTally:
    import nbsclient

    worker, specs, endpoint, deadline = args
    rng = random.Random(worker)
    tally = WorkerTally()
    written: dict[str, list[tuple[Addr, int]]] = {spec: [] for spec in specs}
    seq = 0
    while time.time() < deadline:
        spec_index = rng.randrange(len(specs))
        spec = specs[spec_index]
        with nbsclient.connect(spec, endpoint, timeout=120.0) as store:
            tally.opens += 1
            for _ in range(5):
                batch = []
                for _ in range(rng.randint(8, 32)):
                    seq += 1
                    content = seq % DISTINCT_CHUNKS
                    batch.append((store.put(chunk_bytes(worker, content)), content))
                _commit_root(store, spec, worker, seq, tally)
                written[spec].extend(batch)
                mine = rng.sample(written[spec], min(64, len(written[spec])))
                _verify(store, {a: chunk_bytes(worker, s) for a, s in mine}, tally)
                hot = rng.sample(range(HOT_CHUNKS), 64)
                _verify(store, {Addr.of(hot_bytes(spec_index, i)): hot_bytes(spec_index, i) for i in hot}, tally)
    return tally


def _commit_root(store: ChunkStore, spec: str, worker: int, seq: int, tally: WorkerTally) -> None:
    while True:
        last = store.root()
        current = store.put(root_chunk(last, worker, seq))
        if store.commit(current, last):
            tally.commits.append((spec, bytes(current)))
            return
        tally.lost_races += 1  # another writer moved the root; the failed commit rebased our view


def _verify(store: ChunkStore, expected: dict[Addr, bytes], tally: WorkerTally) -> None:
    got = store.get_many(list(expected))
    tally.reads_verified += len(expected)
    tally.wrong += sum(got.get(a) != data for a, data in expected.items())


def chain(store: ChunkStore) -> set[bytes]:
    """Every root reachable from the store's root through the predecessor links."""
    roots: set[bytes] = set()
    current = store.root()
    while current != EMPTY:
        roots.add(bytes(current))
        data = store.get(current)
        if data is None or not data.startswith(ROOT_TAG):
            raise AssertionError(f"root {current} is missing or not a root chunk")
        current = Addr(data[len(ROOT_TAG):len(ROOT_TAG) + 20])
    return roots


class Sampler:
    """The daemon's RSS, anonymous RSS, descriptors and threads, once a second."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.samples: list[tuple[float, int, int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _anon(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        return 0

    def sample(self) -> tuple[float, int, int, int, int]:
        return (time.time(), self.proc.memory_info().rss, self._anon(), self.proc.num_fds(), self.proc.num_threads())

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(self.sample())

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def slope_mb_per_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of bytes over time, in MB per minute."""
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return cov / var * 60 / 1e6


def _phase(report: Report, section: str, daemon: DaemonProcess, specs: list[str], workers: int, minutes: float,
           open_direct: Callable[[str], ChunkStore], size: Callable[[str], tuple[int, int]]) -> None:
    progress(f"[{section}]")
    for index, spec in enumerate(specs):  # the hot set, written directly
        store = open_direct(spec)
        for i in range(HOT_CHUNKS):
            store.put(hot_bytes(index, i))
        assert store.commit(store.root(), store.root())
        store.close()
    sampler = Sampler(daemon.pid)
    idle = sampler.sample()
    deadline = time.time() + minutes * 60
    last_tables = {spec: size(spec)[0] for spec in specs}
    held: list[tuple[float, int]] = []  # (time, chunks in all the stores)
    beyond_caches: list[tuple[float, int]] = []  # (time, anonymous RSS less what the caches hold)
    conjoins = 0
    with sampler, ThreadPoolExecutor(1) as runner, Connection(daemon.endpoint) as conn:
        running = runner.submit(run_parallel, soak_worker,
                                [(w, specs, daemon.endpoint, deadline) for w in range(workers)])
        while not running.done():
            wait([running], timeout=5.0)
            beyond_caches.append((time.time(), sampler.sample()[2] - _cached_bytes(conn.request(p.STATS, {}))))
            total = 0
            for spec in specs:
                count, chunks = size(spec)
                conjoins += count < last_tables[spec]  # only a conjoin shrinks a store's table list
                last_tables[spec] = count
                total += chunks
            held.append((time.time(), total))
        tallies: list[WorkerTally] = running.result()  # a worker's failure ends the soak here, not as "0 wrong"
    committed = [c for t in tallies for c in t.commits]
    missing = extra = 0
    for spec in specs:
        store = open_direct(spec)
        history = chain(store)
        store.close()
        mine = {root for s, root in committed if s == spec}
        missing += len(mine - history)
        extra += len(history - mine)
    reads = sum(t.reads_verified for t in tallies)
    wrong = sum(t.wrong for t in tallies)
    report.add(Figure(section, "chunk reads verified", reads, "chunks", target="0 wrong", met=wrong == 0))
    report.add(Figure(section, "wrong or missing chunk reads", wrong, "chunks", target="0", met=wrong == 0))
    report.add(Figure(section, "commits (all in history, nothing else)", len(committed), "commits",
                      target="0 missing, 0 extra", met=missing == 0 and extra == 0))
    report.add(Figure(section, "lost commit races (rebased and retried)", sum(t.lost_races for t in tallies),
                      "races"))
    report.add(Figure(section, "store opens", sum(t.opens for t in tallies), "opens"))
    report.add(Figure(section, "conjoins seen", conjoins, "conjoins", target=">= 1", met=conjoins >= 1))
    third = held[len(held) // 3][1] if held else 0
    report.add(Figure(section, "chunks in the stores at end", held[-1][1] if held else 0, "chunks",
                      "at one third", third))
    _memory_figures(report, section, idle, sampler.samples, minutes)
    tail = beyond_caches[len(beyond_caches) // 3:]
    if len(tail) >= 2:
        slope = slope_mb_per_min(tail)
        report.add(Figure(section, "anonymous RSS less the caches, slope over the last two thirds", slope,
                          "MB/min", target=f"< {SLOPE_TARGET}", met=slope < SLOPE_TARGET))
    _budget_figures(report, section, daemon.endpoint)


def _cached_bytes(stats: dict[str, Any]) -> int:
    """What the daemon's index and small-table caches hold: budgeted memory that grows by design until full.

    Their growth is taken out of the slope that looks for leaks, so a run too short for the caches to fill
    does not read as one (an 8 MiB index cache fills over about ten minutes of the soak).
    """
    return sum(int(stats[key]["bytes"]) for key in CACHES)


def _memory_figures(report: Report, section: str, idle: tuple[float, int, int, int, int],
                    samples: list[tuple[float, int, int, int, int]], minutes: float) -> None:
    mib = 2**20
    start, middle, end = samples[0], samples[len(samples) // 2], samples[-1]
    tail = samples[len(samples) // 3:]
    report.add(Figure(section, "daemon RSS idle before load", idle[1] / mib, "MiB"))
    report.add(Figure(section, "daemon anonymous RSS idle before load", idle[2] / mib, "MiB"))
    for label, sample in (("start", start), ("middle", middle), ("end", end)):
        report.add(Figure(section, f"daemon RSS at {label}", sample[1] / mib, "MiB"))
        report.add(Figure(section, f"daemon anonymous RSS at {label}", sample[2] / mib, "MiB"))
    rss_slope = slope_mb_per_min([(t, rss) for t, rss, *_ in tail])
    anon_slope = slope_mb_per_min([(t, anon) for t, _, anon, *_ in tail])
    report.add(Figure(section, f"RSS slope, last two thirds of {minutes:g} min", rss_slope, "MB/min",
                      target=f"< {SLOPE_TARGET}", met=rss_slope < SLOPE_TARGET))
    report.add(Figure(section, f"anonymous RSS slope, last two thirds of {minutes:g} min", anon_slope, "MB/min",
                      target=f"< {SLOPE_TARGET}", met=anon_slope < SLOPE_TARGET))
    report.add(Figure(section, "daemon descriptors, most", max(s[3] for s in samples), "fds"))
    report.add(Figure(section, "daemon threads, most", max(s[4] for s in samples), "threads"))


def _budget_figures(report: Report, section: str, endpoint: str) -> None:
    """How full the daemon's memory budgets are at the end: RSS beyond them is the fixed overhead."""
    with Connection(endpoint) as conn:
        stats = conn.request(p.STATS, {})
    mib = 2**20
    for key in CACHES:
        figures = stats[key]
        report.add(Figure(section, f"{key.replace('_', ' ')} at end", figures["bytes"] / mib, "MiB", "budget",
                          figures["budget"] / mib))
    memory = stats["memory"]
    if "heap_in_use" in memory:
        report.add(Figure(section, "malloc heap in use at end", memory["heap_in_use"] / mib, "MiB"))
        report.add(Figure(section, "malloc heap free (fragmented) at end", memory["heap_free"] / mib, "MiB"))
    files = stats["open_files"]
    report.add(Figure(section, "daemon descriptors at end", files["fds"], "fds", "descriptor limit",
                      files["limit"]))
    report.add(Figure(section, "table files open at end", files["tables"], "files", "table-files budget",
                      files["table_budget"], "<= budget", files["tables"] <= files["table_budget"]))


@contextmanager
def _daemon(workdir: str, extra: list[str]) -> Iterator[DaemonProcess]:
    os.makedirs(workdir, exist_ok=True)
    config = os.path.join(workdir, "nbsd.toml")
    with open(config, "w") as out:
        out.write(f'index_cache_size = "{INDEX_CACHE_SIZE}"\nsmall_table_cache_size = "{SMALL_TABLE_CACHE_SIZE}"\n')
    with DaemonProcess(workdir, cache_size=CACHE_SIZE,
                       extra=["--config", config, "--max-open-files", "64", *extra]) as daemon:
        yield daemon


def run(report: Report, quick: bool) -> None:
    minutes = 1.0 if quick else float(os.environ.get("NBS_SOAK_MINUTES", "10"))
    workdir = tempfile.mkdtemp(prefix="nbs-bench-soak-")
    local = os.path.join(workdir, "local")
    with _daemon(local, []) as daemon:
        specs = [os.path.join(daemon.stores, f"s{i}") for i in range(8)]
        for spec in specs:
            os.makedirs(spec)
        _phase(report, f"soak local, 8 workers, 8 stores, {minutes:g} min", daemon, specs, 8, minutes,
               new_local_store, _local_size)
    with moto_place(workdir) as place, _daemon(os.path.join(workdir, "aws"),
                                               ["--aws-endpoint", place.server.endpoint, "--aws-store", "*"]) as d:
        from nbs.aws_factory import new_aws_store

        s3, ddb = place.server.clients()
        names = {place.spec(f"soak{i}"): f"soak{i}" for i in range(2)}

        def open_aws(spec: str) -> ChunkStore:
            return new_aws_store(place.table, names[spec], place.bucket, s3, ddb)

        def aws_size(spec: str) -> tuple[int, int]:
            store = new_aws_store(place.table, names[spec], place.bucket, s3, ddb)
            try:
                return _size(store)
            finally:
                store.close()

        _phase(report, f"soak AWS on moto, 4 workers, 2 stores, {minutes:g} min", d, list(names), 4, minutes,
               open_aws, aws_size)


def _size(store: NomsBlockStore) -> tuple[int, int]:
    """A store's tables and the chunks they hold."""
    specs = store.upstream.specs
    return len(specs), sum(spec.chunk_count for spec in specs)


def _local_size(path: str) -> tuple[int, int]:
    store = new_local_store(path)
    try:
        return _size(store)
    finally:
        store.close()
