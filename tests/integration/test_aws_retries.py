"""Retries over real HTTP: throttling, 5xx answers, resets, truncated bodies and timeouts injected in front of moto."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from nbs.addr import EMPTY_ADDR, Addr
from nbs.aws_factory import aws_clients, new_aws_store
from nbs.store import NomsBlockStore
from tests.aws_server import MotoServer, RequestCounter
from tests.conftest import AWSLocation
from tests.fault_proxy import (RESET, STALL, STALL_SECONDS, TRUNCATED, FaultProxy, dynamo_op, s3_object_write,
                               s3_ranged_get)

CHUNKS = [os.urandom(2000) for _ in range(100)]  # one S3 table: more than 64 chunks


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_server.endpoint).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def written(aws_location: AWSLocation, store_name: str) -> list[Addr]:
    """A committed store with one S3 table, written without the proxy."""
    s3, ddb = aws_location.server.clients()
    store = new_aws_store(aws_location.table, store_name, aws_location.bucket, s3, ddb)
    addrs = [store.put(c) for c in CHUNKS]
    assert store.commit(addrs[0], EMPTY_ADDR)
    return addrs


def through(proxy: FaultProxy, location: AWSLocation, name: str) -> tuple[NomsBlockStore, RequestCounter]:
    s3, ddb = aws_clients(location.server.session(), proxy.endpoint, read_timeout=STALL_SECONDS / 2)
    counter = RequestCounter(s3, ddb)
    return new_aws_store(location.table, name, location.bucket, s3, ddb), counter


@pytest.mark.parametrize("fault", [RESET, TRUNCATED, STALL, "s3-slow-down", "s3-internal-error"])
def test_failed_ranged_get_is_repeated(proxy: FaultProxy, aws_location: AWSLocation, store_name: str,
                                       written: list[Addr], fault: str, caplog: pytest.LogCaptureFixture) -> None:
    """botocore repeats throttled, failed and timed-out requests; the reader repeats GETs whose body broke off."""
    caplog.set_level(logging.INFO, "nbs.s3_objects")
    store, counter = through(proxy, aws_location, store_name)  # the index is in the process's index cache
    proxy.inject(fault, s3_ranged_get, times=2)
    assert store.get_many(written) == dict(zip(written, CHUNKS))
    assert proxy.injected == [fault, fault]
    assert counter["GetObject"] == 1 + 2  # one coalesced read, repeated twice
    broken_bodies = [r for r in caplog.records if "body broke off" in r.getMessage()]
    assert len(broken_bodies) == (2 if fault in (RESET, TRUNCATED) else 0)


def test_throttled_manifest_reads_and_writes_are_retried(proxy: FaultProxy, aws_location: AWSLocation,
                                                         store_name: str, written: list[Addr]) -> None:
    proxy.inject("dynamo-throttled", dynamo_op("GetItem"), times=2)
    store, counter = through(proxy, aws_location, store_name)
    assert store.root() == written[0]
    proxy.inject("dynamo-throttled", dynamo_op("PutItem"))
    assert store.commit(Addr.of(b"new root"), store.root())
    assert proxy.injected == ["dynamo-throttled"] * 3
    assert counter["GetItem"] == 3 and counter["PutItem"] == 2


@pytest.mark.parametrize("fault", [TRUNCATED, STALL])
def test_broken_manifest_reads_are_retried(proxy: FaultProxy, aws_location: AWSLocation, store_name: str,
                                           written: list[Addr], fault: str) -> None:
    proxy.inject(fault, dynamo_op("GetItem"), times=2)
    store, counter = through(proxy, aws_location, store_name)
    assert store.root() == written[0]
    assert proxy.injected == [fault, fault] and counter["GetItem"] == 3


def test_manifest_write_that_landed_but_timed_out_is_reported_as_landed(
        proxy: FaultProxy, aws_location: AWSLocation, store_name: str, written: list[Addr]) -> None:
    """The put took effect, its answer never came: the retry's failed condition finds our own manifest."""
    store, counter = through(proxy, aws_location, store_name)
    proxy.inject(STALL, dynamo_op("PutItem"))
    new_root = store.put(b"a root whose commit times out")
    assert store.commit(new_root, written[0])
    assert proxy.injected == [STALL] and counter["PutItem"] == 1 + 2  # the new table's item, the manifest twice
    s3, ddb = aws_location.server.clients()
    reader = new_aws_store(aws_location.table, store_name, aws_location.bucket, s3, ddb)
    assert reader.root() == new_root and reader.get(new_root) == b"a root whose commit times out"


@pytest.mark.parametrize(("chunks", "requests"), [(100, {"PutObject": 2}), (200, {"UploadPart": 3})])
def test_timed_out_table_upload_is_retried(proxy: FaultProxy, aws_location: AWSLocation, store_name: str,
                                           chunks: int, requests: dict[str, int]) -> None:
    """A 6.4 MiB table is one part, stored with one PutObject; a 12.8 MiB table is uploaded in two parts."""
    store, counter = through(proxy, aws_location, store_name)
    big = [store.put(os.urandom(64 << 10)) for _ in range(chunks)]
    proxy.inject(STALL, s3_object_write)
    assert store.commit(big[0], EMPTY_ADDR)
    assert proxy.injected == [STALL] and {op: counter[op] for op in requests} == requests
    s3, ddb = aws_location.server.clients()
    assert s3.list_multipart_uploads(Bucket=aws_location.bucket).get("Uploads", []) == []
    reader = new_aws_store(aws_location.table, store_name, aws_location.bucket, s3, ddb)
    assert reader.get_many(big) == store.get_many(big)
