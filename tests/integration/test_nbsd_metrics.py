"""nbsd's Prometheus endpoint, scraped over HTTP from real daemons after workloads of known size."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import nbsclient
from nbs.addr import Addr
from nbs.errors import DynamoTableNotFoundError
from nbs.factory import new_local_store, open_store
from tests.conftest import AWSLocation
from tests.daemon_harness import ROOT, Daemon
from tests.fault_proxy import FaultProxy
from tests.metrics_scrape import free_port, moved, scrape, total, value

pytestmark = pytest.mark.timeout(300)
CHUNKS = 20


def _populate_local(path: str) -> list[Addr]:
    os.makedirs(path)
    store = new_local_store(path)
    addrs = [store.put(os.urandom(1000) + bytes([i])) for i in range(CHUNKS)]
    assert store.commit(addrs[-1], store.root())
    return addrs


def test_counters_move_by_the_workload_on_a_local_store() -> None:
    address = f"127.0.0.1:{free_port()}"
    with Daemon(extra=["--metrics", address]) as daemon:
        path = daemon.store_path("metrics")
        addrs = _populate_local(path)
        before = scrape(address)
        with nbsclient.connect(path, daemon.endpoint, fast_path=False) as store:
            assert len(store.get_many(addrs)) == CHUNKS  # one request: every chunk a miss, fetched
            daemon.stats()  # answered once the cache fill behind that reply is done
            assert len(store.get_many(addrs)) == CHUNKS  # one request: every chunk a hit in the daemon's cache
        with nbsclient.connect(path, daemon.endpoint) as store:
            assert all(store.get(a) is not None for a in addrs)  # the client's own fast path, reported at close
        with pytest.raises(nbsclient.ForbiddenError):
            nbsclient.connect("/etc", daemon.endpoint)
        with nbsclient.connect(path, daemon.endpoint) as store:
            store.put_many([os.urandom(1000)])  # a part in part memory, mapped while the session is open
            assert value(scrape(address), "nbsd_part_memories") == 1
        with nbsclient.connect(path, daemon.endpoint, part_memory=False) as store:
            store.put_many([os.urandom(1000)])  # a part through the socket
        after = scrape(address)

    assert moved(before, after, "nbsd_requests_total", op="get") == 2
    assert moved(before, after, "nbsd_requests_total", op="open") == 5
    assert moved(before, after, "nbsd_requests_total", op="hello") == 5
    assert moved(before, after, "nbsd_requests_total", op="report") == 1
    assert moved(before, after, "nbsd_request_duration_seconds_count", op="get") == 2
    assert value(after, "nbsd_request_duration_seconds_bucket", op="get", le="+Inf") >= 2
    assert moved(before, after, "nbsd_cache_misses_total") == CHUNKS
    assert moved(before, after, "nbsd_cache_hits_total", reader="daemon") == CHUNKS
    assert moved(before, after, "nbsd_cache_hits_total", reader="client") == CHUNKS
    assert moved(before, after, "nbsd_cache_inserts_total") == CHUNKS
    assert moved(before, after, "nbsd_cache_fills_total", how="deferred") == 1  # the one get that fetched
    assert moved(before, after, "nbsd_cache_fills_total", how="inline") == 0
    assert value(after, "nbsd_cache_fill_pending_bytes") == 0
    assert moved(before, after, "nbsd_errors_total", kind="Forbidden") == 1
    assert value(after, "nbsd_cache_entries") == CHUNKS and value(after, "nbsd_cache_bytes") > CHUNKS * 1000
    assert value(after, "nbsd_cache_budget_bytes") == 256 << 20 and value(after, "nbsd_cache_degraded") == 0
    assert value(after, "nbsd_cache_evictions_total") == 0 and value(after, "nbsd_cache_corrupt_total") == 0
    assert value(after, "nbsd_sessions") == 0  # every client closed its session
    assert value(after, "nbsd_open_files") >= 1 and value(after, "nbsd_open_files_budget") == 64 - 8 - 16
    assert value(after, "nbsd_index_cache_bytes") > 0
    assert value(after, "process_open_fds") > 0 and value(after, "process_resident_memory_bytes") > 0
    assert total(after, "nbsd_build_info") == 1
    assert moved(before, after, "nbsd_table_chunk_parts_total", via="shared_memory") == 1
    assert moved(before, after, "nbsd_table_chunk_parts_total", via="socket") == 1
    assert value(after, "nbsd_part_memories") == 0  # unmapped with its session
    assert total(after, "nbsd_backend_requests_total") == 0  # a local store: no AWS


def test_backend_calls_match_what_reached_the_aws_server(moto_server: object, aws_location: AWSLocation) -> None:
    """Every S3 and DynamoDB call the daemon makes is counted once, as the proxy in front of moto sees it."""
    proxy = FaultProxy(aws_location.endpoint).start()
    address = f"127.0.0.1:{free_port()}"
    name = f"metrics-{os.getpid()}-{time.time_ns()}"
    spec = f"aws://{aws_location.table}:{aws_location.bucket}/{name}"
    direct = open_store(aws_location.spec(name), memtable_size=1 << 20)
    addrs = [direct.put(os.urandom(4000) + i.to_bytes(4, "big")) for i in range(200)]  # a table too big for an item
    assert direct.commit(addrs[-1], direct.root())
    direct.close()
    try:
        with Daemon(extra=["--aws-endpoint", proxy.endpoint, "--aws-store", "*", "--metrics", address]) as daemon:
            proxy.reset_counts()
            before = scrape(address)
            with nbsclient.connect(spec, daemon.endpoint, fast_path=False) as store:
                assert len(store.get_many(addrs)) == len(addrs)
                chunk = store.put(b"written through the daemon")
                assert store.commit(chunk, store.root())
            with pytest.raises(DynamoTableNotFoundError):
                nbsclient.connect(f"aws://no-such-table-{os.getpid()}:{aws_location.bucket}/x", daemon.endpoint)
            after = scrape(address)
            seen = dict(proxy.operations)
    finally:
        proxy.stop()

    s3_seen = sum(count for operation, count in seen.items() if operation.split(" ")[0] in ("GET", "PUT", "POST",
                                                                                           "HEAD", "DELETE"))
    assert s3_seen > 0
    assert total(after, "nbsd_backend_requests_total", service="s3") - total(
        before, "nbsd_backend_requests_total", service="s3") == s3_seen
    assert moved(before, after, "nbsd_backend_requests_total", service="s3", operation="GetObject") == (
        seen.get("GET range", 0) + seen.get("GET", 0))
    assert moved(before, after, "nbsd_backend_requests_total", service="dynamodb", operation="GetItem") == (
        seen.get("GetItem manifest", 0) + seen.get("GetItem table", 0))
    assert moved(before, after, "nbsd_backend_requests_total", service="dynamodb", operation="PutItem") == (
        seen.get("PutItem", 0)) >= 1  # at least the manifest of the commit
    assert moved(before, after, "nbsd_backend_errors_total", service="dynamodb", operation="GetItem",
                 code="ResourceNotFoundException") == 1
    assert total(after, "nbsd_backend_errors_total") - total(before, "nbsd_backend_errors_total") == 1


def test_metrics_listen_on_loopback_only_unless_allowed(tmp_path: object) -> None:
    proc = subprocess.run([sys.executable, "-m", "nbsd", "serve", "--socket", "/tmp/nbsd-metrics-refused.sock",
                           "--metrics", "0.0.0.0:9464"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("nbsd: config: metrics 0.0.0.0:9464 is not a loopback address"), proc.stderr
    assert "metrics_allow_remote" in proc.stderr


def test_metrics_port_in_use_stops_start_up(tmp_path: object) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(extra=["--metrics", f"127.0.0.1:{port}"])
        try:
            proc = subprocess.run([sys.executable, "-m", "nbsd", "serve", *daemon.args], cwd=ROOT,
                                  capture_output=True, text=True, timeout=60)
        finally:
            daemon.close()
    assert proc.returncode == 1
    assert proc.stderr == f"nbsd: cannot start: cannot serve metrics on 127.0.0.1:{port}: Address already in use\n"
