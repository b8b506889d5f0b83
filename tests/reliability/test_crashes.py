"""Crashes: writers killed mid-commit leave a consistent store; racing writers lose nothing."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from nbs.file_manifest import FileManifest
from nbs.stats import Stats
from nbs.table_index import parse_table_index
from tests.daemon_harness import Daemon
from tests.linked import chain, check_history, results, spawn

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
    path = str(tmp_path / "store")
    os.makedirs(path)
    survivors = 0
    for round_ in range(12):
        procs = [spawn("direct-commit", path, str(round_ * 10 + w), "1000") for w in range(3)]
        time.sleep(0.6 + 0.15 * (round_ % 6))
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
        for proc in procs:
            stdout, _ = proc.communicate(timeout=60)
            survivors += len(stdout.splitlines())
        assert_consistent(path)
    assert survivors > 0  # commits did land between the kills
    assert len(chain(path)) >= survivors - 3  # each killed writer may have printed nothing for its last commit
