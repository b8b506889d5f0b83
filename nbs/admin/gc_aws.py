"""``nbs gc`` of an AWS bucket and DynamoDB table: every store in them at once.

Stores that share a bucket share table objects (a table's key is its content
hash), so a table is live when any manifest item of the DynamoDB table names
it.  Candidates: S3 objects and ``*<table>`` DynamoDB items whose key is a
table name no manifest names, and multipart uploads to such keys.  Other keys
and items are never touched.

Times come from the servers (the ``Date`` of S3's listing, ``LastModified``,
``Initiated``), not the local clock.  DynamoDB items carry no time, and a
writer may store a table again with identical bytes, so the first run that
finds an item unreferenced marks it with attribute ``gcSeen`` (seconds since
the epoch), which stands for its write time from then on: a writer's
``PutItem`` replaces the whole item and so erases the mark, and the delete is
conditioned on the mark this run read.  Marks of items a manifest names again
are removed.  First sightings (``nbs.admin.gc`` rule) are kept in the state
object (``nbs.admin.gc_state``).  An S3 object is checked with ``HeadObject``
just before its delete and spared if it was written again since the listing.

Deletes run in batches; before each batch the manifests of every store seen
are read again (consistently), and anything they name is spared.
"""

from __future__ import annotations

import email.utils
import enum
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from nbs.addr import Addr
from nbs.admin.gc import CollectionRefusedError, GCReport, Garbage, age
from nbs.admin.gc_state import S3_STATE_PREFIX, S3State
from nbs.admin.location import AWSLocation
from nbs.admin.progress import ProgressFactory
from nbs.admin.stored_tables import NOT_FOUND_CODES
from nbs.aws_errors import aws_call, error_code
from nbs.dynamo_manifest import DB_ATTR, parse_manifest_item
from nbs.dynamo_table_store import DATA_ATTR, TABLE_KEY_PREFIX, table_key
from nbs.errors import AWSError, ManifestError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

MARK_ATTR = "gcSeen"
BATCH = 25
BATCH_GET_LIMIT = 100
S3_OBJECT, ITEM, UPLOAD = "s3 object", "dynamodb item", "upload"


@dataclass
class _Candidate:
    garbage: Garbage
    written: float  # LastModified, Initiated, or an item's mark (the present for an unmarked item)
    mark: str = ""  # an item's gcSeen as stored ("" until marked)

    @property
    def key(self) -> str:
        """Its key in the state: kind and name (a table may be both an object and an item)."""
        g = self.garbage
        return f"{g.kind} {g.name} {g.upload_id}" if g.upload_id else f"{g.kind} {g.name}"


@dataclass
class _Listing:
    manifests: dict[str, frozenset[str]] = field(default_factory=dict)  # store -> tables it names
    items: dict[str, tuple[int, str]] = field(default_factory=dict)  # table -> (bytes, gcSeen or "")
    objects: dict[str, tuple[int, float]] = field(default_factory=dict)  # table -> (bytes, LastModified)
    uploads: list[tuple[str, str, float]] = field(default_factory=list)  # (key, upload id, Initiated)
    state_keys: list[str] = field(default_factory=list)
    now: float = 0.0

    def live(self) -> frozenset[str]:
        return frozenset().union(*self.manifests.values())


def collect_aws(location: AWSLocation, min_age: float, dry_run: bool, progress: ProgressFactory) -> GCReport:
    """Collect bucket and table of ``location`` (see the module docstring); the store part is ignored."""
    s3, ddb = location.clients()
    report = GCReport(f"aws://{location.table}:{location.bucket}", dry_run, min_age)
    listing = _list(s3, ddb, location, progress)
    state = S3State(s3, location.bucket, location.table)
    foreign = [k for k in listing.state_keys if k != state.key]
    if foreign:
        raise CollectionRefusedError(f"bucket {location.bucket} is also collected for another DynamoDB table "
                                     f"({', '.join(foreign)}): a bucket must serve the stores of one table")
    live = listing.live()
    report.live_tables = len(live)
    candidates = list(_candidates(listing, live))
    if not dry_run:
        _mark_items(ddb, location.table, listing, live, candidates)
    seen, ripe = age(((c.key, c.written) for c in candidates), state.load(report.warnings), listing.now, min_age)
    doomed = [c for c in candidates if c.key in ripe]
    report.waiting = [c.garbage for c in candidates if c.key not in ripe]
    if dry_run:
        report.deleted = [c.garbage for c in doomed]
        return report
    state.save(seen)
    _delete(s3, ddb, location, listing, doomed, report, seen, progress)
    state.save(seen)
    return report


def _candidates(listing: _Listing, live: frozenset[str]) -> Iterator[_Candidate]:
    """Everything unreferenced; an unmarked item counts as written now (it existed at least since now)."""
    for name, (size, modified) in listing.objects.items():
        if name not in live:
            yield _Candidate(Garbage(S3_OBJECT, name, size), modified)
    for key, upload_id, initiated in listing.uploads:
        yield _Candidate(Garbage(UPLOAD, key, 0, upload_id), initiated)
    for name, (size, mark) in listing.items.items():
        if name not in live:
            yield _Candidate(Garbage(ITEM, name, size), float(mark) if mark else listing.now, mark)


def _list(s3: S3Client, ddb: DynamoDBClient, location: AWSLocation, progress: ProgressFactory) -> _Listing:
    listing = _Listing()
    bar = progress("list", None, "key")
    try:
        _scan_dynamo(ddb, location.table, listing, bar.update)
        if not listing.manifests:
            raise CollectionRefusedError(f"DynamoDB table {location.table} holds no store manifest: refusing to "
                                         f"collect bucket {location.bucket} (is this the table its stores use?)")
        _list_objects(s3, location.bucket, listing, bar.update)
        _list_uploads(s3, location.bucket, listing)
    finally:
        bar.close()
    return listing


def _scan_dynamo(ddb: DynamoDBClient, table: str, listing: _Listing, advance: Any) -> None:
    with aws_call(f"Scan {table}"):
        for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for item in page.get("Items", []):
                key = item.get(DB_ATTR, {}).get("S")
                if not isinstance(key, str):
                    continue
                if not key.startswith(TABLE_KEY_PREFIX):
                    listing.manifests[key] = _names(item, table, key)
                elif Addr.maybe_parse(key[1:]) is not None:
                    data = item.get(DATA_ATTR, {}).get("B")
                    listing.items[key[1:]] = (len(data) if isinstance(data, bytes) else 0,
                                              str(item.get(MARK_ATTR, {}).get("N", "")))
            advance(len(page.get("Items", [])))


def _names(item: dict[str, Any], table: str, store: str) -> frozenset[str]:
    """The tables a manifest item names; an item that does not parse stops the collection."""
    try:
        contents = parse_manifest_item(item, f"dynamodb:{table}/{store}")
    except ManifestError as err:
        raise CollectionRefusedError(f"cannot tell what store {store!r} references: {err}") from err
    return frozenset(str(s.name) for s in contents.specs)


def _list_objects(s3: S3Client, bucket: str, listing: _Listing, advance: Any) -> None:
    with aws_call(f"ListObjectsV2 s3://{bucket}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            if not listing.now:
                listing.now = _server_time(page)
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.startswith(S3_STATE_PREFIX):
                    listing.state_keys.append(key)
                elif Addr.maybe_parse(key) is not None:
                    listing.objects[key] = (obj["Size"], obj["LastModified"].timestamp())
            advance(len(page.get("Contents", [])))


def _list_uploads(s3: S3Client, bucket: str, listing: _Listing) -> None:
    with aws_call(f"ListMultipartUploads s3://{bucket}"):
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                if Addr.maybe_parse(upload["Key"]) is not None:
                    listing.uploads.append((upload["Key"], upload["UploadId"], upload["Initiated"].timestamp()))


def _server_time(reply: Any) -> float:
    """The server's clock from a reply's ``Date`` header (the local clock if it has none)."""
    date = reply.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return email.utils.parsedate_to_datetime(date).timestamp() if date else time.time()
    except (TypeError, ValueError):
        return time.time()


def _mark_items(ddb: DynamoDBClient, table: str, listing: _Listing, live: frozenset[str],
                candidates: list[_Candidate]) -> None:
    """Mark unmarked unreferenced items as existing now; unmark items a manifest names again."""
    stamp = f"{listing.now:.3f}"
    for c in candidates:
        if c.garbage.kind == ITEM and not c.mark and _update_item(
                ddb, table, c.garbage.name, f"SET {MARK_ATTR} = :now",
                f"attribute_exists({DB_ATTR}) AND attribute_not_exists({MARK_ATTR})", {":now": {"N": stamp}}):
            c.mark = stamp
    for name, (_, mark) in listing.items.items():
        if mark and name in live:
            _update_item(ddb, table, name, f"REMOVE {MARK_ATTR}", f"attribute_exists({DB_ATTR})", None)


def _update_item(ddb: DynamoDBClient, table: str, name: str, update: str, condition: str,
                 values: dict[str, Any] | None) -> bool:
    """A conditional ``UpdateItem`` of table item ``*name``; False when its condition failed."""
    request: dict[str, Any] = {"TableName": table, "Key": table_key(Addr.parse(name)), "UpdateExpression": update,
                               "ConditionExpression": condition}
    if values:
        request["ExpressionAttributeValues"] = values
    return _conditional(f"UpdateItem {table}/*{name}", lambda: ddb.update_item(**request))


def _conditional(action: str, request: Callable[[], object]) -> bool:
    """Run a conditional DynamoDB write; False when its condition failed."""
    with aws_call(action):
        try:
            request()
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                return False
            raise
    return True


def _delete(s3: S3Client, ddb: DynamoDBClient, location: AWSLocation, listing: _Listing,
            doomed: list[_Candidate], report: GCReport, seen: dict[str, float], progress: ProgressFactory) -> None:
    bar = progress("delete", len(doomed), "key")
    try:
        for start in range(0, len(doomed), BATCH):
            live = _reread_manifests(ddb, location.table, list(listing.manifests))
            for c in doomed[start:start + BATCH]:
                _delete_unless_named(s3, ddb, location, listing, c, live, report, seen)
                bar.update(1)
    finally:
        bar.close()


def _delete_unless_named(s3: S3Client, ddb: DynamoDBClient, location: AWSLocation, listing: _Listing,
                         c: _Candidate, live: frozenset[str], report: GCReport, seen: dict[str, float]) -> None:
    g = c.garbage
    if g.kind != UPLOAD and g.name in live:  # a commit named it since the listing: live again
        seen.pop(c.key, None)
        return
    try:
        outcome = _delete_one(s3, ddb, location, listing, c)
    except AWSError as err:
        report.failed.append((g, str(err)))
        return
    if outcome is _Outcome.SPARED:
        report.waiting.append(g)
        return
    seen.pop(c.key, None)
    if outcome is _Outcome.DELETED:
        report.deleted.append(g)


class _Outcome(enum.Enum):
    DELETED = enum.auto()
    SPARED = enum.auto()  # written again since the listing, or its mark could not be set
    GONE = enum.auto()  # someone else deleted it first


def _delete_one(s3: S3Client, ddb: DynamoDBClient, location: AWSLocation, listing: _Listing,
                c: _Candidate) -> _Outcome:
    g, bucket, table = c.garbage, location.bucket, location.table
    if g.kind == ITEM:
        if not c.mark:  # marking failed: someone else is at it, or the item is gone
            return _Outcome.SPARED
        name = Addr.parse(g.name)
        deleted = _conditional(f"DeleteItem {table}/*{name}", lambda: ddb.delete_item(
            TableName=table, Key=table_key(name), ConditionExpression=f"{MARK_ATTR} = :seen",
            ExpressionAttributeValues={":seen": {"N": c.mark}}))
        return _Outcome.DELETED if deleted else _Outcome.SPARED
    try:
        if g.kind == UPLOAD:
            with aws_call(f"AbortMultipartUpload s3://{bucket}/{g.name}"):
                s3.abort_multipart_upload(Bucket=bucket, Key=g.name, UploadId=g.upload_id)
            return _Outcome.DELETED
        with aws_call(f"HeadObject s3://{bucket}/{g.name}"):
            modified = s3.head_object(Bucket=bucket, Key=g.name)["LastModified"].timestamp()
    except AWSError as err:
        if err.code in NOT_FOUND_CODES or err.code == "NoSuchUpload":
            return _Outcome.GONE
        raise
    if modified != listing.objects[g.name][1]:
        return _Outcome.SPARED
    with aws_call(f"DeleteObject s3://{bucket}/{g.name}"):
        s3.delete_object(Bucket=bucket, Key=g.name)
    return _Outcome.DELETED


def _reread_manifests(ddb: DynamoDBClient, table: str, stores: list[str]) -> frozenset[str]:
    """Tables named now by the manifests of ``stores`` (consistent reads, 100 stores a request)."""
    live: set[str] = set()
    for start in range(0, len(stores), BATCH_GET_LIMIT):
        keys: list[Any] = [{DB_ATTR: {"S": s}} for s in stores[start:start + BATCH_GET_LIMIT]]
        while keys:
            with aws_call(f"BatchGetItem {table}"):
                reply = ddb.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
            for item in reply.get("Responses", {}).get(table, []):
                live |= _names(item, table, str(item[DB_ATTR]["S"]))
            unprocessed: Any = reply.get("UnprocessedKeys") or {}
            keys = list(unprocessed.get(table, {}).get("Keys", []))
    return frozenset(live)
