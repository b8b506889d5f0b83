"""Crashes: writers killed mid-commit leave a consistent store; racing writers lose nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from nbs.file_manifest import FileManifest
from nbs.stats import Stats
from nbs.table_index import parse_table_index
from tests.daemon_harness import Daemon
from tests.linked import LiveOutput, chain, check_history, check_killed_history, results, spawn

pytestmark = pytest.mark.timeout(600)


def assert_consistent(directory: str) -> None:
    """The manifest parses, names only tables that exist and parse, and every root chunk is there."""
    contents = FileManifest(directory).parse_if_exists(Stats())
    if contents is None:
        return  # nothing landed yet: an empty store is consistent
    for spec in contents.specs:
        data = (Path(directory) / str(spec.name)).read_bytes()
        assert parse_table_index(data, str(spec.name), len(data)).chunk_count == spec.chunk_count
    chain(directory)


@pytest.mark.parametrize("through", ["direct", "nbsd"])
def test_eight_writers_fifty_commits_each(tmp_path: Path, through: str) -> None:
    writers, commits = 8, 50
    if through == "direct":
        path = str(tmp_path / "store")
        procs = [spawn("direct-commit", path, str(w), str(commits)) for w in range(writers)]
        check_history(path, [c for lines in results(procs) for c in lines], writers * commits)
    else:
        with Daemon() as daemon:
            path = daemon.store_path("race")
            procs = [spawn("commit", path, daemon.endpoint, str(w), str(commits)) for w in range(writers)]
            check_history(path, [c for lines in results(procs) for c in lines], writers * commits)


def test_writers_killed_mid_commit_leave_a_consistent_store(tmp_path: Path) -> None:
    """Each writer is killed right after announcing a commit attempt: the store stays whole, and its
    history is exactly the reported commits plus, at most, each killed writer's last attempt."""
    path = str(tmp_path / "store")
    os.makedirs(path)
    outputs: list[list[dict[str, Any]]] = []
    for round_ in range(8):
        writers = LiveOutput([spawn("direct-commit", path, str(round_ * 10 + w), "1000") for w in range(3)])
        outputs += writers.kill_inside_commits(after_landed=1 + round_ % 4)  # a different count each round
        assert_consistent(path)
    inside = check_killed_history(chain(path), outputs)
    assert inside >= len(outputs) // 2  # most kills provably landed inside a commit
