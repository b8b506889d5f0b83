"""AWS faults and races: a commit lands whole or fails with nothing half-visible; no upload is orphaned."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nbs.addr import Addr
from nbs.aws_factory import aws_clients, new_aws_store
from nbs.errors import AWSError
from nbs.store import NomsBlockStore
from tests.aws_server import MotoServer
from tests.conftest import AWSLocation
from tests.daemon_harness import Daemon
from tests.fault_proxy import FaultProxy, dynamo_op, s3_object_write
from tests.linked import LiveOutput, check_killed_history, check_store_history, results, spawn, store_chain

pytestmark = pytest.mark.timeout(600)
FOREVER = 1000  # more failures than botocore's retries
IMPATIENT = 3  # attempts per call, so a lasting fault fails fast


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_server.endpoint).start()
    yield proxy
    proxy.stop()


def store_via(endpoint: str, location: AWSLocation, name: str) -> NomsBlockStore:
    s3, ddb = aws_clients(location.server.session(), endpoint, retry_attempts=IMPATIENT)
    return new_aws_store(location.table, name, location.bucket, s3, ddb)


def uploads_in_progress(location: AWSLocation) -> list[object]:
    s3, _ = location.server.clients()
    return list(s3.list_multipart_uploads(Bucket=location.bucket).get("Uploads", []))


@pytest.mark.parametrize(("fault", "chunks"), [("s3-internal-error", 100), ("s3-slow-down", 200)])
def test_failing_uploads_fail_the_commit_whole(proxy: FaultProxy, aws_location: AWSLocation, store_name: str,
                                              fault: str, chunks: int) -> None:
    """One PutObject (6.4 MiB) or a two-part upload (12.8 MiB) that keeps failing."""
    store = store_via(proxy.endpoint, aws_location, store_name)
    first = store.put(b"first commit")
    assert store.commit(first, store.root())
    big = [store.put(os.urandom(64 << 10)) for _ in range(chunks)]
    proxy.inject(fault, s3_object_write, times=FOREVER)
    with pytest.raises(AWSError):
        store.commit(big[0], first)
    reader = store_via(aws_location.endpoint, aws_location, store_name)
    assert reader.root() == first  # nothing half-visible
    assert reader.has_many(big) == set(big)
    assert uploads_in_progress(aws_location) == []  # the failed upload was aborted
    proxy.faults.clear()
    assert store.commit(big[0], first)  # the same pending table is persisted again, now successfully
    reader.rebase()
    assert reader.root() == big[0] and reader.get_many(big[:5]) == store.get_many(big[:5])
    assert uploads_in_progress(aws_location) == []


def test_failing_manifest_writes_fail_the_commit(proxy: FaultProxy, aws_location: AWSLocation,
                                                 store_name: str) -> None:
    store = store_via(proxy.endpoint, aws_location, store_name)
    h = store.put(b"blocked by throttling")
    proxy.inject("dynamo-throttled", dynamo_op("PutItem"), times=FOREVER)
    with pytest.raises(AWSError):
        store.commit(h, store.root())
    reader = store_via(aws_location.endpoint, aws_location, store_name)
    assert reader.root() == Addr(bytes(20)) and not reader.has(h)
    proxy.faults.clear()
    assert store.commit(h, store.root())
    reader.rebase()
    assert reader.root() == h and reader.get(h) == b"blocked by throttling"


@pytest.mark.parametrize("through", ["direct", "nbsd"])
def test_eight_writers_fifty_commits_each_on_aws(aws_location: AWSLocation, store_name: str, through: str) -> None:
    writers, commits = 8, 50
    s3, ddb = aws_location.server.clients()
    if through == "direct":
        where = [aws_location.endpoint, aws_location.table, aws_location.bucket, store_name]
        start = str(time.time() + 3)
        procs = [spawn("aws-commit", *where, str(w), str(commits), "192", start) for w in range(writers)]
        landed = [c for lines in results(procs) for c in lines]
    else:
        with Daemon(extra=["--aws-endpoint", aws_location.endpoint, "--aws-store", aws_location.pattern]) as daemon:
            spec = f"aws://{aws_location.table}:{aws_location.bucket}/{store_name}"
            procs = [spawn("commit", spec, daemon.endpoint, str(w), str(commits)) for w in range(writers)]
            landed = [c for lines in results(procs) for c in lines]
    check_store_history(new_aws_store(aws_location.table, store_name, aws_location.bucket, s3, ddb),
                        landed, writers * commits)


def test_writers_killed_mid_commit_leave_a_consistent_aws_store(aws_location: AWSLocation, store_name: str) -> None:
    s3, ddb = aws_location.server.clients()
    where = [aws_location.endpoint, aws_location.table, aws_location.bucket, store_name]
    outputs: list[list[dict[str, Any]]] = []
    for round_ in range(6):
        writers = LiveOutput([spawn("aws-commit", *where, str(round_ * 10 + w), "1000", "6", "0") for w in range(3)])
        outputs += writers.kill_inside_commits(after_landed=1 + round_ % 3, timeout=300)
        store = new_aws_store(aws_location.table, store_name, aws_location.bucket, s3, ddb)
        for spec in store.upstream.specs:  # every table the manifest names is whole and readable
            assert len(list(store.table_set.rebase([spec]).upstream[0].extract())) == spec.chunk_count
        inside = check_killed_history(store_chain(store), outputs)
    assert inside >= len(outputs) // 2  # most kills provably landed inside a commit
