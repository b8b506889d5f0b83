"""Store spec parsing (NOMS-VALUES.md 9.1, plus the aws:// form)."""

from pathlib import Path

import pytest

import nbs
from nbs.errors import SpecError
from nbs.spec import StoreSpec, parse_store_spec


@pytest.mark.parametrize("text,want", [
    ("mem", StoreSpec("mem")),
    ("/tmp/db", StoreSpec("nbs", path="/tmp/db")),
    ("relative/db", StoreSpec("nbs", path="relative/db")),
    ("nbs:/tmp/db", StoreSpec("nbs", path="/tmp/db")),
    ("nbs:/tmp/ba:d", StoreSpec("nbs", path="/tmp/ba:d")),
    ("nbs:/tmp/db?sync=false", StoreSpec("nbs", path="/tmp/db", options={"sync": "false"})),
    ("/tmp/db?sync=true", StoreSpec("nbs", path="/tmp/db", options={"sync": "true"})),
    ("aws:table/bucket/db", StoreSpec("aws", table="table", bucket="bucket", name="db")),
    ("aws:table/bucket/db/more", StoreSpec("aws", table="table", bucket="bucket", name="db/more")),
    ("aws://table:bucket/db", StoreSpec("aws", table="table", bucket="bucket", name="db")),
    ("aws://t:b/db?region=us-west-2&endpoint=http://127.0.0.1:5000",
     StoreSpec("aws", table="t", bucket="b", name="db",
               options={"region": "us-west-2", "endpoint": "http://127.0.0.1:5000"})),
])
def test_valid_specs(text: str, want: StoreSpec) -> None:
    assert parse_store_spec(text) == want


@pytest.mark.parametrize("text", [
    "", "mem:", "mem:foo", "ldb:/tmp/x", "random:", "/file/ba:d", "nbs:", "aws:", "aws:table",
    "aws:table/bucket", "aws:table/bucket/", "aws:/table/bucket/db", "aws:t/b/*star", "aws:t/b/../x",
    "aws://table/bucket/db", "aws://t:b/db?colour=red", "aws://t:b/db?region", "x\x00y",
    "nbs:/tmp/db?sync=maybe", "nbs:/tmp/db?colour=red", "nbs:?sync=false", "/tmp/db?sync",
])
def test_invalid_specs(text: str) -> None:
    with pytest.raises(SpecError):
        parse_store_spec(text)


def test_canonical_text() -> None:
    assert str(parse_store_spec("/tmp/db")) == "nbs:/tmp/db"
    assert str(parse_store_spec("aws:t/b/db")) == "aws://t:b/db"
    assert str(parse_store_spec("mem")) == "mem"
    assert str(parse_store_spec("/tmp/db?sync=false")) == "nbs:/tmp/db?sync=false"


def test_sync_option() -> None:
    assert parse_store_spec("nbs:/tmp/db").sync
    assert parse_store_spec("nbs:/tmp/db?sync=true").sync
    assert not parse_store_spec("nbs:/tmp/db?sync=false").sync


def test_open_store_creates_local_directories(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    store = nbs.open_store(f"nbs:{target}")
    h = store.put(b"x")
    assert store.commit(h, store.root())
    assert (target / "manifest").exists()
    assert nbs.open_store(str(target)).root() == h


def test_open_mem_stores_are_independent() -> None:
    a = nbs.open_store("mem")
    h = a.put(b"x")
    assert a.commit(h, a.root())
    assert nbs.open_store("mem").root() == nbs.EMPTY_ADDR
