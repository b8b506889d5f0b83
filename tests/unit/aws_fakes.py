"""In-memory S3 and DynamoDB clients for unit tests (Go's ``fakeS3`` and ``fakeDDB``).

They implement only the calls the library makes, with the same keyword
arguments as boto3, and fail the way boto3 fails (``ClientError`` with an
error code).  Real-server behaviour is covered by the integration tests
against moto; these exist for small part limits and fault injection.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
import threading
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from nbs.dynamo_manifest import FIRST_WRITE_CONDITION, UPDATE_CONDITION

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


def client_error(code: str, operation: str, status: int = 400, request_id: str = "fake-request-id") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"fake {code}"},
                        "ResponseMetadata": {"RequestId": request_id, "HostId": "", "HTTPStatusCode": status,
                                             "HTTPHeaders": {}, "RetryAttempts": 0}}, operation)


class FakeDDB:
    """Items keyed by ``db``; evaluates exactly the two manifest conditions NBS writes."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.gets = 0
        self.consistent_gets = 0
        self.puts = 0
        self._lock = threading.Lock()

    def get_item(self, *, TableName: str, Key: dict[str, Any], ConsistentRead: bool = False) -> dict[str, Any]:
        with self._lock:
            self.gets += 1
            self.consistent_gets += ConsistentRead
            item = self.items.get(Key["db"]["S"])
            return {"Item": copy.deepcopy(item)} if item else {}

    def put_item(self, *, TableName: str, Item: dict[str, Any], ConditionExpression: str | None = None,
                 ExpressionAttributeValues: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._lock:
            key = Item["db"]["S"]
            if ConditionExpression is not None:
                assert ExpressionAttributeValues is not None
                if not self._holds(self.items.get(key), ConditionExpression, ExpressionAttributeValues):
                    raise client_error("ConditionalCheckFailedException", "PutItem")
            self.items[key] = copy.deepcopy(Item)
            self.puts += 1
            return {}

    @staticmethod
    def _holds(current: dict[str, Any] | None, condition: str, values: dict[str, Any]) -> bool:
        matches = (current is not None and current.get("lck") == values[":prev"]
                   and current.get("vers") == values[":vers"])
        if condition == FIRST_WRITE_CONDITION:
            return current is None or "lck" not in current or matches
        if condition == UPDATE_CONDITION:
            return matches
        raise AssertionError(f"unexpected condition {condition!r}")


class FakeBody:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.closed = False

    def read(self) -> bytes:
        return self.data

    def close(self) -> None:
        self.closed = True


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class FakeS3:
    """Objects and multipart uploads of one bucket."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.aborted: list[str] = []
        self.copied_ranges: list[tuple[str, str]] = []
        self.uploaded_parts: list[tuple[int, int]] = []
        self.gets = 0
        self.puts = 0  # single-request PutObject uploads
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def get_object(self, *, Bucket: str, Key: str, Range: str) -> dict[str, Any]:
        with self._lock:
            self.gets += 1
            data = self.objects.get(Key)
        if data is None:
            raise client_error("NoSuchKey", "GetObject", 404)
        part = self._slice(data, Range)
        return {"Body": FakeBody(part), "ContentLength": len(part)}

    @staticmethod
    def _slice(data: bytes, byte_range: str) -> bytes:
        match = _RANGE.fullmatch(byte_range)
        assert match is not None, byte_range
        first, last = match.groups()
        if not first:
            return data[-int(last):]
        return data[int(first):int(last) + 1]

    def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]:
        with self._lock:
            self.objects[Key] = bytes(Body)
            self.puts += 1
        return {"ETag": f'"{hashlib.md5(Body).hexdigest()}"'}

    def create_multipart_upload(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        with self._lock:
            upload_id = f"upload-{next(self._ids)}"
            self.uploads[upload_id] = {}
        return {"UploadId": upload_id}

    def _add_part(self, upload_id: str, number: int, data: bytes) -> str:
        with self._lock:
            self.uploads[upload_id][number] = data
        return f'"{number}-{hashlib.md5(data).hexdigest()}"'

    def upload_part(self, *, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: bytes) -> dict[str, Any]:
        with self._lock:
            self.uploaded_parts.append((PartNumber, len(Body)))
        return {"ETag": self._add_part(UploadId, PartNumber, bytes(Body))}

    def upload_part_copy(self, *, Bucket: str, Key: str, UploadId: str, PartNumber: int,
                         CopySource: dict[str, str], CopySourceRange: str) -> dict[str, Any]:
        with self._lock:
            source = self.objects.get(CopySource["Key"])
            self.copied_ranges.append((CopySource["Key"], CopySourceRange))
        if source is None:
            raise client_error("NoSuchKey", "UploadPartCopy", 404)
        etag = self._add_part(UploadId, PartNumber, self._slice(source, CopySourceRange))
        return {"CopyPartResult": {"ETag": etag}}

    def complete_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str,
                                  MultipartUpload: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            parts = self.uploads.pop(UploadId)
            numbers = [p["PartNumber"] for p in MultipartUpload["Parts"]]
            assert numbers == list(range(1, len(parts) + 1)), numbers
            self.objects[Key] = b"".join(parts[n] for n in numbers)
        return {}

    def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> dict[str, Any]:
        with self._lock:
            self.uploads.pop(UploadId, None)
            self.aborted.append(UploadId)
        return {}


def as_ddb(fake: FakeDDB) -> DynamoDBClient:
    """The fake where the library wants a boto3 client: it implements only the calls the library makes."""
    return cast("DynamoDBClient", fake)


def as_s3(fake: FakeS3) -> S3Client:
    """The fake where the library wants a boto3 client: it implements only the calls the library makes."""
    return cast("S3Client", fake)
