"""Fixtures shared by every suite.

AWS: the whole session runs with dummy credentials and no route to real AWS
(``isolate_aws_environment``, inherited by every subprocess); ``moto_server``
is one moto server per test session (per xdist worker), and ``aws_location``
a DynamoDB table and S3 bucket in it shared by the session's tests, which use
fresh store names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.aws_server import MotoServer, isolate_aws_environment, load_aws_small, moto_server_running, unique_name
from tests.daemon_harness import Daemon

isolate_aws_environment()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test's report ends with the log of each daemon still running (see ``Daemon``)."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        for daemon in list(Daemon.live):
            report.sections.append((f"end of the nbsd log {daemon.log}", daemon.log_tail()))


@pytest.fixture(scope="session")
def nbsd_daemon() -> Iterator[Daemon]:
    """One real daemon per test worker, for tests that only need a running nbsd."""
    with Daemon() as daemon:
        yield daemon


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with moto_server_running(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def nbsd_aws_daemon(aws_location: AWSLocation) -> Iterator[Daemon]:
    """A real daemon whose AWS endpoint is the session's moto server; it serves the stores of ``aws_location``."""
    with Daemon(extra=["--aws-endpoint", aws_location.endpoint, "--aws-store", aws_location.pattern,
                       "--table-cache-size", "64MiB"]) as daemon:
        yield daemon


@dataclass(frozen=True)
class AWSLocation:
    """A DynamoDB table and an S3 bucket on the test server."""

    server: MotoServer
    table: str
    bucket: str

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def spec(self, store: str) -> str:
        return f"aws://{self.table}:{self.bucket}/{store}?endpoint={self.endpoint}"

    @property
    def pattern(self) -> str:
        """The ``aws_stores`` pattern that lets a daemon serve every store here."""
        return f"{self.table}:{self.bucket}/*"


@pytest.fixture(scope="session")
def aws_location(moto_server: MotoServer) -> AWSLocation:
    return AWSLocation(moto_server, moto_server.create_table(), moto_server.create_bucket())


@pytest.fixture(scope="session")
def aws_small(moto_server: MotoServer) -> tuple[MotoServer, str, str]:
    """The aws-small fixture loaded into the session's moto server: (server, DynamoDB table, bucket)."""
    return (moto_server, *load_aws_small(moto_server))


@pytest.fixture
def store_name() -> str:
    return unique_name("store")
