"""Small tables as DynamoDB items (Go's dynamo_table_reader_test.go, NBS-FORMAT.md 14.12)."""

from __future__ import annotations

from typing import Any

import pytest

from nbs.addr import Addr
from nbs.dynamo_table_store import DynamoReaderAt, DynamoTableStore, TableNotInDynamoError
from nbs.errors import CorruptTableError, TableNotFoundError
from nbs.size_cache import SizeCache
from nbs.stats import Stats
from nbs.table_writer import build_table
from tests.helpers import TEST_CHUNKS
from tests.unit.aws_fakes import FakeDDB, as_ddb

TABLE = build_table((Addr.of(c), c) for c in TEST_CHUNKS)


class EventuallyInconsistentDDB(FakeDDB):
    """Every eventually consistent read misses, as right after another process wrote the item."""

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        reply = super().get_item(**kwargs)
        return reply if kwargs.get("ConsistentRead") else {}


def stored(ddb: FakeDDB) -> FakeDDB:
    DynamoTableStore(as_ddb(ddb), "table").write(TABLE.name, TABLE.data)
    ddb.gets = 0
    return ddb


def check_read_table(store: DynamoTableStore) -> None:
    assert store.read_table(TABLE.name, Stats()) == TABLE.data
    with pytest.raises(TableNotInDynamoError) as missing:
        store.read_table(Addr.of(b""), Stats())
    assert isinstance(missing.value, TableNotFoundError)


def test_item_layout() -> None:
    ddb = stored(FakeDDB())
    assert ddb.items == {"*" + str(TABLE.name): {"db": {"S": "*" + str(TABLE.name)}, "data": {"B": TABLE.data}}}


def test_read_table_eventually_consistent_success() -> None:
    ddb = stored(FakeDDB())
    store = DynamoTableStore(as_ddb(ddb), "table")
    check_read_table(store)
    assert ddb.consistent_gets == 1  # only the miss was retried consistently


def test_read_table_eventually_consistent_failure() -> None:
    ddb = stored(EventuallyInconsistentDDB())
    check_read_table(DynamoTableStore(as_ddb(ddb), "table"))
    assert ddb.consistent_gets == 2


def test_read_table_with_cache() -> None:
    ddb = stored(FakeDDB())
    store = DynamoTableStore(as_ddb(ddb), "table", cache=SizeCache(2 * len(TABLE.data)))
    check_read_table(store)
    gets = ddb.gets
    stats = Stats()
    assert store.read_table(TABLE.name, stats) == TABLE.data
    assert ddb.gets == gets
    assert stats.mem_read_latency.samples == 1 and stats.mem_bytes_per_read.sum == len(TABLE.data)


def test_write_table_without_cache() -> None:
    ddb = FakeDDB()
    store = DynamoTableStore(as_ddb(ddb), "table")
    store.write(TABLE.name, TABLE.data)
    stats = Stats()
    assert store.read_table(TABLE.name, stats) == TABLE.data
    assert stats.dynamo_read_latency.samples == 1 and stats.dynamo_bytes_per_read.sum == len(TABLE.data)


def test_write_table_with_cache_serves_reads_without_gets() -> None:
    ddb = FakeDDB()
    store = DynamoTableStore(as_ddb(ddb), "table", cache=SizeCache(1024))
    store.write(TABLE.name, TABLE.data)
    assert store.read_table(TABLE.name, Stats()) == TABLE.data
    assert ddb.gets == 0


def test_read_at_with_cache() -> None:
    ddb = stored(FakeDDB())
    store = DynamoTableStore(as_ddb(ddb), "table", cache=SizeCache(1024))
    reader = DynamoReaderAt(store, TABLE.name, Stats())
    quarter = len(TABLE.data) // 4
    assert reader.read_at(0, quarter) == TABLE.data[:quarter]
    assert ddb.gets >= 1
    gets = ddb.gets
    assert reader.read_at(quarter, quarter) == TABLE.data[quarter:2 * quarter]
    assert ddb.gets == gets


def test_read_ranges_fetch_the_item_once() -> None:
    ddb = stored(FakeDDB())
    reader = DynamoReaderAt(DynamoTableStore(as_ddb(ddb), "table"), TABLE.name, Stats())
    assert reader.read_ranges([(0, 10), (20, 5)]) == [TABLE.data[:10], TABLE.data[20:25]]
    assert ddb.gets == 1


def test_item_without_data_is_corrupt() -> None:
    ddb = FakeDDB()
    ddb.items["*" + str(TABLE.name)] = {"db": {"S": "*" + str(TABLE.name)}, "data": {"S": "text"}}
    with pytest.raises(CorruptTableError):
        DynamoTableStore(as_ddb(ddb), "table").read_table(TABLE.name, Stats())
