"""``nbs verify`` on real stores: healthy ones pass, damage is named by table (and chunk), Go fixtures are clean."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nbs.addr import Addr
from nbs.factory import new_local_store
from nbs.file_manifest import MANIFEST_FILE, parse_manifest
from nbs.noms.datas import Database
from nbs.noms.types import VALUE_TYPE
from nbs.noms.values import List, Ref, String
from nbs.noms.walk import walk_refs
from nbs.stats import humanize_bytes
from nbs.table_index import parse_table_index
from tests.aws_server import AWS_SMALL_STORE, MotoServer
from tests.conftest import AWSLocation
from tests.helpers import FIXTURES
from tests.maintenance import commit_blobs, conjoined_db, nbs, nbs_process


@pytest.fixture
def db_dir(tmp_path: Path) -> Path:
    return conjoined_db(tmp_path / "db")


def reachable_count(directory: Path) -> int:
    db = Database(new_local_store(str(directory)))
    seen, pending = set(), [bytes(db.root())]
    while pending:
        addr = pending.pop()
        if addr not in seen:
            seen.add(addr)
            value = db.read_value(addr)
            assert value is not None
            pending.extend(bytes(r.target) for r in walk_refs(value))
    return len(seen)


def live_table(directory: Path) -> tuple[str, bytes]:
    """The name and bytes of the biggest table the manifest names."""
    names = new_local_store(str(directory)).upstream.specs
    name = max((str(s.name) for s in names), key=lambda n: (directory / n).stat().st_size)
    return name, (directory / name).read_bytes()


def test_healthy_store_passes(db_dir: Path) -> None:
    result = nbs("verify", str(db_dir), "--reachable")
    assert (result.code, result.err) == (0, "")
    store = new_local_store(str(db_dir))
    tables = len(store.upstream.specs)
    size = sum((db_dir / str(s.name)).stat().st_size for s in store.upstream.specs)
    assert result.lines == [f"{db_dir}: {tables} tables, {store.count()} chunks, "
                            f"{humanize_bytes(size)}, {reachable_count(db_dir)} reachable chunks: OK"]


def test_json_report(db_dir: Path) -> None:
    report = json.loads(nbs("verify", f"nbs:{db_dir}", "--json").out)
    store = new_local_store(str(db_dir))
    assert report["healthy"] is True and report["problems"] == []
    assert report["root"] == str(store.root()) and report["chunks"] == store.count()
    assert report["reachable_chunks"] is None


def test_flipped_byte_in_a_record_names_the_table_and_chunk(db_dir: Path) -> None:
    name, data = live_table(db_dir)
    index = parse_table_index(data, name, len(data))
    ordinal = index.chunk_count // 2
    offset = index.offsets[ordinal] + index.lengths[ordinal] // 2
    damaged = bytearray(data)
    damaged[offset] ^= 0x20
    (db_dir / name).write_bytes(bytes(damaged))
    result = nbs("verify", str(db_dir))
    chunk = Addr(index.addresses()[ordinal])
    assert result.code == 1
    assert result.lines[:-1] == [f"table {name}: chunk {chunk}: CRC-32C mismatch"]
    assert result.lines[-1].endswith(": 1 problem(s)")


def test_flipped_byte_in_the_index_names_the_table(db_dir: Path) -> None:
    name, data = live_table(db_dir)
    index = parse_table_index(data, name, len(data))
    damaged = bytearray(data)
    damaged[index.data_len + 28 * index.chunk_count - 1] ^= 1  # the last suffix byte
    (db_dir / name).write_bytes(bytes(damaged))
    result = nbs("verify", str(db_dir))
    assert result.code == 1
    assert any(line.startswith(f"table {name}: its suffix block hashes to ") for line in result.lines)


def test_truncated_and_missing_tables_are_named(db_dir: Path) -> None:
    specs = new_local_store(str(db_dir)).upstream.specs
    assert len(specs) >= 2
    truncated, missing = str(specs[0].name), str(specs[1].name)
    data = (db_dir / truncated).read_bytes()
    (db_dir / truncated).write_bytes(data[:len(data) - 7])
    os.unlink(db_dir / missing)
    result = nbs("verify", str(db_dir))
    assert result.code == 1
    assert f"table {missing}: missing (not in {db_dir})" in result.lines
    assert [line for line in result.lines if truncated in line] == \
        [f"table {truncated}: footer magic mismatch (not an NBS table, or truncated)"]
    assert result.lines[-1].endswith(": 2 problem(s)")


def test_a_malformed_manifest_is_a_problem(db_dir: Path) -> None:
    (db_dir / MANIFEST_FILE).write_text("4:7.18:not-a-lock")
    result = nbs("verify", str(db_dir))
    assert result.code == 1
    assert result.lines == [f"manifest {db_dir / MANIFEST_FILE}: malformed manifest (3 fields)",
                            f"{db_dir}: 0 tables, 0 chunks, 0 B: 1 problem(s)"]


def test_reachable_names_a_missing_chunk(tmp_path: Path) -> None:
    store = new_local_store(str(tmp_path))
    absent = Addr.of(b"never stored")
    db = Database(store)
    db.commit("ds", List(0, [String("x"), Ref(absent, VALUE_TYPE, 1)], vr=db.store))
    plain = nbs("verify", str(tmp_path))
    assert plain.code == 0
    result = nbs("verify", str(tmp_path), "--reachable")
    assert result.code == 1
    [line] = result.lines[:-1]
    assert line.startswith(f"chunk {absent}: is missing (referenced by ")


@pytest.mark.parametrize("fixture", ["local-small", "local-multitable", "noms-hr"])
def test_go_fixtures_verify_clean(fixture: str) -> None:
    directory = FIXTURES / fixture / "store"
    manifest = parse_manifest((directory / MANIFEST_FILE).read_text(), fixture)
    result = nbs_process("verify", str(directory), "--reachable", "--json")
    assert result.code == 0, result.out + result.err
    report = json.loads(result.out)
    assert report["healthy"] and report["root"] == str(manifest.root) and report["reachable_chunks"] > 0
    assert (report["tables"], report["chunks"]) == (len(manifest.specs), sum(s.chunk_count for s in manifest.specs))


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for argv, message in [(["verify", str(tmp_path / "nope")], "does not exist"),
                          (["verify", str(tmp_path)], "holds no manifest: not a store"),
                          (["verify", "mem"], "a memory store keeps nothing to verify or collect"),
                          (["verify", "aws://t:b"], "names no store"),
                          (["verify", "ftp://x"], "Invalid database protocol")]:
        result = nbs(*argv)
        assert result.code == 2 and result.out == ""
        assert result.err.startswith("nbs verify: error: ") and message in result.err and result.err.count("\n") == 1


# -- AWS ---------------------------------------------------------------------------------------------------------


def test_aws_small_fixture_verifies_clean(aws_small: tuple[MotoServer, str, str]) -> None:
    server, table, bucket = aws_small
    result = nbs("verify", f"aws://{table}:{bucket}/{AWS_SMALL_STORE}?endpoint={server.endpoint}", "--reachable")
    assert result.code == 0, result.out + result.err
    assert result.lines[-1].endswith("reachable chunks: OK")


def test_aws_damage_is_named(aws_location: AWSLocation, store_name: str) -> None:
    """A flipped byte in an S3 object and in a DynamoDB item, and a missing object."""
    from nbs.aws_factory import new_aws_store

    s3, ddb = aws_location.server.clients()
    store = new_aws_store(aws_location.table, store_name, aws_location.bucket, s3, ddb, max_tables=3)
    commit_blobs(store, 6)
    spec = aws_location.spec(store_name)
    assert nbs("verify", spec, "--reachable").code == 0
    specs = store.upstream.specs
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=aws_location.bucket)["Contents"]}
    in_s3 = [str(s.name) for s in specs if str(s.name) in keys]
    in_dynamo = [str(s.name) for s in specs if str(s.name) not in keys]
    assert in_s3 and in_dynamo
    flipped_object, item = in_s3[0], in_dynamo[0]
    data = bytearray(s3.get_object(Bucket=aws_location.bucket, Key=flipped_object)["Body"].read())
    data[3] ^= 0x40
    s3.put_object(Bucket=aws_location.bucket, Key=flipped_object, Body=bytes(data))
    key = {"db": {"S": "*" + item}}
    item_data = bytearray(ddb.get_item(TableName=aws_location.table, Key=key)["Item"]["data"]["B"])
    item_data[len(item_data) - 1] ^= 0xFF  # the footer's magic
    ddb.put_item(TableName=aws_location.table, Item={**key, "data": {"B": bytes(item_data)}})
    result = nbs("verify", spec)
    assert result.code == 1
    assert any(line.startswith(f"table {flipped_object}: chunk ") for line in result.lines)
    assert f"table {item}: footer magic mismatch (not an NBS table, or truncated)" in result.lines
    ddb.put_item(TableName=aws_location.table, Item={**key, "data": {"S": "not bytes"}})
    assert f"table {item}: DynamoDB item in {aws_location.table} has no binary 'data'" in nbs("verify", spec).lines
    if len(in_s3) > 1:
        s3.delete_object(Bucket=aws_location.bucket, Key=in_s3[1])
        assert any(line.startswith(f"table {in_s3[1]}: missing") for line in nbs("verify", spec).lines)
