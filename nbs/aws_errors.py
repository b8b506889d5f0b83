"""Translation of botocore failures into the typed errors of ``nbs.errors``.

Every AWS call of the library runs inside ``aws_call``, so callers never see a
raw ``ClientError``: they get an ``AWSError`` subclass that says what kind of
failure it was, keeps the AWS error code and request id, and chains the
botocore exception as its cause.  botocore has already retried throttling,
5xx answers and connection failures (standard retry mode) by the time an
error reaches this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError, CredentialRetrievalError,
                                 EndpointConnectionError, HTTPClientError, IncompleteReadError,
                                 NoCredentialsError, NoRegionError, PartialCredentialsError, ProfileNotFound)

from nbs.errors import (AccessDeniedError, AWSError, AWSUnavailableError, BucketNotFoundError, CredentialsError,
                        DynamoTableNotFoundError)

_BY_CODE: dict[str, type[AWSError]] = {
    "NoSuchBucket": BucketNotFoundError,
    "ResourceNotFoundException": DynamoTableNotFoundError,
    **dict.fromkeys(("AccessDenied", "AccessDeniedException", "AllAccessDisabled", "AuthorizationError",
                     "Forbidden"), AccessDeniedError),
    **dict.fromkeys(("InvalidAccessKeyId", "SignatureDoesNotMatch", "UnrecognizedClientException",
                     "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "InvalidToken",
                     "TokenRefreshRequired", "MissingAuthenticationToken", "MissingAuthenticationTokenException",
                     "InvalidSignatureException", "IncompleteSignature", "IncompleteSignatureException",
                     "RequestExpired", "RequestTimeTooSkewed"), CredentialsError),
    **dict.fromkeys(("Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
                     "RequestThrottledException", "ProvisionedThroughputExceededException",
                     "RequestLimitExceeded", "TooManyRequestsException", "SlowDown", "InternalError",
                     "InternalServerError", "ServiceUnavailable", "RequestTimeout"), AWSUnavailableError),
}

_CREDENTIAL_FAILURES = (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError, ProfileNotFound)
_NETWORK_FAILURES = (EndpointConnectionError, ConnectTimeoutError, HTTPClientError, IncompleteReadError)


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def translate(err: BotoCoreError | ClientError, action: str) -> AWSError:
    """The typed error for a botocore failure of ``action`` (e.g. ``GetItem nbs/db``)."""
    if isinstance(err, ClientError):
        code = error_code(err)
        meta = err.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        kind = _BY_CODE.get(code)
        if kind is None:
            # Unknown codes are classified by status; moto's DynamoDB, for one, reports auth failures as bare 403s.
            kind = (AccessDeniedError if status in (401, 403)
                    else AWSUnavailableError if isinstance(status, int) and status >= 500 else AWSError)
        message = str(err.response.get("Error", {}).get("Message", ""))
        return kind(action, code or f"HTTP {status}", message, meta.get("RequestId"), status)
    name = type(err).__name__
    if isinstance(err, _CREDENTIAL_FAILURES):
        return CredentialsError(action, name, str(err))
    if isinstance(err, _NETWORK_FAILURES):
        return AWSUnavailableError(action, name, str(err))
    if isinstance(err, NoRegionError):
        return AWSError(action, name, "no AWS region configured: pass region=..., or set AWS_REGION")
    return AWSError(action, name, str(err))


@contextmanager
def aws_call(action: str) -> Iterator[None]:
    """Run an AWS request, re-raising botocore failures as typed ``AWSError``s."""
    try:
        yield
    except (ClientError, BotoCoreError) as err:
        raise translate(err, action) from err
