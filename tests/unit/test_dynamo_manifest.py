"""The DynamoDB manifest (Go's dynamo_manifest_test.go, NBS-FORMAT.md 14.11) over a fake DynamoDB."""

from __future__ import annotations

from typing import Any

import pytest

from nbs.addr import EMPTY_ADDR, Addr
from nbs.dynamo_manifest import (FIRST_WRITE_CONDITION, UPDATE_CONDITION, DynamoManifest, manifest_item,
                                 parse_manifest_item)
from nbs.errors import DynamoTableNotFoundError, ManifestError, VersionMismatchError
from nbs.manifest import NOMS_VERSION, ManifestContents, TableSpec, generate_lock_hash
from nbs.stats import Stats
from tests.unit.aws_fakes import FakeDDB, as_ddb, client_error

TABLE, DB = "testTable", "testDB"


def lock(text: str) -> Addr:
    return Addr.of(text.encode())


def contents(lock_text: str, root_text: str, specs: tuple[TableSpec, ...] = (),
             vers: str = NOMS_VERSION) -> ManifestContents:
    return ManifestContents(vers, lock(lock_text), Addr.of(root_text.encode()), specs)


@pytest.fixture
def ddb() -> FakeDDB:
    return FakeDDB()


@pytest.fixture
def manifest(ddb: FakeDDB) -> DynamoManifest:
    return DynamoManifest(as_ddb(ddb), TABLE, DB)


def test_name_and_construction(ddb: FakeDDB) -> None:
    assert DynamoManifest(as_ddb(ddb), TABLE, DB).name() == TABLE + DB
    with pytest.raises(ValueError):
        DynamoManifest(as_ddb(ddb), "", DB)
    with pytest.raises(ValueError):
        DynamoManifest(as_ddb(ddb), TABLE, "")


def test_parse_if_exists(manifest: DynamoManifest, ddb: FakeDDB) -> None:
    stats = Stats()
    assert manifest.parse_if_exists(stats) is None
    table1 = Addr.of(b"table1")
    stored = contents("locker", "new root", (TableSpec(table1, 0),), vers="0")
    ddb.items[DB] = manifest_item(DB, stored)
    got = manifest.parse_if_exists(stats)
    assert got == stored and got.vers == "0"
    assert stats.read_manifest_latency.samples == 2


def test_update_wont_clobber_old_version(manifest: DynamoManifest, ddb: FakeDDB) -> None:
    ddb.items[DB] = manifest_item(DB, contents("locker", "root", vers="0"))
    with pytest.raises(VersionMismatchError):
        manifest.update(lock("locker"), contents("new", "root"), Stats())


def test_update(manifest: DynamoManifest, ddb: FakeDDB) -> None:
    stats = Stats()
    clobbered = []
    first = contents("locker", "nuroot", (TableSpec(Addr.of(b"a"), 3),))
    assert manifest.update(EMPTY_ADDR, first, stats, write_hook=lambda: clobbered.append(1)) == first
    assert clobbered == []  # the DynamoDB manifest never runs the write hook
    rejected = contents("locker 2", "new root 2")
    assert manifest.update(EMPTY_ADDR, rejected, stats) == first
    assert manifest.update(first.lock, rejected, stats) == rejected
    assert manifest.parse_if_exists(stats) == rejected
    jerk = ManifestContents(NOMS_VERSION, lock("jerk"), rejected.root, (TableSpec(Addr.of(b"table1"), 1),))
    ddb.items[DB] = manifest_item(DB, jerk)
    assert manifest.update(rejected.lock, contents("locker 3", "new root 3"), stats) == jerk


def test_caching_costs(manifest: DynamoManifest, ddb: FakeDDB) -> None:
    stats = Stats()
    manifest.parse_if_exists(stats)
    assert ddb.gets == 1 and ddb.consistent_gets == 1
    ddb.items[DB] = manifest_item(DB, contents("locker", "root"))
    manifest.parse_if_exists(stats)
    assert ddb.gets == 2 and ddb.consistent_gets == 2
    got = manifest.update(EMPTY_ADDR, contents("other", "root"), stats)
    assert ddb.gets == 3 and got.lock == lock("locker")
    manifest.update(got.lock, contents("next", "root"), stats)
    assert ddb.gets == 3 and ddb.puts == 1


def test_update_empty(manifest: DynamoManifest) -> None:
    new = ManifestContents(NOMS_VERSION, Addr(bytes(19) + b"\x01"))
    got = manifest.update(EMPTY_ADDR, new, Stats())
    assert got.lock == new.lock and got.root == EMPTY_ADDR and got.specs == ()


def test_first_write_over_an_item_with_a_zero_lock(manifest: DynamoManifest, ddb: FakeDDB) -> None:
    """Real DynamoDB (unlike Go's fake) lets a first write replace an item whose lck is zero (15.10)."""
    ddb.items[DB] = manifest_item(DB, ManifestContents())
    new = contents("locker", "root")
    assert manifest.update(EMPTY_ADDR, new, Stats()) == new


class RecordingDDB(FakeDDB):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return super().put_item(**kwargs)


def test_put_requests_are_exactly_gos() -> None:
    ddb = RecordingDDB()
    manifest = DynamoManifest(as_ddb(ddb), TABLE, DB)
    spec = TableSpec(Addr.parse("uog0qvhml7hmloq557j88qfgeptqpo13"), 3)
    first = ManifestContents.for_commit(Addr.of(b"hello2"), [spec])
    manifest.update(EMPTY_ADDR, first, Stats())
    second = ManifestContents.for_commit(Addr.of(b"root 2"), [])
    manifest.update(first.lock, second, Stats())
    assert ddb.calls[0] == {
        "TableName": TABLE,
        "Item": {"db": {"S": DB}, "nbsVers": {"S": "4"}, "vers": {"S": "7.18"},
                 "root": {"B": bytes(Addr.of(b"hello2"))}, "lck": {"B": bytes(first.lock)},
                 "specs": {"S": "uog0qvhml7hmloq557j88qfgeptqpo13:3"}},
        "ConditionExpression": "attribute_not_exists(lck) or (lck = :prev) and (vers = :vers)",
        "ExpressionAttributeValues": {":prev": {"B": bytes(20)}, ":vers": {"S": "7.18"}},
    }
    assert str(first.lock) == "7vr0tp8gqkgthupu2ti24sdu6ob7duoc"
    assert ddb.calls[0]["ConditionExpression"] == FIRST_WRITE_CONDITION
    assert ddb.calls[1]["ConditionExpression"] == UPDATE_CONDITION == "(lck = :prev) and (vers = :vers)"
    assert ddb.calls[1]["ExpressionAttributeValues"][":prev"] == {"B": bytes(first.lock)}
    assert "specs" not in ddb.calls[1]["Item"] and len(ddb.calls[1]["Item"]) == 5
    assert second.lock == generate_lock_hash(second.root, [])


def good_item() -> dict[str, Any]:
    return manifest_item(DB, contents("locker", "root", (TableSpec(Addr.of(b"t"), 2),)))


@pytest.mark.parametrize("damage", [
    lambda i: i.pop("nbsVers"),
    lambda i: i.pop("vers"),
    lambda i: i.pop("root"),
    lambda i: i.pop("lck"),
    lambda i: i.update(extra={"S": "x"}),
    lambda i: i.update(vers={"B": b"7.18"}),
    lambda i: i.update(root={"S": "root"}),
    lambda i: i.update(lck={"S": "lock"}),
    lambda i: i.update(specs={"B": b"x"}),
    lambda i: i.update(root={"B": bytes(19)}),
    lambda i: i.update(lck={"B": bytes(21)}),
    lambda i: i.update(specs={"S": "notanaddress:1"}),
    lambda i: i.update(specs={"S": str(Addr.of(b"t"))}),
])
def test_malformed_items_are_rejected(damage: Any) -> None:
    item = good_item()
    damage(item)
    with pytest.raises(ManifestError):
        parse_manifest_item(item, "m")


def test_item_validation_accepts_gos_shapes() -> None:
    item = good_item()
    assert len(parse_manifest_item(item, "m").specs) == 1
    item.pop("specs")
    assert parse_manifest_item(item, "m").specs == ()
    item["nbsVers"] = {"S": "5"}
    with pytest.raises(VersionMismatchError):
        parse_manifest_item(item, "m")


class FailingDDB(FakeDDB):
    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        raise client_error(self.code, "GetItem", request_id="req-123")

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        raise client_error(self.code, "PutItem", request_id="req-456")


def test_aws_errors_are_typed_and_keep_the_request_id() -> None:
    manifest = DynamoManifest(as_ddb(FailingDDB("ResourceNotFoundException")), TABLE, DB)
    with pytest.raises(DynamoTableNotFoundError) as read:
        manifest.parse_if_exists(Stats())
    assert read.value.request_id == "req-123" and read.value.code == "ResourceNotFoundException"
    assert TABLE in str(read.value) and "req-123" in str(read.value)
    with pytest.raises(DynamoTableNotFoundError) as write:
        manifest.update(EMPTY_ADDR, contents("l", "r"), Stats())
    assert write.value.request_id == "req-456"
    assert write.value.__cause__ is not None
