"""Several processes commit to one local store at once: no commit is lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nbs.addr import ADDR_SIZE, EMPTY_ADDR, Addr
from nbs.factory import new_local_store

ROOT = Path(__file__).resolve().parents[2]


def chain(directory: str) -> list[Addr]:
    """Roots from the newest back to the first commit."""
    store = new_local_store(directory)
    roots = []
    root = store.root()
    while root != EMPTY_ADDR:
        roots.append(root)
        data = store.get(root)
        assert data is not None and data[:1] == b"C", f"root chunk {root} missing"
        root = Addr(data[1:1 + ADDR_SIZE])
    return roots


@pytest.mark.parametrize("max_tables", [192, 6])
def test_concurrent_committers_lose_nothing(tmp_path: Path, max_tables: int) -> None:
    workers, commits = 4, 15
    procs = [subprocess.Popen([sys.executable, "-m", "tests.integration.commit_worker", str(tmp_path),
                               str(w), str(commits), str(max_tables)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(workers)]
    landed = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        landed += [json.loads(line) for line in out.splitlines()]
    assert len(landed) == workers * commits
    roots = chain(str(tmp_path))
    assert len(roots) == workers * commits
    assert {str(r) for r in roots} == {c["root"] for c in landed}
    store = new_local_store(str(tmp_path))
    every_chunk = [Addr.parse(h) for c in landed for h in c["chunks"]]
    assert store.has_many(every_chunk) == set()
    if max_tables < 192:
        assert len(store.upstream.specs) <= max_tables + 1
