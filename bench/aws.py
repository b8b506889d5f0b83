"""The AWS backend on a moto server: cold reads shared through nbsd vs direct, and writes vs plain boto3.

Every S3 and DynamoDB request goes through a counting loopback proxy, so
the cold-read figures are backend requests and response bytes, not times:
what the daemon saves is requests.  moto keeps objects in memory and runs
on the same two cores, so the write figures compare shapes of work, not
what real S3 would sustain.  Writes are measured twice: on issue 16's mixed
chunks (half of them JSON-like, so the table is smaller than the bytes uploaded
plainly), which carry its target, and on incompressible chunks, the worst case
(a table as large as the plain upload, which must also wait for every chunk to
be hashed: the table's S3 key is the hash of its addresses).
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import Figure, Report, chunk_payloads, mixed_chunks, progress, run_parallel, wait_until
from bench.writes import commit_batches, write_batches
from nbs.addr import Addr
from nbs.aws_factory import aws_clients, new_aws_store
from nbs.aws_table_persister import cut_parts, part_size
from nbs.chunk_jobs import hash_all
from nbs.chunk_store import ChunkStore
from nbs.table_writer import TableStream
from nbsd.runner import DaemonProcess
from tests.aws_server import MotoServer, isolate_aws_environment, start_moto_server
from tests.fault_proxy import FaultProxy

CHUNK = 4096
BATCH = 256


@dataclass(frozen=True)
class Place:
    """One store on the moto server, reached through the counting proxy."""

    server: MotoServer
    proxy: FaultProxy
    table: str
    bucket: str

    def spec(self, name: str) -> str:
        return f"aws://{self.table}:{self.bucket}/{name}"

    def location(self, name: str, endpoint: str) -> tuple[str, str, str, str]:
        return endpoint, self.table, self.bucket, name


@contextmanager
def moto_place(workdir: str) -> Iterator[Place]:
    isolate_aws_environment()  # dummy credentials; nothing can reach a real endpoint
    server = start_moto_server(Path(workdir))
    proxy = FaultProxy(server.endpoint).start()
    try:
        yield Place(server, proxy, server.create_table(), server.create_bucket())
    finally:
        proxy.stop()
        server.stop()


def _get_all(store: ChunkStore, addrs: list[Addr], start_at: float) -> int:
    wait_until(start_at)
    served = 0
    for i in range(0, len(addrs), BATCH):
        served += sum(map(len, store.get_many(addrs[i:i + BATCH]).values()))
    return served


def direct_reader(args: tuple[tuple[str, str, str, str], list[Addr], float]) -> int:
    (endpoint, table, bucket, name), addrs, start_at = args
    s3, ddb = aws_clients(endpoint_url=endpoint)
    return _get_all(new_aws_store(table, name, bucket, s3, ddb), addrs, start_at)


def daemon_reader(args: tuple[str, str, list[Addr], float]) -> int:
    import nbsclient

    spec, endpoint, addrs, start_at = args
    with nbsclient.connect(spec, endpoint, timeout=120.0) as store:
        return _get_all(store, addrs, start_at)


def _populate(place: Place, name: str, count: int) -> list[Addr]:
    s3, ddb = place.server.clients()
    store = new_aws_store(place.table, name, place.bucket, s3, ddb)
    addrs = [store.put(c) for c in chunk_payloads(count, CHUNK, seed=21)]
    assert store.commit(addrs[-1], store.root())
    return addrs


def _cold_reads(report: Report, place: Place, workdir: str, count: int) -> None:
    section = f"cold AWS reads, {count} x {CHUNK >> 10} KiB"
    progress(f"[{section}]")
    figures: dict[tuple[str, int], tuple[int, int, float]] = {}
    for procs in (1, 8):
        for through in ("direct", "nbsd"):
            name = f"cold-{through}-{procs}"
            addrs = _populate(place, name, count)
            place.proxy.reset_counts()
            start_at = time.time() + 2.0
            if through == "direct":
                served = sum(run_parallel(direct_reader, [(place.location(name, place.proxy.endpoint), addrs,
                                                           start_at)] * procs))
            else:
                with DaemonProcess(os.path.join(workdir, name),
                                   extra=["--aws-endpoint", place.proxy.endpoint, "--aws-store", "*"]) as daemon:
                    served = sum(run_parallel(daemon_reader, [(place.spec(name), daemon.endpoint, addrs,
                                                               start_at)] * procs))
            assert served == procs * count * CHUNK, f"{through} x{procs} served {served} bytes"
            ops = place.proxy.operations
            data_requests = ops["GET range"] + ops["GetItem table"]
            figures[(through, procs)] = (data_requests, ops["GetItem manifest"], place.proxy.answered_bytes / served)
            progress(f"  {through} x{procs}: {dict(place.proxy.operations)}")
    for procs in (1, 8):
        chunks = procs * count
        d_req, _, d_bytes = figures[("direct", procs)]
        n_req, _, n_bytes = figures[("nbsd", procs)]
        report.add(Figure(section, f"data requests per 1000 chunks served, {procs} proc via nbsd",
                          1000 * n_req / chunks, "req", "direct", 1000 * d_req / chunks))
        report.add(Figure(section, f"bytes fetched per byte served, {procs} proc via nbsd", n_bytes, "B/B",
                          "direct", d_bytes))
    one, eight = figures[("nbsd", 1)], figures[("nbsd", 8)]
    report.add(Figure(section, "data requests, 8 procs via nbsd", eight[0], "req", "1 proc via nbsd", one[0],
                      target="<= 1 proc", met=eight[0] <= one[0]))
    # Each open must see a manifest read that began after it (Go's rule), so opens spread over
    # process start-up share some reads, not all.
    report.add(Figure(section, "manifest reads, 8 procs via nbsd", eight[1], "req", "1 proc via nbsd", one[1]))
    report.add(Figure(section, "data requests, 8 procs direct", figures[("direct", 8)][0], "req",
                      "1 proc direct", figures[("direct", 1)][0]))


def _writes(report: Report, place: Place, workdir: str, commits: int, per_commit: int) -> None:
    """AWS writes of incompressible chunks, and of issue 16's mixed chunks (half of them compress well)."""
    per = per_commit // CHUNK
    random_chunks = write_batches(commits, per_commit, seed=31)
    mixed = mixed_chunks(commits * per, seed=37)
    _write_turns(report, place, workdir, f"AWS writes {commits} commits x {per_commit >> 20} MiB", "random",
                 random_chunks, targeted=False)
    _write_turns(report, place, workdir, f"AWS writes {commits} commits x {per_commit >> 20} MiB, mixed chunks",
                 "mixed", [mixed[i:i + per] for i in range(0, len(mixed), per)], targeted=True)


def _write_turns(report: Report, place: Place, workdir: str, section: str, label: str,
                 batches: list[list[bytes]], targeted: bool) -> None:
    """Per commit, in turns: a plain boto3 upload of the batch's bytes, put+commit direct, put+commit via nbsd
    (``targeted``: issue 16's data, whose direct figure has the target of at least the plain upload).

    Taking turns commit by commit (and medians over the commits) lets the
    three share the machine's noise and moto's growing state.  The plain
    upload sends the chunks as they are; a table holds them compressed, so
    on chunks that compress it has fewer bytes to send (the table's size is
    reported beside the figures).
    """
    progress(f"[{section}]")
    per_commit = sum(map(len, batches[0]))
    s3, ddb = place.server.clients()
    direct = new_aws_store(place.table, f"writes-direct-{label}", place.bucket, s3, ddb)
    seconds: dict[str, list[float]] = {"plain": [], "direct": [], "via": []}

    import nbsclient

    with DaemonProcess(os.path.join(workdir, f"writes-{label}"),
                       extra=["--aws-endpoint", place.server.endpoint, "--aws-store", "*"]) as daemon:
        with nbsclient.connect(place.spec(f"writes-nbsd-{label}"), daemon.endpoint, timeout=120.0) as via:
            for i, batch in enumerate(batches):
                started = time.perf_counter()
                s3.upload_fileobj(io.BytesIO(b"".join(batch)), place.bucket, f"plain-{label}-{i}")
                seconds["plain"].append(time.perf_counter() - started)
                seconds["direct"].append(commit_batches(direct, [batch]))
                seconds["via"].append(commit_batches(via, [batch]))
    plain_rate, direct_rate, via_rate = (per_commit / statistics.median(seconds[k]) / 1e6
                                         for k in ("plain", "direct", "via"))
    target, met = (">= 1.0x", direct_rate >= plain_rate) if targeted else ("", None)
    report.add(Figure(section, "put+commit, AWS direct (median commit)", direct_rate, "MB/s",
                      "plain boto3 upload_fileobj", plain_rate, target, met))
    report.add(Figure(section, "put+commit, AWS via nbsd (median commit)", via_rate, "MB/s", "AWS direct",
                      direct_rate))
    report.add(Figure(section, "table bytes per commit, AWS direct (mean)", direct.stats().bytes_per_persist.mean()
                      / (1 << 20), "MiB", "the chunks' bytes (what the plain upload sends)", per_commit / (1 << 20)))


def _part_cutting(report: Report, per_commit: int) -> None:
    """Memory and time of cutting a table's records into upload parts, against the table itself.

    The upload keeps every part until it completes, so the parts alone hold
    the table's bytes once; joining the whole table and slicing the parts out
    of it (how it was done before) held them twice.
    """
    section = f"AWS upload parts of a {per_commit >> 20} MiB table"
    progress(f"[{section}]")
    batch = write_batches(1, per_commit, seed=47)[0]
    pieces = list(TableStream(hash_all(batch), batch).pieces())
    table_size = sum(map(len, pieces))
    size = part_size(table_size, 5 << 20)
    cut_seconds, join_seconds = [], []
    for _ in range(9):
        started = time.perf_counter()
        parts = [part for part, _ in cut_parts(pieces, size)]
        cut_seconds.append(time.perf_counter() - started)
        del parts
        started = time.perf_counter()
        whole = b"".join(pieces)
        join_seconds.append(time.perf_counter() - started)
        del whole
    tracemalloc.start()
    try:
        parts = [part for part, _ in cut_parts(pieces, size)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert b"".join(parts) == b"".join(pieces)
    report.add(Figure(section, f"memory allocated cutting {len(parts)} parts (all kept)", peak / (1 << 20), "MiB",
                      "the table's bytes", table_size / (1 << 20), "<= 1.05x", peak <= 1.05 * table_size))
    report.add(Figure(section, "time cutting the parts (median of 9)", statistics.median(cut_seconds) * 1e3, "ms",
                      "one join of the whole table", statistics.median(join_seconds) * 1e3))


def run(report: Report, quick: bool) -> None:
    _part_cutting(report, 10 << 20)
    workdir = tempfile.mkdtemp(prefix="nbs-bench-aws-")
    with moto_place(workdir) as place:
        _cold_reads(report, place, workdir, 1024 if quick else 4096)
        _writes(report, place, workdir, *((4, 5 << 20) if quick else (16, 10 << 20)))
