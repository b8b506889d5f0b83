"""Direct access to the stored bytes of one table, wherever it lives: a file, an S3 object, a DynamoDB item.

``nbs verify`` reads tables through these rather than through a store, so that
no cache (index cache, table cache, small-table cache, the daemon's LMDB)
stands between it and what is stored.
"""

from __future__ import annotations

import abc
import os
from typing import TYPE_CHECKING

from nbs.addr import Addr
from nbs.aws_errors import aws_call
from nbs.aws_table_persister import AWSLimits
from nbs.dynamo_table_store import DATA_ATTR, table_key
from nbs.errors import AWSError, CorruptTableError, StoreIOError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

NOT_FOUND_CODES = ("NoSuchKey", "404", "NotFound")


class StoredTable(abc.ABC):
    """The bytes of one stored table; ``size`` is what storage says, not what the index claims."""

    where: str
    size: int

    @abc.abstractmethod
    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (fewer only if the table is shorter)."""

    def close(self) -> None:
        """Release what reading holds."""


class FileTable(StoredTable):
    def __init__(self, path: str, fd: int) -> None:
        self.where = path
        self._fd = fd
        self.size = os.fstat(fd).st_size

    def read(self, offset: int, length: int) -> bytes:
        try:
            return os.pread(self._fd, length, offset)
        except OSError as err:
            raise StoreIOError("read table", self.where, err) from err

    def close(self) -> None:
        os.close(self._fd)


def open_file_table(directory: str, name: Addr) -> FileTable | None:
    """The table file, or None when there is none."""
    path = os.path.join(directory, str(name))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StoreIOError("open table", path, err) from err
    try:
        return FileTable(path, fd)
    except OSError as err:
        os.close(fd)
        raise StoreIOError("read table", path, err) from err


class S3Table(StoredTable):
    def __init__(self, s3: S3Client, bucket: str, key: str, size: int) -> None:
        self.where = f"s3://{bucket}/{key}"
        self.size = size
        self._s3 = s3
        self._bucket = bucket
        self._key = key

    def read(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        with aws_call(f"GetObject {self.where}"):
            reply = self._s3.get_object(Bucket=self._bucket, Key=self._key,
                                        Range=f"bytes={offset}-{offset + length - 1}")
            return reply["Body"].read()


class ItemTable(StoredTable):
    """A small table held whole in a DynamoDB item (at most 400 KiB, so it is kept in memory)."""

    def __init__(self, where: str, data: bytes) -> None:
        self.where = where
        self.size = len(data)
        self._data = data

    def read(self, offset: int, length: int) -> bytes:
        return self._data[offset:offset + length]


def find_aws_table(s3: S3Client, ddb: DynamoDBClient, table: str, bucket: str, name: Addr,
                   chunk_count: int) -> StoredTable | None:
    """Where the store reads the table from: its DynamoDB item if it may be small, else its S3 object."""
    if AWSLimits().may_be_in_dynamo(chunk_count):
        with aws_call(f"GetItem {table}/*{name}"):
            item = ddb.get_item(TableName=table, Key=table_key(name), ConsistentRead=True).get("Item")
        if item:
            data = item.get(DATA_ATTR, {}).get("B")
            if not isinstance(data, bytes):
                raise CorruptTableError(str(name), f"DynamoDB item in {table} has no binary {DATA_ATTR!r}")
            return ItemTable(f"dynamodb:{table}/*{name}", data)
    key = str(name)
    try:
        with aws_call(f"HeadObject s3://{bucket}/{key}"):
            size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    except AWSError as err:
        if err.code in NOT_FOUND_CODES:
            return None
        raise
    return S3Table(s3, bucket, key, size)
