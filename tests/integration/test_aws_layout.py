"""What this code writes to AWS is laid out exactly as Go Noms lays it out (NBS-FORMAT.md 5.4, 6.4, 13).

Each test gets its own DynamoDB table and bucket, so a scan sees only its store.
"""

from __future__ import annotations

import os
import re
from typing import Any

from nbs.addr import EMPTY_ADDR, Addr
from nbs.aws_factory import new_aws_store
from nbs.manifest import generate_lock_hash, parse_specs
from nbs.table_index import name_of_suffixes, parse_table_index
from tests.aws_server import MotoServer, unique_name

MANIFEST_TYPES = {"db": "S", "nbsVers": "S", "vers": "S", "root": "B", "lck": "B", "specs": "S"}


def scan(ddb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    return items


def test_store_layout_matches_go(moto_server: MotoServer) -> None:
    s3, ddb = moto_server.clients()
    table, bucket, name = moto_server.create_table(), moto_server.create_bucket(), unique_name("layout")
    store = new_aws_store(table, name, bucket, s3, ddb, 64 << 10)
    small = [store.put(b"small chunk %d" % i) for i in range(5)]
    assert store.commit(small[0], EMPTY_ADDR)
    # The 64 KiB memtable fills at 65 chunks (> 64: S3); the other 35 make a DynamoDB table.
    big = [store.put(os.urandom(1000)) for _ in range(100)]
    assert store.commit(big[0], store.root())

    items = scan(ddb, table)
    manifests = [i for i in items if not i["db"]["S"].startswith("*")]
    assert len(manifests) == 1
    manifest = manifests[0]
    assert {k: next(iter(v)) for k, v in manifest.items()} == MANIFEST_TYPES
    assert manifest["db"]["S"] == name and manifest["nbsVers"]["S"] == "4" and manifest["vers"]["S"] == "7.18"
    root = Addr(manifest["root"]["B"])
    specs = parse_specs(manifest["specs"]["S"].split(":"), "layout")
    assert root == big[0] and len(manifest["lck"]["B"]) == 20
    assert Addr(manifest["lck"]["B"]) == generate_lock_hash(root, specs)

    dynamo_tables = {i["db"]["S"][1:]: i["data"]["B"] for i in items if i["db"]["S"].startswith("*")}
    assert all(set(i) == {"db", "data"} and next(iter(i["data"])) == "B" for i in items if i["db"]["S"][0] == "*")
    objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    keys = [o["Key"] for o in objects]
    assert all(re.fullmatch(r"[0-9a-v]{32}", k) for k in keys)
    assert set(dynamo_tables).isdisjoint(keys)
    assert sorted([*dynamo_tables, *keys]) == sorted(str(s.name) for s in specs)
    assert len(keys) == 1 and len(dynamo_tables) == 2

    chunks: set[bytes] = set()
    for spec in specs:
        key = str(spec.name)
        data = dynamo_tables.get(key) or s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        index = parse_table_index(data, key, len(data))
        assert name_of_suffixes(index.suffixes) == spec.name and index.chunk_count == spec.chunk_count
        assert (key in dynamo_tables) == (index.chunk_count <= 64 and 39 + len(data) < 409600)
        chunks.update(index.addresses())
    assert chunks == set(small + big)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_manifest_without_tables_has_no_specs(moto_server: MotoServer) -> None:
    s3, ddb = moto_server.clients()
    table, bucket, name = moto_server.create_table(), moto_server.create_bucket(), unique_name("layout")
    root = Addr.of(b"a root never put")
    assert new_aws_store(table, name, bucket, s3, ddb).commit(root, EMPTY_ADDR)
    [item] = scan(ddb, table)
    assert sorted(item) == ["db", "lck", "nbsVers", "root", "vers"]
    assert item["root"]["B"] == bytes(root) and item["lck"]["B"] == bytes(generate_lock_hash(root, []))
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
