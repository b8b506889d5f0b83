"""Ranged S3 reads (Go's s3_table_reader_test.go, NBS-FORMAT.md 14.15) over a fake S3."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ResponseStreamingError

from nbs.addr import Addr
from nbs.errors import AWSUnavailableError, CorruptTableError, TableNotFoundError
from nbs.fd_cache import FDCache
from nbs.forksafe import Semaphore
from nbs.fs_table_cache import FSTableCache
from nbs.io_pool import IOPool
from nbs.s3_objects import RetryPolicy, S3Objects, S3ReaderAt
from nbs.stats import Stats
from nbs.table_writer import build_table
from tests.helpers import TEST_CHUNKS
from tests.unit.aws_fakes import FakeBody, FakeS3, as_s3

TABLE = build_table((Addr.of(c), c) for c in TEST_CHUNKS)
FAST = RetryPolicy(attempts=3, min_delay=0.0001, max_delay=0.001)


class BrokenBody(FakeBody):
    def read(self) -> bytes:
        raise ResponseStreamingError(error=ConnectionResetError(104, "Connection reset by peer"))


class FlakyS3(FakeS3):
    """The first ``failures`` GETs of each key return a body that breaks off."""

    def __init__(self, failures: int = 1) -> None:
        super().__init__()
        self.failures = failures
        self.failed: dict[str, int] = {}

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        reply = super().get_object(**kwargs)
        key = kwargs["Key"]
        if self.failed.get(key, 0) < self.failures:
            self.failed[key] = self.failed.get(key, 0) + 1
            reply["Body"] = BrokenBody(b"")
        return reply


class ShortS3(FakeS3):
    """Claims more bytes than it sends, as a connection closed early would."""

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        reply = super().get_object(**kwargs)
        reply["Body"] = FakeBody(reply["Body"].data[:-1])
        return reply


def objects(s3: FakeS3, pool: IOPool, table_cache: FSTableCache | None = None) -> S3Objects:
    s3.objects[str(TABLE.name)] = TABLE.data
    return S3Objects(as_s3(s3), "bucket", pool, table_cache=table_cache, retry=FAST)


def test_tolerate_failing_reads(pool: IOPool) -> None:
    s3 = FlakyS3()
    reader = S3ReaderAt(objects(s3, pool), TABLE.name, Stats())
    assert reader.read_at(0, len(TABLE.data)) == TABLE.data
    assert s3.gets == 2


def test_failing_reads_give_up_with_a_typed_error(pool: IOPool) -> None:
    s3 = FlakyS3(failures=FAST.attempts)
    with pytest.raises(AWSUnavailableError) as err:
        S3ReaderAt(objects(s3, pool), TABLE.name, Stats()).read_at(0, 10)
    assert s3.gets == FAST.attempts
    assert isinstance(err.value.__cause__, ResponseStreamingError)


def test_truncated_bodies_are_retried(pool: IOPool) -> None:
    s3 = ShortS3()
    with pytest.raises(AWSUnavailableError):
        S3ReaderAt(objects(s3, pool), TABLE.name, Stats()).read_at(0, 10)
    assert s3.gets == FAST.attempts


def test_with_table_cache(pool: IOPool, tmp_path: Path) -> None:
    s3 = FakeS3()
    cache = FSTableCache(str(tmp_path), 2 * len(TABLE.data), FDCache(4))
    stats = Stats()
    reader = S3ReaderAt(objects(s3, pool, cache), TABLE.name, stats)
    assert reader.read_at(0, len(TABLE.data)) == TABLE.data
    assert s3.gets == 1 and stats.s3_read_latency.samples == 1
    cache.store(str(TABLE.name), lambda write: write(TABLE.data))
    assert reader.read_at(0, len(TABLE.data)) == TABLE.data
    assert s3.gets == 1 and stats.file_read_latency.samples == 1


def test_read_ranges_and_stats(pool: IOPool) -> None:
    s3 = FakeS3()
    stats = Stats()
    reader = S3ReaderAt(objects(s3, pool), TABLE.name, stats)
    ranges = [(0, 12), (12, 14), (26, 13)]
    assert reader.read_ranges(ranges) == [TABLE.data[o:o + n] for o, n in ranges]
    assert s3.gets == 3 and stats.s3_bytes_per_read.sum == 39


def test_read_tail_is_a_suffix_range(pool: IOPool) -> None:
    s3 = FakeS3()
    assert objects(s3, pool).read_tail(TABLE.name, 104, Stats()) == TABLE.data[-104:]
    with pytest.raises(CorruptTableError):
        objects(s3, pool).read_tail(TABLE.name, len(TABLE.data) + 1, Stats())


def test_missing_object(pool: IOPool) -> None:
    with pytest.raises(TableNotFoundError):
        objects(FakeS3(), pool).read_at(Addr.of(b"nothing"), 0, 10, Stats())


class ConcurrencyS3(FakeS3):
    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.peak = 0
        self.guard = threading.Lock()

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        with self.guard:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.05)
        with self.guard:
            self.active -= 1
        return super().get_object(**kwargs)


def test_rate_limit_bounds_concurrent_gets() -> None:
    pool = IOPool(8)
    s3 = ConcurrencyS3()
    s3.objects[str(TABLE.name)] = TABLE.data
    objects = S3Objects(as_s3(s3), "bucket", pool, rate_limit=Semaphore(2))
    ranges = [(i, 1) for i in range(8)]
    assert S3ReaderAt(objects, TABLE.name, Stats()).read_ranges(ranges) == [TABLE.data[i:i + 1] for i in range(8)]
    assert s3.peak == 2
    pool.shutdown()
