"""botocore failures become typed errors that keep the AWS code, request id and cause.

Real-server checks (moto) are in tests/integration/test_aws_errors.py; this
covers the codes real AWS sends that moto does not imitate, e.g. DynamoDB's
``UnrecognizedClientException`` for a bad key and throttling codes.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import (BotoCoreError, EndpointConnectionError, NoCredentialsError, NoRegionError,
                                 ProfileNotFound, ResponseStreamingError)

from nbs.aws_errors import aws_call, translate
from nbs.errors import (AccessDeniedError, AWSError, AWSUnavailableError, BucketNotFoundError, CredentialsError,
                        DynamoTableNotFoundError, NBSError, StoreNotFoundError)
from tests.unit.aws_fakes import client_error


@pytest.mark.parametrize("code, status, kind", [
    ("NoSuchBucket", 404, BucketNotFoundError),
    ("ResourceNotFoundException", 400, DynamoTableNotFoundError),
    ("AccessDenied", 403, AccessDeniedError),
    ("AccessDeniedException", 400, AccessDeniedError),
    ("InvalidAccessKeyId", 403, CredentialsError),
    ("SignatureDoesNotMatch", 403, CredentialsError),
    ("UnrecognizedClientException", 400, CredentialsError),
    ("InvalidClientTokenId", 403, CredentialsError),
    ("ExpiredToken", 400, CredentialsError),
    ("ExpiredTokenException", 400, CredentialsError),
    ("ProvisionedThroughputExceededException", 400, AWSUnavailableError),
    ("ThrottlingException", 400, AWSUnavailableError),
    ("SlowDown", 503, AWSUnavailableError),
    ("InternalError", 500, AWSUnavailableError),
    ("403", 403, AccessDeniedError),  # moto's DynamoDB answers auth failures with a bare 403
    ("SomethingNew", 503, AWSUnavailableError),
    ("SomethingNew", 400, AWSError),
])
def test_client_errors(code: str, status: int, kind: type[AWSError]) -> None:
    err = translate(client_error(code, "GetItem", status, request_id="RID-1"), "GetItem t/db")
    assert type(err) is kind
    assert (err.code, err.status, err.request_id, err.action) == (code, status, "RID-1", "GetItem t/db")
    assert "RID-1" in str(err) and code in str(err) and "GetItem t/db" in str(err)


def test_missing_bucket_and_table_are_store_not_found() -> None:
    assert isinstance(translate(client_error("NoSuchBucket", "GetObject", 404), "x"), StoreNotFoundError)
    assert isinstance(translate(client_error("ResourceNotFoundException", "GetItem"), "x"), StoreNotFoundError)


@pytest.mark.parametrize("failure, kind", [
    (NoCredentialsError(), CredentialsError),
    (ProfileNotFound(profile="nope"), CredentialsError),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), AWSUnavailableError),
    (ResponseStreamingError(error=ConnectionResetError()), AWSUnavailableError),
    (NoRegionError(), AWSError),
])
def test_botocore_errors(failure: BotoCoreError, kind: type[AWSError]) -> None:
    err = translate(failure, "PutItem t/db")
    assert type(err) is kind and err.request_id is None and err.code == type(failure).__name__


def test_aws_call_chains_the_cause() -> None:
    cause = client_error("AccessDenied", "GetObject", 403)
    with pytest.raises(AccessDeniedError) as caught:
        with aws_call("GetObject s3://b/k"):
            raise cause
    assert caught.value.__cause__ is cause
    assert isinstance(caught.value, NBSError)


def test_aws_call_leaves_other_errors_alone() -> None:
    with pytest.raises(KeyError):
        with aws_call("x"):
            raise KeyError("not an AWS failure")
