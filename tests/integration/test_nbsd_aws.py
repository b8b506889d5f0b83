"""nbsd in front of S3 and DynamoDB (a moto server): many workers, one backend read, no leaked secrets."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

import nbsclient
from nbs.addr import Addr
from nbs.factory import open_store
from tests.conftest import AWSLocation
from tests.daemon_harness import Daemon
from tests.fault_proxy import FaultProxy
from tests.linked import check_store_history, read_while_writing, results, spawn, write_addrs

pytestmark = pytest.mark.timeout(600)


def populate(spec: str, count: int, size: int = 4096) -> list[Addr]:
    """A store of ``count`` chunks in tables of 256 (S3 objects) plus one small table (a DynamoDB item)."""
    store = open_store(spec, memtable_size=256 * size)
    addrs = [store.put(os.urandom(size - 8) + i.to_bytes(8, "big")) for i in range(count)]
    addrs.append(store.put(b"small table chunk " + os.urandom(8)))
    assert store.commit(addrs[-1], store.root())
    store.close()
    return addrs


def test_eight_workers_on_aws_stores_like_direct_access(nbsd_aws_daemon: Daemon, aws_location: AWSLocation,
                                                         tmp_path: Path) -> None:
    shared = f"aws://{aws_location.table}:{aws_location.bucket}/eight-{os.getpid()}-{time.time_ns()}"
    readonly = f"aws://{aws_location.table}:{aws_location.bucket}/eight-read-{os.getpid()}-{time.time_ns()}"
    direct_spec = readonly + f"?endpoint={aws_location.endpoint}"
    addrs = populate(direct_spec, 600)
    direct = open_store(direct_spec).get_many(addrs)
    landed = read_while_writing(nbsd_aws_daemon.endpoint, shared, readonly, addrs, direct, tmp_path / "addrs", 6)
    check_store_history(open_store(shared + f"?endpoint={aws_location.endpoint}"), landed, 24)


def _read_counts(proxy: FaultProxy, procs: list[subprocess.Popen[str]]) -> dict[str, int]:
    results(procs)
    counts = dict(proxy.operations)
    proxy.reset_counts()
    return counts


def data_reads(counts: dict[str, int]) -> int:
    return counts.get("GET range", 0) + counts.get("GetItem table", 0)


def test_cold_reads_are_shared_by_the_daemon(moto_server: object, aws_location: AWSLocation,
                                            tmp_path: Path) -> None:
    """Eight processes reading the same cold data through nbsd cost the backend what one process costs."""
    proxy = FaultProxy(aws_location.endpoint).start()
    try:
        with Daemon(extra=["--aws-endpoint", proxy.endpoint, "--aws-store", aws_location.pattern]) as daemon:
            figures = {}
            for readers in (1, 8):
                name = f"cold-{readers}-{time.time_ns()}"
                addrs = populate(f"aws://{aws_location.table}:{aws_location.bucket}/{name}"
                                 f"?endpoint={aws_location.endpoint}", 600)
                addr_file = write_addrs(tmp_path / name, addrs)
                spec = f"aws://{aws_location.table}:{aws_location.bucket}/{name}"
                proxy.reset_counts()
                start = str(time.time() + 2.0)
                procs = [spawn("read", spec, daemon.endpoint, addr_file, start, "1") for _ in range(readers)]
                figures[readers] = _read_counts(proxy, procs)
            direct = {}
            for readers in (1, 8):
                start = str(time.time() + 2.0)
                direct_spec = (f"aws://{aws_location.table}:{aws_location.bucket}/{name}?endpoint={proxy.endpoint}")
                procs = [spawn("read-direct", direct_spec, addr_file, start) for _ in range(readers)]
                direct[readers] = _read_counts(proxy, procs)
    finally:
        proxy.stop()
    assert data_reads(figures[1]) > 0
    assert data_reads(figures[8]) <= data_reads(figures[1])  # the daemon read the data once for everyone
    assert data_reads(direct[8]) >= 4 * data_reads(direct[1])  # without it each process reads it again


def test_aws_secrets_never_reach_the_log(moto_server: object, aws_location: AWSLocation) -> None:
    secret = "SENTINEL-SECRET-" + os.urandom(6).hex()
    with Daemon(extra=["--aws-endpoint", aws_location.endpoint, "--aws-store", aws_location.pattern,
                       "--log-level", "DEBUG"],
                env={"AWS_SECRET_ACCESS_KEY": secret}) as daemon:
        spec = f"aws://{aws_location.table}:{aws_location.bucket}/secret-{time.time_ns()}"
        with nbsclient.connect(spec, daemon.endpoint) as store:
            h = store.put(b"written with the sentinel credentials")
            assert store.commit(h, store.root())
            assert store.get(h) is not None
        with pytest.raises(nbsclient.ForbiddenError):
            nbsclient.connect(spec + "?endpoint=http://127.0.0.1:1", daemon.endpoint)
        with pytest.raises(nbsclient.ForbiddenError):
            nbsclient.connect(spec + "?profile=other", daemon.endpoint)
        daemon.stop()
        log = Path(daemon.log_path).read_text()
    assert secret not in log
    assert "testing" not in log.replace("testing-", "")  # nor the access key id
