"""Linked-root commits: each commit's root chunk names the previous root, so the final root's
chain lists every commit that landed.  Used by the multi-process tests to prove no commit is lost."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nbs.addr import ADDR_SIZE, EMPTY_ADDR, Addr
from nbs.chunk_store import ChunkStore
from nbs.factory import new_local_store

ROOT = Path(__file__).resolve().parents[1]


def commit_loop(store: ChunkStore, worker: int, commits: int) -> None:
    """Commit ``commits`` times, retrying each until it lands; print one JSON line per landed commit
    (with the number of races it lost first)."""
    for i in range(commits):
        payload = [store.put(os.urandom(700) + b"w%d-%d-%d" % (worker, i, j)) for j in range(4)]
        lost = 0
        while True:
            last = store.root()
            root = store.put(b"C" + bytes(last) + b"".join(payload) + b"w%d-%d" % (worker, i))
            if store.commit(root, last):
                print(json.dumps({"root": str(root), "chunks": [str(p) for p in payload], "lost": lost}),
                      flush=True)
                break
            lost += 1
            store.rebase()


def chain(directory: str) -> list[str]:
    """Roots from the newest back to the first commit of a local store."""
    return store_chain(new_local_store(directory))


def store_chain(store: ChunkStore) -> list[str]:
    """Roots from the newest back to the first commit of any store."""
    roots, root = [], store.root()
    while root != EMPTY_ADDR:
        roots.append(str(root))
        data = store.get(root)
        assert data is not None and data[:1] == b"C", f"root chunk {root} is missing"
        root = Addr(data[1:1 + ADDR_SIZE])
    return roots


def spawn(*args: str) -> subprocess.Popen[str]:
    """A worker process (tests/worker.py) with the given mode and arguments."""
    return subprocess.Popen([sys.executable, "-m", "tests.worker", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def results(procs: list[subprocess.Popen[str]], timeout: float = 500) -> list[list[dict[str, Any]]]:
    """Each worker's JSON lines, after checking it exited cleanly."""
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, stderr
        out.append([json.loads(line) for line in stdout.splitlines()])
    return out


def check_history(path: str, landed: list[dict[str, Any]], expected: int) -> None:
    """Every reported commit is in a local store's history and all of its chunks are stored."""
    check_store_history(new_local_store(path), landed, expected)


def check_store_history(store: ChunkStore, landed: list[dict[str, Any]], expected: int) -> None:
    """Every reported commit is in the store's history and all of its chunks are stored."""
    assert len(landed) == expected
    assert set(store_chain(store)) == {str(c["root"]) for c in landed}
    chunks = [Addr.parse(h) for c in landed for h in c["chunks"]]
    assert store.has_many(chunks) == set()


def write_addrs(path: Path, addrs: list[Addr]) -> str:
    """A file of hex addresses, one a line, for ``read`` workers."""
    path.write_text("\n".join(a.hex() for a in addrs))
    return str(path)


def read_while_writing(endpoint: str, shared: str, readonly: str, addrs: list[Addr], direct: dict[bytes, bytes],
                       addr_file: Path, commits: int) -> list[dict[str, Any]]:
    """Four workers commit to ``shared`` while four read ``addrs`` of ``readonly`` (two on the fast path)
    through nbsd; the readers must see exactly what direct access (``direct``) saw.  Returns the landed commits."""
    want = hashlib.sha256(b"".join(direct[a] for a in addrs)).hexdigest()
    listed = write_addrs(addr_file, addrs)
    start = str(time.time() + 1.0)
    writers = [spawn("commit", shared, endpoint, str(w), str(commits)) for w in range(4)]
    readers = [spawn("read", readonly, endpoint, listed, start, str(r % 2)) for r in range(4)]
    landed = [c for lines in results(writers) for c in lines]
    for lines in results(readers):
        assert lines == [{"count": len(addrs), "digest": want}]
    return landed
