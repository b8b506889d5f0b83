"""Processes racing commits on one AWS store: the optimistic lock loses no commit."""

from __future__ import annotations

import time

import pytest

from nbs.aws_factory import new_aws_store
from tests.conftest import AWSLocation
from tests.linked import check_store_history, results, spawn


@pytest.mark.parametrize("max_tables", [192, 4])
def test_concurrent_committers_lose_nothing(aws_location: AWSLocation, store_name: str, max_tables: int) -> None:
    workers, commits = 3, 8
    where = [aws_location.endpoint, aws_location.table, aws_location.bucket, store_name]
    start = str(time.time() + 2)
    procs = [spawn("aws-commit", *where, str(w), str(commits), str(max_tables), start) for w in range(workers)]
    landed = [c for lines in results(procs, 240) for c in lines]
    assert sum(int(c["lost"]) for c in landed) > 0  # the writers did race
    s3, ddb = aws_location.server.clients()
    store = new_aws_store(aws_location.table, store_name, aws_location.bucket, s3, ddb)
    check_store_history(store, landed, workers * commits)
    if max_tables < 192:
        assert len(store.upstream.specs) <= max_tables
