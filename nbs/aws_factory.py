"""Constructors for AWS stores: ``new_aws_store``, ``AWSStoreFactory`` and ``open_aws_store`` (spec strings).

An AWS store keeps its manifest as an item of a DynamoDB table (key ``db`` =
store name) and its tables as S3 objects or, when small, as items of the same
DynamoDB table.  Many stores can share one bucket and one DynamoDB table.

``new_aws_store`` follows Go's ``NewAWSStore``: the caller's clients, the
process-wide caches, a rate limit of 32 requests, no table caches.
``AWSStoreFactory`` follows ``NewAWSStoreFactory``, for a process serving many
stores: private manifest and index caches, a 256 MiB cache of DynamoDB
tables, an optional on-disk cache of S3 tables, a rate limit of 1024
requests and its own I/O threads.  Everything it hands out is thread-safe,
and fork-safe: a forked child builds its own clients, threads and locks on
first use.

Clients are built from a boto3 session with the usual credential chain.
Region, profile and endpoint URL come from arguments or spec options, else
from the environment (``AWS_REGION``, then ``AWS_DEFAULT_REGION``; ``AWS_PROFILE``;
``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL_DYNAMODB``).
boto3 itself reads only ``AWS_DEFAULT_REGION``, so ``AWS_REGION`` is applied here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config

from nbs.aws_errors import aws_call
from nbs.aws_table_persister import AWSLimits, AWSTablePersister
from nbs.conjoiner import AWS_MAX_TABLES, DEFAULT_MAX_TABLES, InlineConjoiner
from nbs.dynamo_manifest import DynamoManifest
from nbs.dynamo_table_store import DynamoTableStore
from nbs.factory import DEFAULT_INDEX_CACHE_SIZE, DEFAULT_MAX_OPEN_FILES, SharedCaches, global_caches
from nbs.forksafe import Semaphore
from nbs.fs_table_cache import FSTableCache
from nbs.io_pool import DEFAULT_IO_THREADS, IOPool
from nbs.manifest import ManifestContents
from nbs.manifest_manager import ManifestManager
from nbs.process_client import ProcessClient, process_client
from nbs.size_cache import SizeCache
from nbs.s3_objects import S3Objects
from nbs.spec import StoreSpec
from nbs.store import NomsBlockStore
from nbs.store_name import validate_store_name

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

AWS_STORE_READ_LIMIT = 32
DEFAULT_AWS_READ_LIMIT = 1024
DEFAULT_SMALL_TABLE_CACHE_SIZE = 256 << 20
AWS_RETRY_ATTEMPTS = 10


@dataclass(frozen=True)
class AWSSettings:
    """Where and as whom to reach AWS; None means "as the environment says"."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> AWSSettings:
        """From spec options ``region``, ``profile``, ``endpoint`` (unset ones come from the environment)."""
        return cls(options.get("region") or None, options.get("profile") or None, options.get("endpoint") or None)

    def session(self) -> boto3.Session:
        with aws_call("open an AWS session"):
            return boto3.Session(profile_name=self.profile, region_name=_region(self.region))


def _region(region: str | None) -> str | None:
    """``region``, else ``AWS_REGION``; None leaves boto3 to ``AWS_DEFAULT_REGION`` and the profile."""
    return region or os.environ.get("AWS_REGION") or None


def aws_clients(session: boto3.Session | None = None, endpoint_url: str | None = None,
                max_pool_connections: int = 2 * DEFAULT_IO_THREADS,
                retry_attempts: int = AWS_RETRY_ATTEMPTS,
                read_timeout: float = 60.0) -> tuple[S3Client, DynamoDBClient]:
    """S3 and DynamoDB clients with standard retries (throttling, 5xx, resets) and a connection pool to match.

    ``retry_attempts`` counts the first try; with botocore's backoff (up to
    20 s a wait) the default rides out a minute of throttling.  A request
    unanswered for ``read_timeout`` seconds is retried like a failed one.
    The clients are fork-safe: a forked child builds its own on first use.
    """
    config = Config(max_pool_connections=max_pool_connections, read_timeout=read_timeout,
                    retries={"mode": "standard", "max_attempts": retry_attempts},
                    # Emulators and other custom endpoints do not resolve bucket subdomains.
                    s3={"addressing_style": "path"} if endpoint_url else None)

    def make(service: str) -> Any:
        with aws_call("create AWS clients"):
            maker: Any = session if session is not None else AWSSettings().session()  # this process's, if none given
            return maker.client(service, region_name=_region(maker.region_name), endpoint_url=endpoint_url,
                                config=config)

    return (cast("S3Client", ProcessClient(lambda: make("s3"))),
            cast("DynamoDBClient", ProcessClient(lambda: make("dynamodb"))))


def _require(table: str, bucket: str) -> None:
    if not table or not bucket:
        raise ValueError(f"an AWS store needs a DynamoDB table and an S3 bucket (got {table!r}, {bucket!r})")


_POOL = IOPool()  # the I/O threads of every ``new_aws_store`` store (started on first use)


def new_aws_store(table: str, namespace: str, bucket: str, s3: S3Client, ddb: DynamoDBClient,
                  memtable_size: int = 0, *, max_tables: int = DEFAULT_MAX_TABLES) -> NomsBlockStore:
    """Open (or start) store ``namespace`` (Go's ``NewAWSStore``; note the table, namespace, bucket order).

    The store may be used in a forked child; the caller's clients then drop the
    connections they inherited and open their own.
    """
    validate_store_name(namespace)
    _require(table, bucket)
    s3, ddb = process_client(s3), process_client(ddb)
    caches = global_caches()
    rate_limit = Semaphore(AWS_STORE_READ_LIMIT)
    persister = AWSTablePersister(S3Objects(s3, bucket, _POOL, rate_limit),
                                  DynamoTableStore(ddb, table, rate_limit), index_cache=caches.index_cache)
    manager = ManifestManager(DynamoManifest(ddb, table, namespace), caches.manifest_cache, caches.manifest_locks)
    return NomsBlockStore(manager, persister, InlineConjoiner(max_tables), memtable_size)


def open_aws_store(spec: StoreSpec, memtable_size: int = 0) -> NomsBlockStore:
    """The store an ``aws:`` spec names, with clients configured from its options and the environment."""
    settings = AWSSettings.from_options(spec.options)
    s3, ddb = aws_clients(settings.session(), settings.endpoint_url)
    return new_aws_store(spec.table, spec.name, spec.bucket, s3, ddb, memtable_size)


class AWSStoreFactory:
    """Many stores in one DynamoDB table and one S3 bucket, sharing caches, limits and threads."""

    def __init__(self, session: boto3.Session | None, table: str, bucket: str,
                 max_open_files: int = DEFAULT_MAX_OPEN_FILES, index_cache_size: int = DEFAULT_INDEX_CACHE_SIZE,
                 table_cache_size: int = 0, table_cache_dir: str = "", *, endpoint_url: str | None = None,
                 read_limit: int = DEFAULT_AWS_READ_LIMIT, io_threads: int = DEFAULT_IO_THREADS,
                 small_table_cache_size: int = DEFAULT_SMALL_TABLE_CACHE_SIZE,
                 limits: AWSLimits = AWSLimits(), max_tables: int = AWS_MAX_TABLES,
                 caches: SharedCaches | None = None, region: str | None = None,
                 profile: str | None = None, small_table_cache: SizeCache[bytes, bytes] | None = None) -> None:
        """``table_cache_size`` > 0 enables the on-disk table cache in ``table_cache_dir``;
        ``index_cache_size`` 0 disables the index cache; ``max_open_files`` bounds the table cache's descriptors.
        ``caches`` (instead of those two sizes) shares one process's budgets, e.g. the daemon's, across factories.
        ``region`` and ``profile`` build the session when ``session`` is None (a session carries its own).
        ``small_table_cache`` (instead of ``small_table_cache_size``) shares one budget for the bytes of tables
        kept in DynamoDB across factories: the daemon opens one factory per table and bucket."""
        _require(table, bucket)
        if session is not None and (region or profile):
            raise ValueError("give AWSStoreFactory a session or region/profile, not both")
        if table_cache_size > 0 and not table_cache_dir:
            raise ValueError("a table cache needs a directory")
        self.table = table
        self.bucket = bucket
        self.max_tables = max_tables
        self.caches = caches if caches is not None else SharedCaches.create(index_cache_size, max_open_files)
        self.table_cache = (FSTableCache(table_cache_dir, table_cache_size, self.caches.fd_cache)
                            if table_cache_size > 0 else None)
        if session is None:
            session = AWSSettings(region, profile).session()
        self.s3, self.ddb = aws_clients(session, endpoint_url, 2 * io_threads)
        self.pool = IOPool(io_threads)
        rate_limit = Semaphore(read_limit)
        small_tables = small_table_cache
        if small_tables is None and small_table_cache_size > 0:
            small_tables = SizeCache[bytes, bytes](small_table_cache_size)
        self.persister = AWSTablePersister(
            S3Objects(self.s3, bucket, self.pool, rate_limit, self.table_cache),
            DynamoTableStore(self.ddb, table, rate_limit, small_tables), limits=limits,
            index_cache=self.caches.index_cache)

    def _manager(self, name: str) -> ManifestManager:
        manifest = DynamoManifest(self.ddb, self.table, validate_store_name(name))
        return ManifestManager(manifest, self.caches.manifest_cache, self.caches.manifest_locks)

    def create_store(self, name: str, memtable_size: int = 0,
                     contents: ManifestContents | None = None) -> NomsBlockStore:
        """Open (or start) store ``name``; 0 means the default 128 MiB memtable.

        ``contents`` opens the store at that manifest view without reading the manifest.
        """
        return NomsBlockStore(self._manager(name), self.persister, InlineConjoiner(self.max_tables), memtable_size,
                              contents)

    def create_store_from_cache(self, name: str, memtable_size: int = 0) -> NomsBlockStore | None:
        """A store built from the factory's cached manifest without reading it (tables are still opened), or None."""
        entry = self.caches.manifest_cache.get(self._manager(name).name())
        if entry is None:
            return None
        return self.create_store(name, memtable_size, entry[0] if entry[0].vers else ManifestContents())

    def close(self) -> None:
        """Stop the I/O threads and close cached descriptors; stores of this factory become unusable."""
        self.persister.wait_for_cache_loads()
        self.pool.shutdown()
        self.caches.fd_cache.drop()

    def __enter__(self) -> AWSStoreFactory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
