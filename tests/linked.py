"""Linked-root commits: each commit's root chunk names the previous root, so the final root's
chain lists every commit that landed.  Used by the multi-process tests to prove no commit is lost."""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbs.addr import ADDR_SIZE, EMPTY_ADDR, Addr
from nbs.chunk_store import ChunkStore
from nbs.factory import new_local_store

ROOT = Path(__file__).resolve().parents[1]


def commit_loop(store: ChunkStore, worker: int, commits: int, pause: float = 0.0) -> None:
    """Commit ``commits`` times, printing each outcome as a JSON line (see ``commit_one``)."""
    for i in range(commits):
        print(json.dumps(commit_one(store, worker, i, announce=True, pause=pause)), flush=True)


def commit_one(store: ChunkStore, worker: int, i: int, announce: bool = False, pause: float = 0.0) -> dict[str, Any]:
    """Commit once, retrying until it lands; the landed commit's root, chunks and lost races.

    With ``announce``, an ``{"attempt": root}`` line is printed before each try, so a
    process killed inside ``commit`` leaves its last attempt as its last line.  ``pause``
    seconds pass between the puts and the commit (a store with a small memtable has
    written tables by then that no manifest names yet).
    """
    payload = [store.put(os.urandom(700) + b"w%d-%d-%d" % (worker, i, j)) for j in range(4)]
    time.sleep(pause)
    lost = 0
    while True:
        last = store.root()
        root = store.put(b"C" + bytes(last) + b"".join(payload) + b"w%d-%d" % (worker, i))
        if announce:
            print(json.dumps({"attempt": str(root)}), flush=True)
        if store.commit(root, last):
            return {"root": str(root), "chunks": [str(p) for p in payload], "lost": lost}
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
    """Each worker's JSON lines but announced attempts, after checking it exited cleanly."""
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, stderr
        out.append([line for line in map(json.loads, stdout.splitlines()) if "attempt" not in line])
    return out


class LiveOutput:
    """The JSON lines of running writers (``commit_loop``), read as they come, so a test can act
    at a known point of a writer's work: e.g. kill something while the writer is inside ``commit``."""

    def __init__(self, procs: list[subprocess.Popen[str]]) -> None:
        self.procs = procs
        self.lines: list[list[dict[str, Any]]] = [[] for _ in procs]
        self._partial = [b""] * len(procs)
        self._selector = selectors.DefaultSelector()
        for i, proc in enumerate(procs):
            assert proc.stdout is not None
            self._selector.register(proc.stdout.fileno(), selectors.EVENT_READ, i)

    def in_commit(self, i: int) -> bool:
        """Writer ``i`` announced an attempt it has not reported landed: it is inside ``commit``."""
        return bool(self.lines[i]) and "attempt" in self.lines[i][-1]

    def landed(self, i: int) -> int:
        return sum("root" in line for line in self.lines[i])

    def poll(self, timeout: float) -> None:
        """Read whatever the writers print within ``timeout`` seconds."""
        for key, _ in self._selector.select(timeout):
            fd, i = key.fd, key.data
            data = os.read(fd, 1 << 16)
            if not data:
                self._selector.unregister(fd)
                continue
            *complete, self._partial[i] = (self._partial[i] + data).split(b"\n")
            self.lines[i].extend(json.loads(line) for line in complete)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline or not self._selector.get_map():
                raise AssertionError(f"writers never reached the expected point; their lines: {self.lines}")
            self.poll(0.5)

    def kill_inside_commits(self, after_landed: int, timeout: float = 120) -> list[list[dict[str, Any]]]:
        """SIGKILL each writer as soon as it is inside a commit with ``after_landed`` of its commits landed;
        returns every writer's lines."""
        killed: set[int] = set()

        def all_killed() -> bool:
            for i, proc in enumerate(self.procs):
                if i not in killed and self.landed(i) >= after_landed and self.in_commit(i):
                    proc.send_signal(signal.SIGKILL)
                    killed.add(i)
            return len(killed) == len(self.procs)

        self.wait_for(all_killed, timeout)
        return self.finish()

    def finish(self, timeout: float = 300) -> list[list[dict[str, Any]]]:
        """Every writer's lines, once all have ended (killed ones included)."""
        deadline = time.monotonic() + timeout
        while self._selector.get_map():
            if time.monotonic() > deadline:
                raise AssertionError("writers did not finish")
            self.poll(0.5)
        for proc in self.procs:
            proc.wait(timeout=60)
        return self.lines

    def failed(self) -> dict[int, str]:
        """Exit status and stderr of each writer that did not exit cleanly (once ``finish`` returned)."""
        return {i: f"exit {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
                for i, proc in enumerate(self.procs) if proc.returncode != 0}


def check_killed_history(history: list[str], outputs: list[list[dict[str, Any]]]) -> int:
    """Commits of writers killed mid-way: every reported commit is in ``history``, and the only others
    are killed writers' last attempts (at most one each: the commit that landed as the kill came).
    Returns how many writers died inside a commit (their last line an unanswered attempt)."""
    landed = {line["root"] for lines in outputs for line in lines if "root" in line}
    unreported = {lines[-1]["attempt"] for lines in outputs if lines and "attempt" in lines[-1]}
    in_history = set(history)
    assert landed <= in_history, f"reported commits missing from the history: {landed - in_history}"
    assert in_history - landed <= unreported, f"commits nobody attempted last: {in_history - landed - unreported}"
    return len(unreported)


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
