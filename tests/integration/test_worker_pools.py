"""Stores built in a parent and used in forked children: bare fork, multiprocessing, gunicorn, celery.

Every pool runs tests/pool_app.py, whose stores (one direct, one through nbsd,
both on one local store) are opened and used at import time in the pool's
parent.  Each task reads known chunks back and lands one linked commit; the
store's history must then be exactly the commits reported, with every byte right.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest

import nbs
import nbsclient
from nbs.addr import Addr
from nbs.aws_factory import AWSStoreFactory, new_aws_store
from nbs.factory import new_local_store
from nbsclient.connection import Connection
from nbsclient.protocol import STATS
from tests.aws_server import unique_name
from tests.conftest import AWSLocation
from tests.daemon_harness import ROOT, Daemon
from tests.forking import in_child
from tests.linked import check_history, check_store_history, commit_one, write_addrs

pytestmark = pytest.mark.timeout(600)


@dataclass
class PoolSetup:
    """A seeded store under the daemon's root and the environment tests/pool_app.py reads."""

    path: str
    seed: list[Addr]
    digest: str
    log: Path
    env: dict[str, str]

    def parents(self) -> list[dict[str, Any]]:
        """Commits landed outside the tasks: the fixture's first, and each pool parent's."""
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def check(self, results: list[dict[str, Any]], tasks: int) -> None:
        """Every task read the right bytes; the history is exactly the parents' and the tasks' commits."""
        assert len(results) == tasks
        assert {r["digest"] for r in results} == {self.digest}
        assert {r["which"] for r in results} == {"direct", "daemon"}
        parents = self.parents()
        check_history(self.path, results + parents, tasks + len(parents))


@pytest.fixture
def pool_setup(nbsd_daemon: Daemon, tmp_path: Path) -> PoolSetup:
    path = nbsd_daemon.store_path(unique_name("pool"))
    os.makedirs(path)
    store = new_local_store(path)
    seed = [store.put(os.urandom(4000) + i.to_bytes(4, "big")) for i in range(64)]
    first = commit_one(store, 0, -2)  # a history to start from, with the seed chunks in it
    found = store.get_many(seed)
    digest = hashlib.sha256(b"".join(found[a] for a in seed)).hexdigest()
    log = tmp_path / "parents.jsonl"
    log.write_text(json.dumps(first) + "\n")
    env = {**os.environ, "POOL_APP_DIR": path, "POOL_APP_SEED": write_addrs(tmp_path / "seed", seed),
           "POOL_APP_LOG": str(log), "NBSD_ENDPOINT": nbsd_daemon.endpoint}
    return PoolSetup(path, seed, digest, log, env)


# --- multiprocessing, each start method ---------------------------------------------------------------

@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_multiprocessing_pool(pool_setup: PoolSetup, method: str) -> None:
    tasks = 40
    proc = subprocess.run([sys.executable, "-m", "tests.pool_app", method, str(tasks)], cwd=ROOT,
                          env=pool_setup.env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    pool_setup.check(results, tasks)
    assert len({r["pid"] for r in results}) >= 2


# --- gunicorn --preload ---------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server did not listen on {port}:\n{log.read_text()}")


@contextmanager
def running(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server process for the block; stopped with SIGTERM (then SIGKILL) after it."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _get_json(port: int, path: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        body = reply.read()
        assert reply.status == 200, body
        return json.loads(body)  # type: ignore[no-any-return]
    finally:
        conn.close()


def test_gunicorn_preload_sync_workers(pool_setup: PoolSetup, tmp_path: Path) -> None:
    port, tasks = _free_port(), 240
    log = tmp_path / "gunicorn.log"
    cmd = [sys.executable, "-m", "gunicorn", "--preload", "--workers", "4", "--worker-class", "sync",
           "--bind", f"127.0.0.1:{port}", "--timeout", "120", "tests.pool_app:application"]
    with running(cmd, pool_setup.env, log) as master:
        _wait_for_port(port, master, log)
        paths = [f"/{'direct' if n % 2 else 'daemon'}/{n}" for n in range(tasks)]
        with ThreadPoolExecutor(4) as clients:
            results = list(clients.map(lambda path: _get_json(port, path), paths))
    pool_setup.check(results, tasks)
    pids = {r["pid"] for r in results}
    assert master.pid not in pids and len(pids) >= 2  # forked workers served, with the master's stores


# --- celery's prefork pool (kombu's filesystem transport: no broker server) ------------------------------

def test_celery_prefork_pool(pool_setup: PoolSetup, tmp_path: Path) -> None:
    from tests.celery_app import make_app

    folder, tasks = tmp_path / "celery", 40
    app = make_app(str(folder))
    env = {**pool_setup.env, "CELERY_FOLDER": str(folder)}
    cmd = [sys.executable, "-m", "celery", "--app", "tests.celery_app", "worker", "--pool", "prefork",
           "--concurrency", "3", "--loglevel", "INFO", "--without-heartbeat", "--without-gossip",
           "--without-mingle"]
    with running(cmd, env, tmp_path / "celery.log") as worker:
        pending = [app.send_task("pool.task", args=("direct" if n % 2 else "daemon", n)) for n in range(tasks)]
        results = [result.get(timeout=240) for result in pending]
    pool_setup.check(results, tasks)
    assert worker.pid not in {r["pid"] for r in results}  # the pool's forked children did the work


# --- a bare os.fork() ------------------------------------------------------------------------------------

def _commit_in_child_and_parent(store: nbs.ChunkStore) -> None:
    """Commit in the parent, fork, commit and read in the child, then again in the parent: nothing lost."""
    landed = [commit_one(store, 1, 1)]
    child = in_child(lambda: (commit_one(store, 2, 2), store.get(Addr.parse(landed[0]["chunks"][0]))))
    landed.append(child[0])
    assert child[1] is not None
    store.rebase()
    landed.append(commit_one(store, 3, 3))
    check_store_history(store, landed, 3)


def test_bare_fork_local_store(tmp_path: Path) -> None:
    store = new_local_store(str(tmp_path), memtable_size=1 << 12)  # small: persists run on the pool's threads
    _commit_in_child_and_parent(store)
    reopened_in_child = in_child(lambda: str(new_local_store(str(tmp_path)).root()))
    assert reopened_in_child == str(store.root())


@pytest.mark.parametrize("clients", ["built", "callers"])
def test_bare_fork_aws_store(aws_location: AWSLocation, clients: str) -> None:
    if clients == "built":
        s3, ddb = aws_location.server.clients()
    else:  # plain boto3 clients handed to new_aws_store, as Go's NewAWSStore takes them
        session = boto3.Session()
        s3 = session.client("s3", endpoint_url=aws_location.endpoint)
        ddb = session.client("dynamodb", endpoint_url=aws_location.endpoint)
    store = new_aws_store(aws_location.table, unique_name("fork"), aws_location.bucket, s3, ddb, 1 << 12)
    _commit_in_child_and_parent(store)


def test_bare_fork_aws_factory_and_spec(aws_location: AWSLocation) -> None:
    factory = AWSStoreFactory(None, aws_location.table, aws_location.bucket, endpoint_url=aws_location.endpoint)
    name = unique_name("factory-fork")
    _commit_in_child_and_parent(factory.create_store(name))
    in_child(lambda: commit_one(factory.create_store(name), 4, 4))
    _commit_in_child_and_parent(nbs.open_store(aws_location.spec(unique_name("spec-fork"))))
    factory.close()


def _sessions(endpoint: str) -> int:
    return int(Connection(endpoint, timeout=10, retries=1).request(STATS, {})["sessions"])


def test_daemon_store_used_before_fork(nbsd_daemon: Daemon, pool_setup: PoolSetup) -> None:
    endpoint = nbsd_daemon.endpoint
    store = nbsclient.connect(pool_setup.path, endpoint)
    assert store.get_many(pool_setup.seed).keys() == set(pool_setup.seed)  # the daemon caches them
    landed = [commit_one(store, 1, 1)]
    before = _sessions(endpoint)
    parent_cache = store._cache

    def in_the_child() -> tuple[bool, bool, int, dict[str, Any], int]:
        hit = store.get(pool_setup.seed[0]) is not None  # a cache hit, through the child's own LMDB handle
        own_cache = store._cache is not None and store._cache is not parent_cache
        sessions = _sessions(endpoint)  # the child opened a session of its own
        committed = commit_one(store, 2, 2)
        count = store.count()
        store.close()
        return hit, own_cache, sessions, committed, count

    hit, own_cache, child_sessions, committed, count = in_child(in_the_child)
    assert hit and own_cache and child_sessions == before + 1 and count > len(pool_setup.seed)
    landed.append(committed)
    assert _sessions(endpoint) == before  # the child closed its session, not the parent's
    in_child(store.close)  # closing an unused inherited store is safe, and leaves the parent's session alone
    assert _sessions(endpoint) == before
    store.rebase()
    landed.append(commit_one(store, 3, 3))
    assert _sessions(endpoint) == before  # the parent's session was never lost
    check_store_history(store, landed + pool_setup.parents(), len(landed) + 1)
    store.close()


# --- one ZeroMQ context per process; descriptors follow threads, not stores ----------------------------------

def test_threads_and_descriptors_stay_bounded_as_stores_open_and_close(nbsd_daemon: Daemon,
                                                                        pool_setup: PoolSetup) -> None:
    me = psutil.Process()

    def figures() -> tuple[int, int]:
        """Threads and descriptors, once threads that were joined have left the kernel's list too."""
        deadline = time.monotonic() + 5
        while me.num_threads() != threading.active_count() + 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # + 2: the ZeroMQ context's I/O and reaper threads
        return me.num_threads(), me.num_fds()

    first = nbsclient.connect(pool_setup.path, nbsd_daemon.endpoint, fast_path=False)
    first.get(pool_setup.seed[0])
    baseline = figures()
    for _ in range(60):  # one after another
        with nbsclient.connect(pool_setup.path, nbsd_daemon.endpoint, fast_path=False) as store:
            assert store.get(pool_setup.seed[1]) is not None
    assert figures() == baseline
    stores = [nbsclient.connect(pool_setup.path, nbsd_daemon.endpoint, fast_path=False) for _ in range(60)]
    for store in stores:  # all at once, from one thread
        assert store.get(pool_setup.seed[2]) is not None
    assert figures() == baseline
    for store in stores:
        store.close()

    def in_a_thread() -> None:
        with nbsclient.connect(pool_setup.path, nbsd_daemon.endpoint, fast_path=False) as store:
            assert store.get(pool_setup.seed[3]) is not None

    for _ in range(20):  # threads that come and go take their sockets with them
        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
    assert figures() == baseline
    first.close()


# --- the README's examples -------------------------------------------------------------------------------

def readme_example(name: str, into: Path) -> Path:
    """Write the README's Python block whose first line starts ``# NAME:`` to ``into/NAME``."""
    text = (ROOT / "README.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    (block,) = [b for b in blocks if b.startswith(f"# {name}:")]
    path = into / name
    path.write_text(block)
    return path


def test_readme_multiprocessing_example(tmp_path: Path) -> None:
    script = readme_example("pool.py", tmp_path)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "db")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "60 chunks saved\n"


def test_readme_gunicorn_example(nbsd_daemon: Daemon, tmp_path: Path) -> None:
    readme_example("app.py", tmp_path)
    db, port = nbsd_daemon.store_path(unique_name("uploads")), _free_port()
    env = {**os.environ, "NOMS_DB": db, "NBSD_ENDPOINT": nbsd_daemon.endpoint,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    cmd = [sys.executable, "-m", "gunicorn", "--preload", "--workers", "4", "--bind", f"127.0.0.1:{port}",
           "--chdir", str(tmp_path), "app:application"]
    bodies = [b"upload %d " % i + os.urandom(64) for i in range(50)]

    def post(body: bytes) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("POST", "/", body=body)
            reply = conn.getresponse()
            assert reply.status == 200
            return reply.read().decode()
        finally:
            conn.close()

    with running(cmd, env, tmp_path / "gunicorn.log") as master:
        _wait_for_port(port, master, tmp_path / "gunicorn.log")
        with ThreadPoolExecutor(4) as clients:
            addrs = list(clients.map(post, bodies))
    store = new_local_store(db)
    assert store.get_many(Addr.parse(a) for a in addrs) == {Addr.parse(a): b for a, b in zip(addrs, bodies)}
    assert str(store.root()) in addrs
