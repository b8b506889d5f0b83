"""``AWS_REGION`` reaches stores opened by spec and the daemon's stores, over a moto server that keeps
DynamoDB tables per region: a store whose table exists only in another region than
``AWS_DEFAULT_REGION``'s opens only if ``AWS_REGION`` was honoured."""

from __future__ import annotations

import pytest

import nbsclient
from nbs.errors import DynamoTableNotFoundError
from nbs.factory import open_store
from tests.conftest import AWSLocation
from tests.daemon_harness import Daemon

ELSEWHERE = "eu-west-3"  # the test environment's AWS_DEFAULT_REGION is us-east-1

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def table_elsewhere(aws_location: AWSLocation) -> str:
    return aws_location.server.create_table(region=ELSEWHERE)


def test_spec_opened_store_takes_aws_region(aws_location: AWSLocation, table_elsewhere: str, store_name: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    spec = f"aws://{table_elsewhere}:{aws_location.bucket}/{store_name}?endpoint={aws_location.endpoint}"
    with pytest.raises(DynamoTableNotFoundError):
        open_store(spec)
    monkeypatch.setenv("AWS_REGION", ELSEWHERE)
    store = open_store(spec)
    h = store.put(b"in another region")
    assert store.commit(h, store.root())


def test_nbsd_takes_aws_region(aws_location: AWSLocation, table_elsewhere: str, store_name: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    place = f"{table_elsewhere}:{aws_location.bucket}"
    with Daemon(env={"AWS_REGION": ELSEWHERE},
                extra=["--aws-endpoint", aws_location.endpoint, "--aws-store", f"{place}/*"]) as daemon:
        with nbsclient.connect(f"aws://{place}/{store_name}", daemon.endpoint) as store:
            h = store.put(b"written by nbsd in another region")
            assert store.commit(h, store.root())
    monkeypatch.setenv("AWS_REGION", ELSEWHERE)
    assert open_store(f"aws://{place}/{store_name}?endpoint={aws_location.endpoint}").root() == h
