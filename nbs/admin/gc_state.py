"""When each piece of garbage was first seen unreferenced, kept from one ``nbs gc`` run to the next.

A JSON object ``{"format": 1, "first_seen": {key: unix time}}``.  Local stores
keep it in ``<store>/nbs_gc.json``; AWS buckets in the S3 object
``nbs-gc/<DynamoDB table>.json`` (DynamoDB table items carry their own mark, see
``nbs.admin.gc_aws``).  Losing or garbling the state is safe: every entry then
starts again at the present, which only delays deletions.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from nbs.aws_errors import aws_call
from nbs.durable_files import rename_into_place, write_temp
from nbs.errors import AWSError, StoreIOError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

STATE_FORMAT = 1
LOCAL_STATE_FILE = "nbs_gc.json"
LOCAL_STATE_TEMP_PREFIX = "nbs_gc_"
S3_STATE_PREFIX = "nbs-gc/"

FirstSeen = dict[str, float]


def decode_state(raw: bytes, where: str, warnings: list[str]) -> FirstSeen:
    """The entries of a stored state; an unreadable one is reported in ``warnings`` and treated as empty."""
    try:
        state = json.loads(raw)
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"format {state.get('format')!r}, expected {STATE_FORMAT}")
        entries = state["first_seen"]
        return {str(key): float(value) for key, value in entries.items()}
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        warnings.append(f"ignored the unreadable gc state {where} ({err}): every candidate starts waiting anew")
        return {}


def encode_state(first_seen: FirstSeen) -> bytes:
    return json.dumps({"format": STATE_FORMAT, "first_seen": dict(sorted(first_seen.items()))},
                      indent=0).encode() + b"\n"


class LocalState:
    """The state file of a local store directory."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, LOCAL_STATE_FILE)

    def load(self, warnings: list[str]) -> FirstSeen:
        try:
            with open(self.path, "rb") as state:
                return decode_state(state.read(), self.path, warnings)
        except FileNotFoundError:
            return {}
        except OSError as err:
            raise StoreIOError("read gc state", self.path, err) from err

    def save(self, first_seen: FirstSeen) -> None:
        data = encode_state(first_seen)
        try:
            temp, _ = write_temp(self.directory, LOCAL_STATE_TEMP_PREFIX, lambda write: write(data), sync=True)
            rename_into_place(temp, self.path, sync=True)
        except OSError as err:
            raise StoreIOError("write gc state", self.path, err) from err


class S3State:
    """The state object of a bucket, one per DynamoDB table whose stores use the bucket."""

    def __init__(self, s3: S3Client, bucket: str, table: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.key = f"{S3_STATE_PREFIX}{table}.json"
        self.where = f"s3://{bucket}/{self.key}"

    def load(self, warnings: list[str]) -> FirstSeen:
        try:
            with aws_call(f"GetObject {self.where}"):
                body = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"]
                raw = body.read()
        except AWSError as err:
            if err.code == "NoSuchKey":
                return {}
            raise
        return decode_state(raw, self.where, warnings)

    def save(self, first_seen: FirstSeen) -> None:
        with aws_call(f"PutObject {self.where}"):
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=encode_state(first_seen))
