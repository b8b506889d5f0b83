"""A store's manifest as one DynamoDB item, updated with a conditional put (NBS-FORMAT.md section 5.4).

The item is keyed ``db`` = store name and carries ``nbsVers``, ``vers``,
``root``, ``lck`` (``lock`` is a DynamoDB reserved word) and, only when the
store names tables, ``specs``.  Reads are strongly consistent.  An update is
a ``PutItem`` conditioned on the stored lock (and Noms version); when the
condition fails the current item is read back and returned, which is how the
store learns it lost an optimistic race.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from nbs.addr import ADDR_SIZE, Addr
from nbs.aws_errors import aws_call, error_code
from nbs.errors import ManifestError, VersionMismatchError
from nbs.manifest import (NOMS_VERSION, STORAGE_VERSION, Hook, Manifest, ManifestContents, format_specs,
                          parse_specs)
from nbs.stats import Stats

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DB_ATTR = "db"
NBS_VERS_ATTR = "nbsVers"
VERS_ATTR = "vers"
ROOT_ATTR = "root"
LOCK_ATTR = "lck"
SPECS_ATTR = "specs"

# The conditions Go writes, character for character (AND binds tighter than OR).
FIRST_WRITE_CONDITION = "attribute_not_exists(lck) or (lck = :prev) and (vers = :vers)"
UPDATE_CONDITION = "(lck = :prev) and (vers = :vers)"

Item = dict[str, Any]


def manifest_item(namespace: str, contents: ManifestContents) -> Item:
    """The DynamoDB item Go writes for ``contents`` (``specs`` left out when there are no tables)."""
    item: Item = {
        DB_ATTR: {"S": namespace},
        NBS_VERS_ATTR: {"S": STORAGE_VERSION},
        VERS_ATTR: {"S": contents.vers},
        ROOT_ATTR: {"B": bytes(contents.root)},
        LOCK_ATTR: {"B": bytes(contents.lock)},
    }
    if contents.specs:
        item[SPECS_ATTR] = {"S": format_specs(contents.specs)}
    return item


def _value(item: Item, attr: str, kind: str) -> Any:
    value = item.get(attr)
    return value.get(kind) if isinstance(value, dict) else None


def parse_manifest_item(item: Item, source: str) -> ManifestContents:
    """Validate a manifest item as Go does; anything else raises ``ManifestError``.

    Unlike Go, a ``lck`` that is not exactly 20 bytes is rejected rather than
    padded or truncated (a padded lock could never match again, so every
    commit would loop), and an odd ``specs`` field list is an error.
    """
    nbs_vers = _value(item, NBS_VERS_ATTR, "S")
    vers, root, lock = _value(item, VERS_ATTR, "S"), _value(item, ROOT_ATTR, "B"), _value(item, LOCK_ATTR, "B")
    specs = _value(item, SPECS_ATTR, "S")
    if isinstance(nbs_vers, str) and nbs_vers != STORAGE_VERSION:
        raise VersionMismatchError(source, f"storage version {nbs_vers!r}, this code reads {STORAGE_VERSION!r}")
    shaped = (len(item) == 6 and isinstance(specs, str)) or len(item) == 5
    if not (shaped and nbs_vers == STORAGE_VERSION and isinstance(vers, str)
            and isinstance(root, bytes) and isinstance(lock, bytes)):
        raise ManifestError(source, f"malformed manifest item with attributes {sorted(item)}")
    if len(root) != ADDR_SIZE or len(lock) != ADDR_SIZE:
        raise ManifestError(source, f"root and lck must be {ADDR_SIZE} bytes, got {len(root)} and {len(lock)}")
    fields = specs.split(":") if specs else []
    return ManifestContents(vers, Addr(lock), Addr(root), parse_specs(fields, source))


class DynamoManifest(Manifest):
    """The manifest of store ``namespace`` in DynamoDB table ``table``."""

    def __init__(self, ddb: DynamoDBClient, table: str, namespace: str) -> None:
        if not table or not namespace:
            raise ValueError("a DynamoDB manifest needs a table name and a store name")
        self._ddb = ddb
        self.table = table
        self.namespace = namespace
        self._source = f"dynamodb:{table}/{namespace}"

    def name(self) -> str:
        # Go concatenates without a separator; the name only keys in-process caches and locks.
        return self.table + self.namespace

    def parse_if_exists(self, stats: Stats, read_hook: Hook | None = None) -> ManifestContents | None:
        """The stored contents (consistent read), or None for a store never committed."""
        started = time.perf_counter_ns()
        try:
            with aws_call(f"GetItem {self._source}"):
                reply = self._ddb.get_item(TableName=self.table, Key={DB_ATTR: {"S": self.namespace}},
                                           ConsistentRead=True)
        finally:
            stats.read_manifest_latency.sample_time(started)
        item = reply.get("Item")
        return parse_manifest_item(item, self._source) if item else None

    def update(self, last_lock: Addr, new: ManifestContents, stats: Stats,
               write_hook: Hook | None = None) -> ManifestContents:
        """Put ``new`` if the stored lock is ``last_lock``; else return what is stored.

        ``write_hook`` is unused, as in Go.
        """
        started = time.perf_counter_ns()
        condition = FIRST_WRITE_CONDITION if last_lock.is_empty() else UPDATE_CONDITION
        lost_race = False
        try:
            with aws_call(f"PutItem {self._source}"):
                try:
                    self._ddb.put_item(TableName=self.table, Item=manifest_item(self.namespace, new),
                                       ConditionExpression=condition,
                                       ExpressionAttributeValues={":prev": {"B": bytes(last_lock)},
                                                                  ":vers": {"S": new.vers}})
                except ClientError as err:
                    if error_code(err) != "ConditionalCheckFailedException":
                        raise
                    lost_race = True
        finally:
            stats.write_manifest_latency.sample_time(started)
        return self._upstream(stats) if lost_race else new

    def _upstream(self, stats: Stats) -> ManifestContents:
        """What beat our conditional put; it must be a manifest this code may update."""
        current = self.parse_if_exists(stats)
        if current is None:
            raise ManifestError(self._source, "conditional update failed but no manifest exists")
        if current.vers != NOMS_VERSION:
            raise VersionMismatchError(self._source, f"won't clobber a store of Noms version {current.vers!r}")
        return current
