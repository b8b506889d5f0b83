"""Cache faults with real processes: a full cache disk, and a client that cannot read the cache.

A full disk: nbsd's LMDB cache on a real tmpfs smaller than the store it
caches.  Every read must return the right bytes while fills fail, the daemon
must stay up and say the cache is degraded (logging it once, not per
request), and the cache must work again by itself once space is freed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest

import nbsclient
from nbs.addr import Addr
from nbs.factory import new_local_store
from nbsclient import protocol as p
from tests.daemon_harness import ROOT, Daemon
from tests.lmdb_faults import READERS_FULL, Clock, faulty
from tests.os_faults import small_tmpfs

pytestmark = pytest.mark.timeout(300)

CHUNK = 4096  # with its record header, two LMDB pages in the cache
CHUNKS = 8000  # about 31 MiB: more than the tmpfs holds
BATCH = 500


def state(daemon: Daemon) -> str:
    return str(daemon.stats()["cache"]["state"])


def test_reads_survive_a_full_cache_disk_and_the_cache_recovers() -> None:
    with small_tmpfs("20m") as disk, Daemon(cache_size="64MiB", extra=["--cache-dir", str(disk / "nbsd")]) as daemon:
        started = time.monotonic()
        ballast = disk / "ballast"
        ballast.write_bytes(os.urandom(6 << 20))  # tmpfs pages are real: this is space to give back later
        path = daemon.store_path("big")
        os.makedirs(path)
        writer = new_local_store(path, 1 << 20)
        chunks: dict[bytes, bytes] = {}
        for _ in range(CHUNKS):
            data = os.urandom(CHUNK)
            chunks[bytes(writer.put(data))] = data
        assert writer.commit(Addr(next(iter(chunks))), writer.root())
        addrs = list(chunks)

        with nbsclient.connect(path, daemon.endpoint) as client:
            for start in range(0, CHUNKS, BATCH):
                batch = addrs[start:start + BATCH]
                assert client.get_many(batch) == {a: chunks[a] for a in batch}
            assert all(client.get(a) == chunks[a] for a in addrs[::97])
        assert daemon.proc is not None and daemon.proc.poll() is None
        assert state(daemon).startswith("degraded: write failed: ")
        status = subprocess.run([sys.executable, "-m", "nbsd", "status", "--socket", daemon.socket],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0 and "degraded: write failed: " in status.stdout, status
        log = daemon.log.read_text()
        assert "cache_size 67108864 bytes exceeds the " in log
        assert 1 <= log.count(" degraded: ") <= 1 + (time.monotonic() - started) // 60, log
        assert "Traceback" not in log
        lock = os.stat(disk / "nbsd" / "chunks" / "lock.mdb")  # reader slots need no new blocks: no SIGBUS
        assert lock.st_blocks * 512 >= lock.st_size
        cached_when_full = daemon.stats()["cache"]["entries"]

        ballast.unlink()  # space returns; the cache is tried again within its retry interval
        uncached = addrs[-50:]
        deadline = time.monotonic() + 60
        with nbsclient.connect(path, daemon.endpoint) as client:
            while state(daemon) != "ok":
                assert time.monotonic() < deadline, f"the cache did not recover: {state(daemon)}\n{log}"
                assert client.get_many(uncached) == {a: chunks[a] for a in uncached}
                time.sleep(0.5)
        assert "recovered: write works again" in daemon.log.read_text()
        assert daemon.stats()["cache"]["entries"] > cached_when_full


def test_client_fast_path_falls_back_to_requests(nbsd_daemon: Daemon) -> None:
    """The client cannot read the daemon's cache (its reader table is full): it asks the daemon instead."""
    path = nbsd_daemon.store_path("fast-path-faults")
    os.makedirs(path)
    writer = new_local_store(path)
    chunks = {bytes(writer.put(data)): data for data in (os.urandom(CHUNK) for _ in range(40))}
    assert writer.commit(Addr(next(iter(chunks))), writer.root())
    with nbsclient.connect(path, nbsd_daemon.endpoint) as client:
        assert client.get_many(chunks) == chunks  # the daemon caches them
        cache = client._cache
        assert cache is not None
        real = cache.env, cache.health
        faulty(cache, Clock(), logging.getLogger("fast-path-test")).read_error = READERS_FULL
        try:
            asked = nbsd_daemon.stats()["requests"].get(p.GET, 0)
            assert client.get_many(chunks) == chunks
            assert all(client.get(a) == data for a, data in chunks.items())
            assert cache.health.state.startswith("degraded: read failed: ReadersFullError")
            assert nbsd_daemon.stats()["requests"][p.GET] >= asked + 1 + len(chunks)
        finally:
            cache.env, cache.health = real
