"""Interop: the aws-small dump of a Go-written AWS store, loaded into moto, reads exactly per FACTS.json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nbs.addr import Addr
from nbs.aws_factory import new_aws_store
from nbs.dynamo_manifest import DynamoManifest
from nbs.dynamo_table_store import DynamoTableStore
from nbs.factory import open_store
from nbs.manifest import generate_lock_hash
from nbs.stats import Stats
from nbs.store import NomsBlockStore
from tests.aws_server import MotoServer, unique_name
from tests.helpers import check_table_facts

from tests.aws_server import AWS_SMALL, AWS_SMALL_DUMP, AWS_SMALL_OBJECTS, AWS_SMALL_STORE, load_dump

FACTS: dict[str, Any] = json.loads((AWS_SMALL / "FACTS.json").read_text())
DUMP, OBJECTS, STORE = AWS_SMALL_DUMP, AWS_SMALL_OBJECTS, AWS_SMALL_STORE


@pytest.fixture
def go_store(aws_small: tuple[MotoServer, str, str]) -> tuple[MotoServer, str, str]:
    return aws_small


def open_go_store(go_store: tuple[MotoServer, str, str]) -> NomsBlockStore:
    server, table, bucket = go_store
    s3, ddb = server.clients()
    return new_aws_store(table, STORE, bucket, s3, ddb)


def test_manifest_item(go_store: tuple[MotoServer, str, str]) -> None:
    server, table, _ = go_store
    contents = DynamoManifest(server.clients()[1], table, STORE).parse_if_exists(Stats())
    assert contents is not None
    m = FACTS["manifest"]
    assert (contents.vers, str(contents.lock), str(contents.root)) == (m["noms_version"], m["lock"], m["root"])
    assert [(str(s.name), s.chunk_count) for s in contents.specs] == \
        [(t["name"], t["chunk_count"]) for t in m["tables"]]
    assert contents.lock == generate_lock_hash(contents.root, contents.specs)


def test_root_version_and_count(go_store: tuple[MotoServer, str, str]) -> None:
    store = open_go_store(go_store)
    assert str(store.root()) == FACTS["root"] == FACTS["noms_root"]["stdout"].strip()
    assert store.version() == FACTS["manifest"]["noms_version"]
    assert store.count() == FACTS["store_count"] == FACTS["total_chunk_count"]


def test_every_table_matches_facts(go_store: tuple[MotoServer, str, str]) -> None:
    server, table, _ = go_store
    tables = DynamoTableStore(server.clients()[1], table)
    for t in FACTS["tables"]:
        check_table_facts(tables.read_table(Addr.parse(t["name"]), Stats()), t)


def test_every_chunk_readable_and_verified(go_store: tuple[MotoServer, str, str]) -> None:
    store = open_go_store(go_store)
    hashes = [Addr.parse(h) for h in FACTS["chunk_hashes_sorted"]]
    got = store.get_many(hashes)
    assert sorted(got) == hashes
    assert all(Addr.of(data) == h for h, data in got.items())
    assert all(store.get(h) == got[h] and store.has(h) for h in hashes)
    assert store.has_many(hashes) == set()


def test_cli_spec_opens_the_store(go_store: tuple[MotoServer, str, str]) -> None:
    server = go_store[0]
    spec = FACTS["spec"]
    assert spec == f"aws:{DUMP['table']}/{OBJECTS['bucket']}/{STORE}"
    assert str(open_store(f"{spec}?endpoint={server.endpoint}").root()) == FACTS["root"]


def test_commit_on_top_of_the_go_store(moto_server: MotoServer) -> None:
    """A copy of the dump, appended to: Go's tables stay named and readable beside the new one."""
    table, bucket = unique_name("go-copy"), moto_server.create_bucket()
    load_dump(moto_server, table)
    s3, ddb = moto_server.clients()
    store = new_aws_store(table, STORE, bucket, s3, ddb)
    new = store.put(b"a chunk written by the port")
    assert store.commit(new, store.root())
    reopened = new_aws_store(table, STORE, bucket, s3, ddb)
    assert reopened.root() == new
    names = {str(s.name) for s in reopened.upstream.specs}
    assert {t["name"] for t in FACTS["tables"]} < names and len(names) == len(FACTS["tables"]) + 1
    hashes = [Addr.parse(h) for h in FACTS["chunk_hashes_sorted"]] + [new]
    assert len(reopened.get_many(hashes)) == len(hashes)
