"""AWS stores against the moto server: many stores per bucket/table, conjoin, caches, specs, names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbs.addr import EMPTY_ADDR, Addr
from nbs.aws_factory import AWSStoreFactory, new_aws_store
from nbs.dynamo_manifest import manifest_item
from nbs.errors import InvalidStoreNameError, SpecError
from nbs.factory import open_store
from nbs.manifest import NOMS_VERSION, ManifestContents
from tests.aws_server import RequestCounter, unique_name
from tests.conftest import AWSLocation

# More than 64 chunks: such a table always goes to S3.
S3_TABLE_CHUNKS = 80


def factory(location: AWSLocation, tmp_path: Path, **kwargs: object) -> AWSStoreFactory:
    return AWSStoreFactory(location.server.session(), location.table, location.bucket, endpoint_url=location.endpoint,
                           io_threads=8, **kwargs)  # type: ignore[arg-type]


def test_many_stores_share_one_bucket_and_table(aws_location: AWSLocation) -> None:
    s3, ddb = aws_location.server.clients()
    names = [unique_name("many") for _ in range(4)]
    written: dict[str, list[Addr]] = {}
    for i, name in enumerate(names):
        store = new_aws_store(aws_location.table, name, aws_location.bucket, s3, ddb)
        chunks = [os.urandom(200) for _ in range(S3_TABLE_CHUNKS if i % 2 else 5)]
        written[name] = [store.put(c) for c in chunks]
        assert store.commit(written[name][0], EMPTY_ADDR)
    for name in names:
        store = new_aws_store(aws_location.table, name, aws_location.bucket, s3, ddb)
        assert store.root() == written[name][0]
        assert store.has_many(written[name]) == set()
        others = [a for other in names if other != name for a in written[other]]
        assert store.has_many(others) == set(others)
    for name in names:
        item = ddb.get_item(TableName=aws_location.table, Key={"db": {"S": name}}, ConsistentRead=True)["Item"]
        assert item["root"]["B"] == bytes(written[name][0])


def test_conjoin_through_commits(aws_location: AWSLocation, store_name: str) -> None:
    s3, ddb = aws_location.server.clients()
    store = new_aws_store(aws_location.table, store_name, aws_location.bucket, s3, ddb, max_tables=3)
    every: list[Addr] = []
    for i in range(7):
        every += [store.put(b"commit %d chunk %d" % (i, j)) for j in range(i + 1)]
        assert store.commit(every[-1], store.root())
        assert len(store.upstream.specs) <= 4
    assert store.stats().conjoin_latency.samples >= 2
    fresh = new_aws_store(aws_location.table, store_name, aws_location.bucket, s3, ddb)
    assert fresh.root() == every[-1] and fresh.count() >= len(every)
    assert len(fresh.get_many(every)) == len(every)
    s3_keys = {o["Key"] for o in s3.list_objects_v2(Bucket=aws_location.bucket).get("Contents", [])}
    conjoined = [s for s in fresh.upstream.specs if str(s.name) in s3_keys]  # conjoined tables always go to S3
    assert conjoined and sum(s.chunk_count for s in fresh.upstream.specs) == len(every)


def test_open_store_specs(aws_location: AWSLocation, store_name: str) -> None:
    store = open_store(aws_location.spec(store_name) + "&region=us-east-1")
    a = store.put(b"through a spec")
    assert store.commit(a, EMPTY_ADDR)
    noms_form = f"aws:{aws_location.table}/{aws_location.bucket}/{store_name}?endpoint={aws_location.endpoint}"
    assert open_store(noms_form).get(a) == b"through a spec"


def test_spec_endpoint_from_the_environment(aws_location: AWSLocation, store_name: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_location.endpoint)
    spec = f"aws://{aws_location.table}:{aws_location.bucket}/{store_name}"
    store = open_store(spec)
    chunks = [os.urandom(100) for _ in range(S3_TABLE_CHUNKS)]
    addrs = [store.put(c) for c in chunks]
    assert store.commit(addrs[0], EMPTY_ADDR)
    s3, _ = aws_location.server.clients()
    assert s3.list_objects_v2(Bucket=aws_location.bucket, Prefix=str(store.upstream.specs[0].name))["KeyCount"] == 1
    assert open_store(spec).get_many(addrs) == dict(zip(addrs, chunks))


@pytest.mark.parametrize("bad", ["", "*table", "*"])
def test_bad_store_names(aws_location: AWSLocation, tmp_path: Path, bad: str) -> None:
    s3, ddb = aws_location.server.clients()
    with pytest.raises(InvalidStoreNameError):
        new_aws_store(aws_location.table, bad, aws_location.bucket, s3, ddb)
    with factory(aws_location, tmp_path) as f, pytest.raises(InvalidStoreNameError):
        f.create_store(bad)
    with pytest.raises(SpecError):
        open_store(aws_location.spec(bad))


def test_factory_create_store_from_cache(aws_location: AWSLocation, tmp_path: Path, store_name: str) -> None:
    """Go's TestLocalStoreFactory, for AWS: a cached manifest wins over a clobbered item."""
    with factory(aws_location, tmp_path) as f:
        assert f.create_store_from_cache(store_name) is None
        store = f.create_store(store_name)
        h = store.put(b"\xff")
        assert store.commit(h, EMPTY_ADDR)
        _, ddb = aws_location.server.clients()
        clobbered = ManifestContents(NOMS_VERSION, Addr.of(b"jerk"), Addr.of(b"other root"), store.upstream.specs)
        ddb.put_item(TableName=aws_location.table, Item=manifest_item(store_name, clobbered))
        cached = f.create_store_from_cache(store_name)
        assert cached is not None and cached.root() == h
        assert f.create_store(store_name).root() == Addr.of(b"other root")


def test_table_cache_serves_reads_without_s3_gets(aws_location: AWSLocation, tmp_path: Path,
                                                  store_name: str) -> None:
    cache_dir = str(tmp_path / "tables")
    chunks = [os.urandom(500) for _ in range(S3_TABLE_CHUNKS)]
    with factory(aws_location, tmp_path, table_cache_size=1 << 30, table_cache_dir=cache_dir) as writer:
        store = writer.create_store(store_name)
        addrs = [store.put(c) for c in chunks]
        assert store.commit(addrs[0], EMPTY_ADDR)
        counter = RequestCounter(writer.s3)
        assert writer.create_store(store_name).get_many(addrs) == dict(zip(addrs, chunks))
        assert counter["GetObject"] == 0
    assert len(os.listdir(cache_dir)) == 1
    # Another factory on this host (a restarted daemon): no index cache entries, same table cache.
    with factory(aws_location, tmp_path, table_cache_size=1 << 30, table_cache_dir=cache_dir) as reader:
        counter = RequestCounter(reader.s3, reader.ddb)
        got = reader.create_store(store_name).get_many(addrs)
        assert got == dict(zip(addrs, chunks))
        assert counter["GetObject"] == 0 and counter["GetItem"] == 1  # the manifest only


def test_without_table_cache_reads_go_to_s3(aws_location: AWSLocation, tmp_path: Path, store_name: str) -> None:
    chunks = [os.urandom(500) for _ in range(S3_TABLE_CHUNKS)]
    with factory(aws_location, tmp_path, index_cache_size=0) as f:
        store = f.create_store(store_name)
        addrs = [store.put(c) for c in chunks]
        assert store.commit(addrs[0], EMPTY_ADDR)
        counter = RequestCounter(f.s3)
        assert f.create_store(store_name).get_many(addrs) == dict(zip(addrs, chunks))
        assert counter["GetObject"] == 2  # the index by a suffix range, then one coalesced read


def test_index_cache_is_shared_by_a_factorys_stores(aws_location: AWSLocation, tmp_path: Path,
                                                    store_name: str) -> None:
    with factory(aws_location, tmp_path) as f:
        store = f.create_store(store_name)
        addrs = [store.put(os.urandom(100)) for _ in range(S3_TABLE_CHUNKS)]
        assert store.commit(addrs[0], EMPTY_ADDR)
        counter = RequestCounter(f.s3, f.ddb)
        other = f.create_store(store_name)
        assert other.has_many(addrs) == set()
        assert counter["GetObject"] == 0 and counter["GetItem"] == 1


def test_small_tables_are_cached_in_memory(aws_location: AWSLocation, tmp_path: Path, store_name: str) -> None:
    with factory(aws_location, tmp_path) as f:
        store = f.create_store(store_name)
        addrs = [store.put(b"small %d" % i) for i in range(10)]
        assert store.commit(addrs[0], EMPTY_ADDR)
        counter = RequestCounter(f.ddb)
        assert len(f.create_store(store_name).get_many(addrs)) == 10
        assert counter["GetItem"] == 1  # the manifest; the table item came from the factory's cache
