"""Multipart uploads and server-side conjoin on the moto server, with tables above 5 MiB.

S3's real rule applies (moto enforces it): every part but the last is at
least 5 MiB.  Only ``part_max`` is lowered (to 10 MiB), so an 11 MiB source
is split into two ranged UploadPartCopy parts without a 65 MiB table.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from nbs.addr import Addr
from nbs.aws_factory import aws_clients, new_aws_store
from nbs.aws_table_persister import AWSLimits, AWSTablePersister
from nbs.chunk_source import ChunkSource
from nbs.dynamo_table_store import DynamoTableStore
from nbs.errors import AWSError
from nbs.io_pool import IOPool
from nbs.s3_objects import S3Objects
from nbs.stats import Stats
from nbs.table_persister import plan_conjoin
from tests.aws_server import MotoServer, RequestCounter
from tests.helpers import memtable_of

MIB = 1 << 20
CHUNK = 4096
LIMITS = AWSLimits(part_max=10 * MIB)


@pytest.fixture
def pool() -> Iterator[IOPool]:
    pool = IOPool(8)
    yield pool
    pool.shutdown()


@pytest.fixture
def where(moto_server: MotoServer) -> tuple[Any, Any, str, str]:
    s3, ddb = moto_server.clients()
    return s3, ddb, moto_server.create_table(), moto_server.create_bucket()


def persister(where: tuple[Any, Any, str, str], pool: IOPool, limits: AWSLimits = LIMITS) -> AWSTablePersister:
    s3, ddb, table, bucket = where
    return AWSTablePersister(S3Objects(s3, bucket, pool), DynamoTableStore(ddb, table), limits=limits)


def random_chunks(total: int) -> list[bytes]:
    return [os.urandom(CHUNK) for _ in range(total // CHUNK)]


def persist(p: AWSTablePersister, chunks: list[bytes]) -> ChunkSource:
    return p.persist(memtable_of(chunks, size=64 * MIB), None, Stats())


def object_bytes(where: tuple[Any, Any, str, str], name: Addr) -> tuple[bytes, str]:
    s3, _, _, bucket = where
    reply = s3.get_object(Bucket=bucket, Key=str(name))
    return reply["Body"].read(), reply["ETag"]


def test_multipart_upload_and_conjoin(where: tuple[Any, Any, str, str], pool: IOPool) -> None:
    p = persister(where, pool)
    big, mid, tiny, small = (random_chunks(11 * MIB), random_chunks(6 * MIB), [b"t1", b"t2"],
                             random_chunks(MIB))
    sources = [persist(p, chunks) for chunks in (big, mid, tiny, small)]
    for source in (sources[0], sources[1], sources[3]):
        data, etag = object_bytes(where, source.name)
        assert len(data) == source.index().table_size and data[-8:] == bytes.fromhex("ffb5d8c22463ee50")
        parts = len(data) // (5 * MIB)  # 11 MiB: two parts, the last taking the remainder
        if parts > 1:
            assert etag.strip('"').endswith(f"-{parts}")
        else:  # one part: a plain PutObject, whose ETag is the MD5 of the object
            assert etag.strip('"') == hashlib.md5(data).hexdigest()
    s3, ddb, table, _ = where
    assert "Item" in ddb.get_item(TableName=table, Key={"db": {"S": f"*{sources[2].name}"}})

    counter = RequestCounter(s3)
    plan = plan_conjoin(sources)
    conjoined = p.conjoin_all(sources, Stats())
    assert counter["UploadPartCopy"] == 3 and counter["UploadPart"] == 1  # big split in two, mid whole
    data, etag = object_bytes(where, conjoined.name)
    assert etag.strip('"').endswith("-4")
    assert data == b"".join(s.source.read_at(0, s.data_len) for s in plan.sources) + plan.merged_index

    fresh = persister(where, pool).open(conjoined.name, conjoined.count(), Stats())
    every = [Addr.of(c) for chunks in (big, mid, tiny, small) for c in chunks]
    found: dict[bytes, bytes] = {}
    assert fresh.get_many(every, found) == []
    assert len(found) == len(every) and all(Addr.of(v) == k for k, v in found.items())
    assert s3.list_multipart_uploads(Bucket=where[3]).get("Uploads", []) == []


def test_failed_upload_is_aborted(where: tuple[Any, Any, str, str], pool: IOPool,
                                  moto_server: MotoServer) -> None:
    s3, _ = aws_clients(moto_server.session(), moto_server.endpoint)  # a private client to inject a failure into
    _, ddb, table, bucket = where
    calls = []

    def fail_second_part(params: dict[str, Any], **kwargs: Any) -> None:
        calls.append(params["PartNumber"])
        if params["PartNumber"] == 2:
            raise RuntimeError("injected failure of part 2")

    s3.meta.events.register("before-parameter-build.s3.UploadPart", fail_second_part)
    p = persister((s3, ddb, table, bucket), pool)
    with pytest.raises(RuntimeError):
        persist(p, random_chunks(11 * MIB))
    assert sorted(calls) == [1, 2]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_missing_source_fails_the_conjoin_without_leftovers(where: tuple[Any, Any, str, str],
                                                            pool: IOPool) -> None:
    p = persister(where, pool)
    sources = [persist(p, random_chunks(6 * MIB)), persist(p, random_chunks(6 * MIB))]
    s3, _, _, bucket = where
    s3.delete_object(Bucket=bucket, Key=str(sources[0].name))
    with pytest.raises(AWSError):
        p.conjoin_all(sources, Stats())
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_store_conjoins_big_tables(where: tuple[Any, Any, str, str]) -> None:
    """A store over its table limit conjoins server-side; the swap is a normal optimistic update."""
    s3, ddb, table, bucket = where
    store = new_aws_store(table, "big", bucket, s3, ddb, 6 * MIB, max_tables=2)
    every: list[Addr] = []
    for _ in range(3):
        every += [store.put(c) for c in random_chunks(5 * MIB + CHUNK)]
        assert store.commit(every[-1], store.root())
    assert store.stats().conjoin_latency.samples == 1 and len(store.upstream.specs) == 2
    other = new_aws_store(table, "big", bucket, s3, ddb)
    assert other.root() == every[-1]
    found = other.get_many(every)
    assert len(found) == len(every) and all(Addr.of(v) == k for k, v in found.items())
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert other.count() == len(every)
