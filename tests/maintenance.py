"""Helpers for the ``nbs verify`` / ``nbs gc`` tests: running the command, Noms databases made to conjoin,
and what a store holds."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nbs.addr import Addr
from nbs.admin.cli import main
from nbs.admin.progress import Progress
from nbs.chunk_store import ChunkStore
from nbs.factory import new_local_store
from nbs.noms.chunker import new_blob
from nbs.noms.datas import Database
from nbs.noms.values import String, Struct
from nbs.store import NomsBlockStore
from tests.linked import ROOT, write_addrs


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


class _Silent:
    def update(self, n: float | None = 1) -> bool | None:
        return None

    def close(self) -> None:
        pass


def silent_progress(desc: str, total: int | None, unit: str) -> Progress:
    return _Silent()


def nbs(*argv: str) -> Result:
    """Run ``nbs`` in this process."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err, silent_progress)
    return Result(code, out.getvalue(), err.getvalue())


def nbs_process(*argv: str) -> Result:
    """Run the ``nbs`` console script as a fresh process."""
    script = Path(sys.executable).with_name("nbs")
    proc = subprocess.run([str(script), *argv], capture_output=True, text=True, timeout=300, cwd=ROOT)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def commit_blobs(store: NomsBlockStore, commits: int, size: int = 9000, dataset: str = "blobs") -> list[Addr]:
    """``commits`` Noms commits of random blobs (several chunks each, a prolly tree for the bigger ones);
    with a small ``max_tables`` the store conjoins along the way.  Returns the roots."""
    db = Database(store)
    roots = []
    for i in range(commits):
        db.commit(dataset, new_blob(db.store, os.urandom(size)), meta=Struct("", [("n", String(str(i)))]))
        roots.append(store.root())
    return roots


def conjoined_db(directory: Path) -> Path:
    """A Noms database of 8 blob commits in a new ``directory``, conjoined along the way (at most 3 tables):
    it leaves orphan tables behind."""
    directory.mkdir()
    commit_blobs(new_local_store(str(directory), max_tables=3), 8)
    return directory


def live_chunks(store: NomsBlockStore) -> list[Addr]:
    """Every chunk address of the tables the store's manifest names."""
    return sorted({Addr(a) for s in store.table_set.upstream for a in s.index().addresses()})


def table_files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if Addr.maybe_parse(p.name) is not None}


def read_in_fresh_process(spec: str, addrs: list[Addr], addr_file: Path, store: ChunkStore) -> None:
    """A new process opens ``spec`` and reads ``addrs``: it gets exactly what ``store`` holds for them."""
    import hashlib
    import json

    expected = store.get_many(addrs)
    assert len(expected) == len(addrs)
    want = hashlib.sha256(b"".join(expected[a] for a in addrs)).hexdigest()
    proc = subprocess.run([sys.executable, "-m", "tests.worker", "read-direct", spec, write_addrs(addr_file, addrs),
                           str(time.time())], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"count": len(addrs), "digest": want}


def backdate(path: Path, seconds: float) -> None:
    """Set a file's modification time ``seconds`` into the past."""
    past = time.time() - seconds
    os.utime(path, (past, past))
