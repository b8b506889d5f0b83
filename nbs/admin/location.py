"""What an ``nbs verify`` / ``nbs gc`` SPEC names: a local store directory, or an AWS bucket and
DynamoDB table with or without one store."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nbs.errors import SpecError, StoreNotFoundError
from nbs.file_manifest import FileManifest
from nbs.manifest import ManifestContents
from nbs.spec import local_path, parse_store_spec
from nbs.stats import Stats

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class LocalLocation:
    directory: str

    def __str__(self) -> str:
        return self.directory

    def manifest(self) -> ManifestContents:
        """The store's manifest; a directory without one is no store (``StoreNotFoundError``)."""
        if not os.path.isdir(self.directory):
            raise StoreNotFoundError(f"store directory {self.directory!r} does not exist")
        contents = FileManifest(self.directory).parse_if_exists(Stats())
        if contents is None:
            raise StoreNotFoundError(f"{self.directory} holds no manifest: not a store")
        return contents


@dataclass(frozen=True)
class AWSLocation:
    """DynamoDB table ``table`` (manifests and small tables) and S3 bucket ``bucket``; ``store`` may be empty."""

    table: str
    bucket: str
    store: str
    region: str | None
    profile: str | None
    endpoint_url: str | None

    def __str__(self) -> str:
        return f"aws://{self.table}:{self.bucket}" + (f"/{self.store}" if self.store else "")

    def clients(self) -> tuple[S3Client, DynamoDBClient]:
        return _clients(self.region, self.profile, self.endpoint_url)


@functools.cache
def _clients(region: str | None, profile: str | None, endpoint_url: str | None) -> tuple[S3Client, DynamoDBClient]:
    """One pair of clients per process and settings: building them costs a second of CPU (service models)."""
    from nbs.aws_factory import AWSSettings, aws_clients

    return aws_clients(AWSSettings(region, profile, endpoint_url).session(), endpoint_url)


Location = LocalLocation | AWSLocation


def parse_location(text: str, need_store: bool) -> Location:
    """Parse a SPEC; AWS specs may leave out the store unless ``need_store``."""
    spec = parse_store_spec(text, bucket_only=True)
    if spec.protocol == "mem":
        raise SpecError("a memory store keeps nothing to verify or collect")
    if spec.protocol == "nbs":
        return LocalLocation(local_path(spec))
    if need_store and not spec.name:
        raise SpecError(f"{text!r} names no store: want aws://table:bucket/store")
    from nbs.aws_factory import AWSSettings

    settings = AWSSettings.from_options(spec.options)
    return AWSLocation(spec.table, spec.bucket, spec.name, settings.region, settings.profile, settings.endpoint_url)
