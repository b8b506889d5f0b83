"""Commit cost: commits per second and commit latency (p50, p99), durable (the default) and with sync=False.

Each commit puts one 4 KiB chunk, so it writes one table and one manifest.
The floor is two file replacements per commit (write a temp file, rename it
into place), measured in the same run, plain and durable (fsync the file
before the rename, the directory after).  Variants alternate in rounds so
that load from other processes falls on all of them alike.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from collections.abc import Callable

from bench.common import Figure, Report, chunk_payloads, percentile, progress
from nbs.factory import new_local_store
from nbs.store import NomsBlockStore

CHUNK = 4096
ROUNDS = 4


def commit_once(store: NomsBlockStore, chunk: bytes) -> None:
    """One put and its commit."""
    addr = store.put(chunk)
    assert store.commit(addr, store.root())


def replace_twice(directory: str, chunk: bytes, *, sync: bool) -> None:
    """What a commit must at least do: two files written and renamed into place (synced when ``sync``)."""
    for name in ("table", "manifest"):
        temp = os.path.join(directory, name + ".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, chunk)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, os.path.join(directory, name))
        if sync:
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def timed(op: Callable[[bytes], None], chunks: list[bytes]) -> list[float]:
    """Seconds each call of ``op`` took."""
    out = []
    clock = time.perf_counter
    for chunk in chunks:
        t = clock()
        op(chunk)
        out.append(clock() - t)
    return out


def run(report: Report, quick: bool) -> None:
    commits = 200 if quick else 800
    section = f"commits of one 4 KiB chunk x {commits}"
    progress(f"[{section}]")
    workdir = tempfile.mkdtemp(prefix="nbs-bench-commits-")
    ops: dict[str, Callable[[bytes], None]] = {}
    for sync in (False, True):
        label = "sync" if sync else "sync=False"
        store_dir = os.path.join(workdir, f"store-{label}")
        plain_dir = os.path.join(workdir, f"files-{label}")
        os.makedirs(store_dir)
        os.makedirs(plain_dir)
        store = new_local_store(store_dir, sync=sync)
        ops[f"commit, {label}"] = functools.partial(commit_once, store)
        ops[f"replace, {label}"] = functools.partial(replace_twice, plain_dir, sync=sync)
    chunks = list(chunk_payloads(commits * len(ops), CHUNK, seed=13))
    latencies: dict[str, list[float]] = {name: [] for name in ops}
    per_round = commits // ROUNDS
    for r in range(ROUNDS):
        for i, (name, op) in enumerate(ops.items()):
            start = (r * len(ops) + i) * per_round
            latencies[name] += timed(op, chunks[start:start + per_round])

    def rate(name: str) -> float:
        return len(latencies[name]) / sum(latencies[name])

    def ms(name: str, p: float) -> float:
        return percentile(latencies[name], p) * 1000

    for label, floor in (("sync=False", "2 file replaces, no fsync"),
                         ("sync", "2 durable file replaces (fsync file, rename, fsync dir)")):
        report.add(Figure(section, f"commits/s, {label}", rate(f"commit, {label}"), "commits/s",
                          f"{floor}/s", rate(f"replace, {label}")))
        for p in (50, 99):
            report.add(Figure(section, f"commit latency p{p}, {label}", ms(f"commit, {label}", p), "ms",
                              f"{floor} p{p}", ms(f"replace, {label}", p)))
    report.add(Figure(section, "commits/s, sync (the default)", rate("commit, sync"), "commits/s",
                      "commits/s, sync=False", rate("commit, sync=False")))
