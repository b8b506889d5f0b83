from collections.abc import Iterator

import pytest

from nbs.io_pool import IOPool


@pytest.fixture
def pool() -> Iterator[IOPool]:
    """I/O threads for AWS code under test."""
    pool = IOPool(4)
    yield pool
    pool.shutdown()
