"""Typed errors from a real server: missing bucket or table, bad credentials, access denied.

Credential and permission checks use a second moto server that enforces IAM
once it is set up.  moto checks S3 requests as AWS does (InvalidAccessKeyId,
AccessDenied); its DynamoDB answers both failures with a bare HTTP 403, which
the library reports as ``AccessDeniedError`` (``CredentialsError`` is a
subclass, so callers catching access problems see both).  The DynamoDB codes
real AWS sends are covered in tests/unit/test_aws_errors.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from nbs.addr import EMPTY_ADDR, Addr
from nbs.aws_factory import AWSStoreFactory, aws_clients, new_aws_store
from nbs.aws_table_persister import AWSTablePersister
from nbs.dynamo_table_store import DynamoTableStore
from nbs.errors import (AccessDeniedError, BucketNotFoundError, CredentialsError, DynamoTableNotFoundError,
                        StoreNotFoundError, TableAccessDeniedError)
from nbs.io_pool import IOPool
from nbs.s3_objects import S3Objects
from nbs.stats import Stats
from tests.aws_server import REGION, MotoServer, moto_server_running, unique_name
from tests.conftest import AWSLocation

S3_TABLE = [os.urandom(100) for _ in range(70)]  # more than 64 chunks: an S3 table


def test_missing_dynamodb_table(aws_location: AWSLocation, store_name: str) -> None:
    s3, ddb = aws_location.server.clients()
    with pytest.raises(DynamoTableNotFoundError) as err:
        new_aws_store("no-such-table", store_name, aws_location.bucket, s3, ddb)
    assert isinstance(err.value, StoreNotFoundError)
    assert "no-such-table" in str(err.value) and err.value.code == "ResourceNotFoundException"


def test_missing_bucket(aws_location: AWSLocation, tmp_path: Path, store_name: str) -> None:
    with AWSStoreFactory(aws_location.server.session(), aws_location.table, "no-such-bucket",
                         endpoint_url=aws_location.endpoint) as factory:
        store = factory.create_store(store_name)
        for chunk in S3_TABLE:
            store.put(chunk)
        with pytest.raises(BucketNotFoundError) as err:
            store.commit(EMPTY_ADDR, EMPTY_ADDR)
        assert "no-such-bucket" in str(err.value) and err.value.request_id


@dataclass
class AuthServer:
    server: MotoServer
    table: str
    bucket: str
    key_id: str
    secret: str

    def clients(self, key_id: str, secret: str) -> tuple[Any, Any]:
        session = boto3.Session(aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=REGION)
        return aws_clients(session, self.server.endpoint)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """A server whose only user may read the manifest table but neither write it nor use S3."""
    with moto_server_running(tmp_path_factory.mktemp("moto-auth")) as server:
        iam = boto3.client("iam", endpoint_url=server.endpoint, region_name=REGION)
        iam.create_user(UserName="reader")
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        policy = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"}]}
        iam.put_user_policy(UserName="reader", PolicyName="read-manifests", PolicyDocument=json.dumps(policy))
        auth = AuthServer(server, server.create_table(), server.create_bucket(),
                          key["AccessKeyId"], key["SecretAccessKey"])
        server.enforce_auth()
        yield auth


def open_s3_table(auth: AuthServer, s3: Any, ddb: Any) -> None:
    """Open a table of more than 64 chunks: a suffix-range GET in S3, no DynamoDB request."""
    pool = IOPool(1)
    try:
        AWSTablePersister(S3Objects(s3, auth.bucket, pool), DynamoTableStore(ddb, auth.table)).open(
            Addr.of(b"a table"), 100, Stats())
    finally:
        pool.shutdown()


def test_bad_credentials(auth_server: AuthServer) -> None:
    s3, ddb = auth_server.clients("AKIAUNKNOWNKEY000000", "wrong")
    with pytest.raises(AccessDeniedError):
        new_aws_store(auth_server.table, unique_name("s"), auth_server.bucket, s3, ddb)
    with pytest.raises(CredentialsError) as err:
        open_s3_table(auth_server, s3, ddb)
    assert err.value.code == "InvalidAccessKeyId" and err.value.request_id


def test_access_denied(auth_server: AuthServer) -> None:
    s3, ddb = auth_server.clients(auth_server.key_id, auth_server.secret)
    store = new_aws_store(auth_server.table, unique_name("s"), auth_server.bucket, s3, ddb)
    assert store.root() == EMPTY_ADDR  # GetItem is allowed
    with pytest.raises(AccessDeniedError) as err:
        store.commit(Addr.of(b"root"), EMPTY_ADDR)  # PutItem is not
    assert not isinstance(err.value, CredentialsError)
    with pytest.raises(TableAccessDeniedError) as s3_err:  # an AccessDeniedError that says what 403 may hide
        open_s3_table(auth_server, s3, ddb)
    assert s3_err.value.code == "AccessDenied" and s3_err.value.request_id and s3_err.value.status == 403
    assert f"the table may be missing: without s3:ListBucket on arn:aws:s3:::{auth_server.bucket}" in str(s3_err.value)
    assert isinstance(s3_err.value, AccessDeniedError) and not isinstance(s3_err.value, CredentialsError)
