"""Fixtures shared by every suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daemon_harness import Daemon


@pytest.fixture(scope="session")
def nbsd_daemon() -> Iterator[Daemon]:
    """One real daemon per test worker, for tests that only need a running nbsd."""
    with Daemon() as daemon:
        yield daemon
