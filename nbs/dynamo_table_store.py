"""Small tables as DynamoDB items (Go's ``ddbTableStore``, NBS-FORMAT.md section 6.4.6).

A table of at most 64 chunks whose item stays under DynamoDB's 400 KiB limit
is stored whole as item ``{db: "*" + name, data: <table bytes>}`` in the
manifest table; ``*`` cannot start a store name, so table and manifest keys
never collide.  Reads are eventually consistent first (cheaper) and fall
back to one consistent read, because a table written a moment ago by another
process may not be visible to an eventual read yet.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nbs.addr import Addr
from nbs.aws_errors import aws_call
from nbs.chunk_source import ReaderAt
from nbs.dynamo_manifest import DB_ATTR
from nbs.errors import CorruptTableError, TableNotFoundError
from nbs.forksafe import Semaphore
from nbs.io_pool import limited
from nbs.size_cache import SizeCache
from nbs.stats import Stats

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE_KEY_PREFIX = "*"
DATA_ATTR = "data"

log = logging.getLogger(__name__)


class TableNotInDynamoError(TableNotFoundError):
    """No item for the table: it lives in S3 (or nowhere)."""


def table_key(name: Addr) -> dict[str, dict[str, str]]:
    return {DB_ATTR: {"S": TABLE_KEY_PREFIX + str(name)}}


class DynamoTableStore:
    """Reads and writes table items, with an optional size-bounded cache of their bytes."""

    def __init__(self, ddb: DynamoDBClient, table: str, rate_limit: Semaphore | None = None,
                 cache: SizeCache[bytes, bytes] | None = None) -> None:
        self._ddb = ddb
        self.table = table
        self._rate_limit = rate_limit
        self.cache = cache

    def read_table(self, name: Addr, stats: Stats) -> bytes:
        """The whole table; ``TableNotInDynamoError`` when there is no item for it."""
        started = time.perf_counter_ns()
        if self.cache is not None:
            data = self.cache.get(bytes(name))
            if data is not None:
                stats.mem_bytes_per_read.sample(len(data))
                stats.mem_read_latency.sample_time(started)
                return data
        try:
            data = self._get(name, consistent=False)
        except TableNotInDynamoError:
            log.debug("table %s not in an eventually consistent read of %s; reading consistently", name, self.table)
            data = self._get(name, consistent=True)
        stats.dynamo_bytes_per_read.sample(len(data))
        stats.dynamo_read_latency.sample_time(started)
        self._remember(name, data)
        return data

    def write(self, name: Addr, data: bytes) -> None:
        """Store a table item (unconditionally: a table's bytes are fixed by its name)."""
        with limited(self._rate_limit), aws_call(f"PutItem {self.table}/{TABLE_KEY_PREFIX}{name}"):
            self._ddb.put_item(TableName=self.table, Item={**table_key(name), DATA_ATTR: {"B": data}})
        self._remember(name, data)

    def _get(self, name: Addr, consistent: bool) -> bytes:
        with limited(self._rate_limit), aws_call(f"GetItem {self.table}/{TABLE_KEY_PREFIX}{name}"):
            reply = self._ddb.get_item(TableName=self.table, Key=table_key(name), ConsistentRead=consistent)
        item = reply.get("Item")
        if not item:
            raise TableNotInDynamoError(str(name), f"DynamoDB table {self.table}")
        data = item.get(DATA_ATTR, {}).get("B")
        if not isinstance(data, bytes):
            raise CorruptTableError(str(name), f"DynamoDB item in {self.table} has no binary {DATA_ATTR!r}")
        return data

    def _remember(self, name: Addr, data: bytes) -> None:
        if self.cache is not None:
            self.cache.add(bytes(name), len(data), data)


class DynamoReaderAt(ReaderAt):
    """Positioned reads of a table item; each read fetches the item (or hits the store's cache)."""

    def __init__(self, store: DynamoTableStore, name: Addr, stats: Stats) -> None:
        self._store = store
        self._name = name
        self._stats = stats

    def read_at(self, offset: int, length: int) -> bytes:
        return self._store.read_table(self._name, self._stats)[offset:offset + length]

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        data = self._store.read_table(self._name, self._stats)
        return [data[offset:offset + length] for offset, length in ranges]
