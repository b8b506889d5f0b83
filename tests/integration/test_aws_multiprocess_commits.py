"""Processes racing commits on one AWS store: the optimistic lock loses no commit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbs.addr import ADDR_SIZE, EMPTY_ADDR, Addr
from nbs.aws_factory import new_aws_store
from nbs.store import NomsBlockStore
from tests.conftest import AWSLocation

ROOT = Path(__file__).resolve().parents[2]


def chain(store: NomsBlockStore) -> list[Addr]:
    """Roots from the newest back to the first commit."""
    roots = []
    root = store.root()
    while root != EMPTY_ADDR:
        roots.append(root)
        data = store.get(root)
        assert data is not None and data[:1] == b"C", f"root chunk {root} missing"
        root = Addr(data[1:1 + ADDR_SIZE])
    return roots


@pytest.mark.parametrize("max_tables", [192, 4])
def test_concurrent_committers_lose_nothing(aws_location: AWSLocation, store_name: str, max_tables: int) -> None:
    workers, commits = 3, 8
    args = [aws_location.endpoint, aws_location.table, aws_location.bucket, store_name]
    start_at = str(time.time() + 2)
    procs = [subprocess.Popen([sys.executable, "-m", "tests.integration.aws_commit_worker", *args,
                               str(w), str(commits), str(max_tables), start_at],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(workers)]
    landed = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        landed += [json.loads(line) for line in out.splitlines()]
    assert len(landed) == workers * commits
    assert sum(c["lost"] for c in landed) > 0  # the writers did race
    s3, ddb = aws_location.server.clients()
    store = new_aws_store(aws_location.table, store_name, aws_location.bucket, s3, ddb)
    roots = chain(store)
    assert len(roots) == workers * commits
    assert {str(r) for r in roots} == {c["root"] for c in landed}
    every_chunk = [Addr.parse(h) for c in landed for h in c["chunks"]]
    assert store.has_many(every_chunk) == set()
    if max_tables < 192:
        assert len(store.upstream.specs) <= max_tables + 1
