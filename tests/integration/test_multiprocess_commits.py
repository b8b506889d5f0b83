"""Several processes commit to one local store at once: no commit is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbs.factory import new_local_store
from tests.linked import check_history, results, spawn


@pytest.mark.parametrize("max_tables", [192, 6])
def test_concurrent_committers_lose_nothing(tmp_path: Path, max_tables: int) -> None:
    workers, commits = 4, 15
    path = str(tmp_path / "store")
    procs = [spawn("direct-commit", path, str(w), str(commits), str(max_tables)) for w in range(workers)]
    landed = [c for lines in results(procs, 240) for c in lines]
    check_history(path, landed, workers * commits)
    if max_tables < 192:
        # Conjoins ran: 60 commits would otherwise leave 60 tables or more. Not "<= max_tables": as in Go, a
        # commit conjoins the upstream tables and then adds its own novel ones, and a writer that lost k
        # races carries k + 1 of them (up to its 15 commits: 3-6 tables usually, 13-16 in about one run of
        # twenty, seen with the code before and after a change to the chunk workers).
        assert len(new_local_store(path).upstream.specs) < workers * commits // 2
