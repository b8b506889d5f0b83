"""nbsd verifies the tables clients send on its chunk worker processes, and losing one loses nothing."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

import nbsclient
from nbs.addr import Addr
from nbs.chunk_workers import RESTART_DELAY_S
from nbs.factory import new_local_store
from nbsd.status import render
from tests.daemon_harness import Daemon
from tests.metrics_scrape import free_port, scrape, value

pytestmark = pytest.mark.timeout(300)
BATCH = 256  # chunks per worker batch: a table of several batches goes to the workers


def chunk_workers_of(daemon: Daemon) -> list[psutil.Process]:
    assert daemon.proc is not None
    return [p for p in psutil.Process(daemon.proc.pid).children() if "chunk_worker" in " ".join(p.cmdline())]


def write(daemon: Daemon, path: str, chunks: list[bytes]) -> None:
    with nbsclient.connect(path, daemon.endpoint) as store:
        addrs = store.put_many(chunks)
        assert store.commit(addrs[-1], store.root())


def test_tables_are_verified_by_workers_and_a_killed_worker_is_replaced() -> None:
    address = f"127.0.0.1:{free_port()}"
    with Daemon(extra=["--metrics", address], env={"NBS_CHUNK_WORKERS": "2"}) as daemon:
        path = daemon.store_path("workers")
        first = [os.urandom(900) + i.to_bytes(4, "big") for i in range(3 * BATCH)]
        write(daemon, path, first)
        workers = chunk_workers_of(daemon)
        assert len(workers) == 2
        scraped = scrape(address)
        assert value(scraped, "nbsd_chunk_workers") == 2 and value(scraped, "nbsd_chunk_worker_failures_total") == 0

        workers[0].send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while workers[0].status() != psutil.STATUS_ZOMBIE:  # the daemon's child: dead, not yet reaped
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = [os.urandom(900) + i.to_bytes(4, "big") for i in range(3 * BATCH)]
        write(daemon, path, second)  # the dead worker's batch is verified in the daemon's thread

        stats = daemon.stats()
        assert stats["chunk_workers"] == {"running": 1, "configured": 2, "failures": 1}
        assert "chunk workers: 1 running of 2, 1 failed" in render(stats)
        assert value(scrape(address), "nbsd_chunk_worker_failures_total") == 1
        assert f"chunk worker {workers[0].pid} failed" in daemon.log.read_text()

        time.sleep(RESTART_DELAY_S)  # after a failure the daemon starts no worker for a while (no crash loop)
        third = [os.urandom(900) + i.to_bytes(4, "big") for i in range(3 * BATCH)]
        write(daemon, path, third)  # the next table's batches start a worker in the dead one's place
        assert daemon.stats()["chunk_workers"] == {"running": 2, "configured": 2, "failures": 1}
        assert len(chunk_workers_of(daemon)) == 2 and workers[0].pid not in {p.pid for p in chunk_workers_of(daemon)}

        store = new_local_store(path)
        wanted = {Addr.of(c): c for c in first + second + third}
        assert store.get_many(list(wanted)) == wanted
        last = chunk_workers_of(daemon)
    _, alive = psutil.wait_procs(last, timeout=10)
    assert not alive  # the daemon's stop ended its workers: none outlives it
