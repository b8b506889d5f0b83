"""Crashes: writers killed mid-commit leave a consistent store; racing writers lose nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbs.addr import ADDR_SIZE, EMPTY_ADDR, Addr
from nbs.factory import new_local_store
from nbs.file_manifest import FileManifest
from nbs.stats import Stats
from nbs.table_index import parse_table_index
from tests.daemon_harness import ROOT, Daemon

pytestmark = pytest.mark.timeout(600)


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.integration.nbsd_worker", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def landed(procs: list[subprocess.Popen[str]], timeout: float = 500) -> list[dict[str, object]]:
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, stderr
        out += [json.loads(line) for line in stdout.splitlines()]
    return out


def chain(directory: str) -> list[str]:
    store = new_local_store(directory)
    roots, root = [], store.root()
    while root != EMPTY_ADDR:
        roots.append(str(root))
        data = store.get(root)
        assert data is not None, f"root chunk {root} is missing"
        root = Addr(data[1:1 + ADDR_SIZE])
    return roots


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
        results = landed(procs)
        check_race(path, results, writers * commits)
    else:
        with Daemon() as daemon:
            path = daemon.store_path("race")
            procs = [spawn("commit", path, daemon.endpoint, str(w), str(commits)) for w in range(writers)]
            check_race(path, landed(procs), writers * commits)


def check_race(path: str, results: list[dict[str, object]], expected: int) -> None:
    """Every reported commit is in the history, and all of its chunks are stored."""
    assert len(results) == expected
    assert set(chain(path)) == {str(c["root"]) for c in results}
    store = new_local_store(path)
    assert store.has_many([Addr.parse(h) for c in results for h in c["chunks"]]) == set()  # type: ignore[attr-defined]


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
