"""``nbs gc`` of an AWS bucket on the moto server: stores share it, only orphans go, writers lose nothing."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import pytest

from nbs.addr import Addr
from nbs.admin.gc_aws import MARK_ATTR, collect_aws
from nbs.admin.gc_state import S3_STATE_PREFIX
from nbs.admin.location import AWSLocation as AWSLocationSpec
from nbs.admin.location import parse_location
from nbs.aws_factory import new_aws_store
from nbs.noms.datas import Database
from nbs.noms.values import String, Struct
from nbs.store import NomsBlockStore
from tests.aws_server import MotoServer
from tests.conftest import AWSLocation
from tests.linked import check_store_history, results, spawn
from tests.maintenance import commit_blobs, live_chunks, nbs, nbs_process, silent_progress


@dataclass
class Bucket:
    """A fresh DynamoDB table and S3 bucket: gc works on all of it."""

    location: AWSLocation

    @property
    def spec(self) -> str:
        return f"aws://{self.location.table}:{self.location.bucket}?endpoint={self.location.endpoint}"

    def clients(self) -> tuple[Any, Any]:
        return self.location.server.clients()

    def store(self, name: str, max_tables: int = 192) -> NomsBlockStore:
        s3, ddb = self.clients()
        return new_aws_store(self.location.table, name, self.location.bucket, s3, ddb, max_tables=max_tables)

    def objects(self) -> dict[str, bytes]:
        s3, _ = self.clients()
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=self.location.bucket).get("Contents", [])]
        return {k: s3.get_object(Bucket=self.location.bucket, Key=k)["Body"].read() for k in keys}

    def items(self) -> dict[str, dict[str, Any]]:
        _, ddb = self.clients()
        return {i["db"]["S"]: i for i in ddb.scan(TableName=self.location.table, ConsistentRead=True)["Items"]}

    def uploads(self) -> set[tuple[str, str]]:
        s3, _ = self.clients()
        found = s3.list_multipart_uploads(Bucket=self.location.bucket).get("Uploads", [])
        return {(u["Key"], u["UploadId"]) for u in found}

    def live(self) -> set[str]:
        return {str(s.name) for name, item in self.items().items() if not name.startswith("*")
                for s in self.store(name).upstream.specs}


@pytest.fixture
def bucket(moto_server: MotoServer) -> Bucket:
    return Bucket(AWSLocation(moto_server, moto_server.create_table(), moto_server.create_bucket()))


def tables(bucket: Bucket) -> tuple[set[str], set[str]]:
    """(table objects, table items) by table name."""
    objects = {k for k in bucket.objects() if Addr.maybe_parse(k)}
    items = {k[1:] for k in bucket.items() if k.startswith("*") and Addr.maybe_parse(k[1:])}
    return objects, items


def shared_start(store: NomsBlockStore) -> None:
    """The same first commit in every store: the same chunks, so the same table (one DynamoDB item)."""
    Database(store).commit("blobs", String("shared start"), meta=Struct("", []))


def two_stores(bucket: Bucket) -> tuple[NomsBlockStore, NomsBlockStore]:
    """Store one conjoins away the table both stores started with; store two still names it."""
    one, two = bucket.store("one", max_tables=3), bucket.store("two")
    shared_start(one)
    shared_start(two)
    commit_blobs(one, 6, size=3000)
    commit_blobs(two, 2, size=3000)
    return one, two


def add_bystanders(bucket: Bucket) -> tuple[dict[str, bytes], str]:
    """Objects, an item and an upload gc must leave alone; returns the objects and a stale table upload's key."""
    s3, ddb = bucket.clients()
    objects = {"notes/readme.txt": b"mine", "a" * 31: b"not a table name"}
    for key, data in objects.items():
        s3.put_object(Bucket=bucket.location.bucket, Key=key, Body=data)
    ddb.put_item(TableName=bucket.location.table, Item={"db": {"S": "*notatable"}, "data": {"B": b"x"}})
    s3.create_multipart_upload(Bucket=bucket.location.bucket, Key="videos/big.mp4")
    stale = "v" * 32
    s3.create_multipart_upload(Bucket=bucket.location.bucket, Key=stale)
    return objects, stale


def test_two_stores_sharing_a_bucket_lose_only_orphans(bucket: Bucket) -> None:
    one, two = two_stores(bucket)
    roots = {"one": one.root(), "two": two.root()}
    live = bucket.live()
    objects, items = tables(bucket)
    orphan_objects, orphan_items = objects - live, items - live
    assert orphan_objects and orphan_items and live & objects and live & items
    shared = {str(s.name) for s in two.upstream.specs} - {str(s.name) for s in one.upstream.specs}
    assert shared & items  # the table both stores started with: one conjoined it away, two names it
    _, stale_upload = add_bystanders(bucket)
    before = bucket.objects()
    live_items = {k: v for k, v in bucket.items().items() if not k.startswith("*") or k[1:] in live}
    result = nbs("gc", bucket.spec, "--min-age", "0s", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    deleted = {(g["kind"], g["name"]) for g in report["deleted"]}
    assert deleted == ({("s3 object", n) for n in orphan_objects} | {("dynamodb item", n) for n in orphan_items}
                       | {("upload", stale_upload)})
    assert report["freed_bytes"] == sum(len(before[n]) for n in orphan_objects) + sum(
        g["bytes"] for g in report["deleted"] if g["kind"] == "dynamodb item")
    after = bucket.objects()
    state = f"{S3_STATE_PREFIX}{bucket.location.table}.json"
    assert set(after) == (set(before) - orphan_objects) | {state}
    assert {k: after[k] for k in before if k not in orphan_objects} == {
        k: v for k, v in before.items() if k not in orphan_objects}
    assert bucket.items() == {**live_items, "*notatable": {"db": {"S": "*notatable"}, "data": {"B": b"x"}}}
    assert {key for key, _ in bucket.uploads()} == {"videos/big.mp4"}
    for name in ("one", "two"):  # a fresh process reads every chunk of each store and checks its address
        assert bucket.store(name).root() == roots[name]
        verified = nbs_process("verify", bucket.location.spec(name), "--reachable")
        assert verified.code == 0 and verified.lines[-1].endswith(": OK"), verified.out + verified.err


def test_dry_run_and_the_default_min_age_delete_nothing(bucket: Bucket) -> None:
    two_stores(bucket)
    live = bucket.live()
    objects, items = tables(bucket)
    before_objects, before_items = bucket.objects(), bucket.items()
    dry = nbs("gc", bucket.spec, "--min-age", "0s", "--dry-run")
    assert dry.code == 0 and dry.err == ""
    expected = ({f"would delete s3 object {n} ({len(before_objects[n])} bytes)" for n in objects - live}
                | {f"would delete dynamodb item {n} ({len(before_items['*' + n]['data']['B'])} bytes)"
                   for n in items - live})
    assert set(dry.lines[:-1]) == expected and len(dry.lines) == len(expected) + 1
    assert (bucket.objects(), bucket.items()) == (before_objects, before_items)  # no mark, no state either
    default = nbs("gc", bucket.spec)
    assert default.code == 0
    assert default.lines == [f"aws://{bucket.location.table}:{bucket.location.bucket}: deleted 0, freeing 0 B; "
                             f"{len(expected)} unreferenced, not yet old enough for --min-age 24h; "
                             f"{len(live)} live tables"]
    assert tables(bucket) == (objects, items)
    marked = {k[1:] for k, item in bucket.items().items() if MARK_ATTR in item}
    assert marked == items - live


def test_orphans_go_a_min_age_after_first_seen_and_a_rewritten_item_waits(bucket: Bucket) -> None:
    """Objects written long enough ago go on the second run; items carry no time, so the first run marks
    them, the second counts them old enough and the third deletes them, unless a writer stored one again."""
    two_stores(bucket)
    live = bucket.live()
    objects, items = tables(bucket)
    orphan_objects, orphan_items = objects - live, items - live
    rewritten = sorted(orphan_items)[0]
    _, ddb = bucket.clients()
    time.sleep(1.1)  # the objects are at least a second old now

    def gc() -> set[str]:
        report = nbs("gc", bucket.spec, "--min-age", "1s", "--json")
        assert report.code == 0, report.err
        return {g["name"] for g in json.loads(report.out)["deleted"]}

    assert gc() == set()  # objects first seen, items marked
    time.sleep(1.1)
    assert gc() == orphan_objects  # items first seen (marked a second ago)
    item = bucket.items()["*" + rewritten]
    ddb.put_item(TableName=bucket.location.table, Item={"db": item["db"], "data": item["data"]})
    time.sleep(1.1)
    assert gc() == orphan_items - {rewritten}
    assert tables(bucket) == (objects - orphan_objects, (items - orphan_items) | {rewritten})


def test_reader_with_a_stale_view_rebases_after_gc(bucket: Bucket) -> None:
    commit_blobs(bucket.store("db", max_tables=3), 3)
    reader = bucket.store("db")
    wanted = live_chunks(reader)
    commit_blobs(bucket.store("db", max_tables=1), 1)
    assert nbs("gc", bucket.spec, "--min-age", "0s").code == 0
    assert not {str(s.name) for s in reader.upstream.specs} & set().union(*tables(bucket))
    found = reader.get_many(wanted)
    assert len(found) == len(wanted) and all(Addr.of(data) == a for a, data in found.items())
    assert reader.root() == bucket.store("db").root()


def test_concurrent_writers_and_repeated_gc_lose_nothing(bucket: Bucket) -> None:
    """Writers of two stores conjoin every few commits while gc runs over and over with a minimum age of
    2 s; each writer has tables no manifest names yet for 0.3 s before every commit: every commit and
    chunk survives.  A third store's orphans, already there, fall due while the writers work."""
    loc = bucket.location
    old = bucket.store("old", max_tables=2)
    commit_blobs(old, 4, size=2000)
    commits, start = 8, str(time.time() + 2)
    procs = [spawn("aws-commit", loc.endpoint, loc.table, loc.bucket, store, "0", str(commits), "3", start, "0.3")
             for store in ("one", "two")]
    location = parse_location(bucket.spec, need_store=False)
    assert isinstance(location, AWSLocationSpec)
    runs = collected = 0
    while any(p.poll() is None for p in procs):
        collected += len(collect_aws(location, 2.0, False, silent_progress).deleted)
        runs += 1
    landed = list(results(procs))
    print(f"{runs} gc runs deleted {collected} while the writers ran")
    final = collect_aws(location, 0.0, False, silent_progress)
    assert runs >= 2 and collected + len(final.deleted) > 0
    objects, items = tables(bucket)
    assert (objects | items) == bucket.live()
    for store, lines in zip(("one", "two"), landed):
        check_store_history(bucket.store(store), lines, commits)
    for store in ("one", "two", "old"):
        verified = nbs("verify", loc.spec(store))
        assert verified.code == 0, verified.out


def test_refusals_delete_nothing(bucket: Bucket, moto_server: MotoServer) -> None:
    s3, ddb = bucket.clients()
    s3.put_object(Bucket=bucket.location.bucket, Key="0" * 32, Body=b"a table of someone's")
    empty = nbs("gc", bucket.spec, "--min-age", "0s")
    assert empty.code == 2 and "holds no store manifest: refusing to collect" in empty.err
    shared_start(bucket.store("db"))
    s3.put_object(Bucket=bucket.location.bucket, Key=f"{S3_STATE_PREFIX}other-table.json", Body=b"{}")
    foreign = nbs("gc", bucket.spec, "--min-age", "0s")
    assert foreign.code == 2 and "also collected for another DynamoDB table" in foreign.err
    s3.delete_object(Bucket=bucket.location.bucket, Key=f"{S3_STATE_PREFIX}other-table.json")
    ddb.put_item(TableName=bucket.location.table, Item={"db": {"S": "broken"}, "root": {"S": "?"}})
    broken = nbs("gc", bucket.spec, "--min-age", "0s")
    assert broken.code == 2 and "cannot tell what store 'broken' references" in broken.err
    assert "0" * 32 in bucket.objects()
    assert os.environ.get("AWS_ENDPOINT_URL") != bucket.location.endpoint  # the spec's endpoint was used
