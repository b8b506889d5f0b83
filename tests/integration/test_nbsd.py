"""nbsd with real processes: a daemon subprocess, client processes, real LMDB and ZeroMQ."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
import zmq

import nbsclient
from nbs.addr import Addr
from nbs.errors import StoreLockedError
from nbs.factory import new_local_store
from nbs.file_lock import LOCK_WAIT_SECONDS
from nbsclient import protocol as p
from nbsclient.connection import Connection
from tests.daemon_harness import ROOT, Daemon, raw_dealer
from tests.linked import LiveOutput, check_history, read_while_writing, results, spawn, write_addrs
from tests.lock_holder import held_by_another_process

pytestmark = pytest.mark.timeout(300)


def populate(path: str, n: int, size: int = 4096, memtable: int = 1 << 20) -> list[Addr]:
    os.makedirs(path, exist_ok=True)
    store = new_local_store(path, memtable)
    addrs = [store.put(os.urandom(size - 8) + i.to_bytes(8, "big")) for i in range(n)]
    assert store.commit(addrs[-1], store.root())
    return addrs


# --- many workers, results identical to direct access ---------------------------------------------

def test_eight_workers_read_and_write_like_direct_access(nbsd_daemon: Daemon, tmp_path: Path) -> None:
    shared = nbsd_daemon.store_path("eight-shared")
    readonly = nbsd_daemon.store_path("eight-read")
    addrs = populate(readonly, 600)
    direct = new_local_store(readonly).get_many(addrs)
    landed = read_while_writing(nbsd_daemon.endpoint, shared, readonly, addrs, direct, tmp_path / "addrs", 8)
    check_history(shared, landed, 32)


# --- kill -9 of the daemon mid-workload ---------------------------------------------------------------

def test_daemon_killed_mid_workload_recovers(tmp_path: Path) -> None:
    with Daemon() as daemon:
        warm = daemon.store_path("warm")
        addrs = populate(warm, 200)
        with nbsclient.connect(warm, daemon.endpoint, fast_path=False) as reader:
            assert len(reader.get_many(addrs)) == 200
        entries_before = daemon.stats()["cache"]["entries"]
        shared = daemon.store_path("killed")
        writers = LiveOutput([spawn("commit", shared, daemon.endpoint, str(w), "30") for w in range(3)])
        caught = 0

        def in_a_commit_after(landed: int) -> Callable[[], bool]:
            return lambda: sum(map(writers.landed, range(3))) > landed and any(map(writers.in_commit, range(3)))

        for kill in range(3):  # each kill lands while a writer is inside a commit
            writers.wait_for(in_a_commit_after(5 * kill))
            caught += sum(map(writers.in_commit, range(3)))
            daemon.kill()
            daemon.start()
        outputs = writers.finish()
        assert not writers.failed(), writers.failed()
        assert caught >= 3
        # Nobody was killed but the daemon: the history is exactly the commits reported landed.
        check_history(shared, [line for lines in outputs for line in lines if "root" in line], 90)
        stats = daemon.stats()
        assert stats["cache"]["entries"] >= entries_before  # the cache survived the crash
        with nbsclient.connect(warm, daemon.endpoint, fast_path=False) as reader:
            assert len(reader.get_many(addrs)) == 200
        assert daemon.stats()["cache"]["hits"] >= 200  # served from the surviving cache


# --- cache budget and eviction; open-files budget ---------------------------------------------------

def test_cache_eviction_under_small_budget() -> None:
    with Daemon(cache_size="2MiB") as daemon:
        path = daemon.store_path("evict")
        addrs = populate(path, 1500)
        direct = new_local_store(path)
        with nbsclient.connect(path, daemon.endpoint) as client:
            for start in range(0, len(addrs), 100):
                batch = addrs[start:start + 100]
                assert client.get_many(batch) == direct.get_many(batch)
            again = client.get_many(addrs[:50])
            assert again == direct.get_many(addrs[:50])
        cache = daemon.stats()["cache"]
        assert cache["evictions"] > 0
        assert cache["bytes"] <= cache["budget"] == 2 << 20
        assert cache["entries"] < 1500


def test_open_files_stay_within_budget() -> None:
    with Daemon(max_open_files=24, extra=["--threads", "4"]) as daemon:
        path = daemon.store_path("many-tables")
        os.makedirs(path)
        store = new_local_store(path, 1 << 12)
        addrs = []
        for _ in range(60):  # one table per commit
            addrs.append(store.put(os.urandom(3000)))
            assert store.commit(addrs[-1], store.root())
        proc = psutil.Process(daemon.pid)
        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], len(proc.open_files()))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            for _ in range(2):
                clients = [nbsclient.connect(path, daemon.endpoint, fast_path=False) for _ in range(3)]
                for c in clients:
                    assert len(c.get_many(addrs)) == 60
                    c.close()
        finally:
            stop.set()
            sampler.join()
        assert 0 < peak[0] <= 24
        assert daemon.stats()["open_files"]["process"] <= 24


def test_index_cache_stays_within_its_budget() -> None:
    budget = 1 << 20  # the store's chunk directory (~0.9 MiB) is charged too; its 30 indexes (1.1 MiB) cannot all stay
    with Daemon(extra=["--index-cache-size", str(budget)]) as daemon:
        path = daemon.store_path("indexes")
        os.makedirs(path)
        store = new_local_store(path, 1000 * 64, sync=False)
        addrs = [store.put(os.urandom(56) + i.to_bytes(8, "big")) for i in range(30 * 1000)]  # 30 tables
        assert store.commit(addrs[-1], store.root())
        with nbsclient.connect(path, daemon.endpoint, fast_path=False) as client:
            assert len(client.get_many(addrs[::7])) == len(addrs[::7])
            index = daemon.stats()["index_cache"]
        assert index["budget"] == budget
        assert 0 < index["bytes"] <= budget
        assert index["tables"] < 30


# --- one backend read for concurrent requests of the same data --------------------------------------

def test_concurrent_readers_share_one_backend_read(tmp_path: Path) -> None:
    with Daemon() as daemon:
        path = daemon.store_path("shared-read")
        addrs = populate(path, 400)
        addr_file = write_addrs(tmp_path / "addrs", addrs)
        start = str(time.time() + 1.5)
        readers = [spawn("read", path, daemon.endpoint, addr_file, start, "1") for _ in range(8)]
        outputs = results(readers)
        assert all(lines[0]["count"] == 400 for lines in outputs)
        figures = daemon.stats()["stores"][f"nbs:{os.path.realpath(path)}"]
        assert figures["chunks_fetched"] == 400  # not 8 x 400
        assert figures["chunks_requested"] >= 400
        # every chunk asked of the daemon is accounted for: its cache, the store, or another reader's read
        assert (figures["chunks_from_cache"] + figures["chunks_fetched"] + figures["chunks_shared"]
                == figures["chunks_requested"])


# --- isolation between stores and sessions ----------------------------------------------------------

def test_cached_chunks_never_leak_between_stores(nbsd_daemon: Daemon) -> None:
    a_path, b_path = nbsd_daemon.store_path("iso-a"), nbsd_daemon.store_path("iso-b")
    secret = b"only in store A " + os.urandom(64)
    with nbsclient.connect(a_path, nbsd_daemon.endpoint) as a, nbsclient.connect(b_path, nbsd_daemon.endpoint) as b:
        h = a.put(secret)
        assert a.commit(h, a.root())
        assert a.get(h) == secret  # fetched through the daemon: now cached
        assert b.get(h) is None and not b.has(h)
        assert b.get_many([h]) == {} and b.has_many([h]) == {h}
        pending = a.put(b"pending in A " + os.urandom(16))
        a._flush()  # the table exists in storage but is not committed
        other_a = nbsclient.connect(a_path, nbsd_daemon.endpoint)
        try:
            assert a.get(pending) is not None
            assert other_a.get(pending) is None and not other_a.has(pending)
        finally:
            other_a.close()


# --- damaged cache entries are detected, dropped and refetched -----------------------------------

def test_corrupt_cache_entry_is_never_served(tmp_path: Path) -> None:
    with Daemon() as daemon:
        path = daemon.store_path("corrupt")
        marker = b"MARKER-" + os.urandom(16).hex().encode()
        payload = marker * 100
        os.makedirs(path)
        store = new_local_store(path)
        h = store.put(payload)
        assert store.commit(h, store.root())
        with nbsclient.connect(path, daemon.endpoint, fast_path=False) as c:
            assert c.get(h) == payload
        daemon.stats()  # answered once the chunk is in the cache file
        data = Path(daemon.cache_dir) / "chunks" / "data.mdb"
        raw = bytearray(data.read_bytes())
        at = raw.find(marker)
        assert at > 0
        raw[at + 3] ^= 0xFF
        data.write_bytes(bytes(raw))
        with nbsclient.connect(path, daemon.endpoint) as fast:
            assert fast.get(h) == payload  # the client saw the damage and asked the daemon
        with nbsclient.connect(path, daemon.endpoint, fast_path=False) as slow:
            assert slow.get(h) == payload
        time.sleep(0.1)
        assert daemon.stats()["cache"]["corrupt"] >= 1


# --- hostile and malformed input ------------------------------------------------------------------------


@pytest.mark.parametrize("frames,kind", [
    ([b"\xc1garbage"], p.BAD_REQUEST),
    ([p.pack([1, 7])], p.BAD_REQUEST),
    ([p.pack([99, 7, "hello", {}])], p.UNSUPPORTED_PROTOCOL),
    ([p.pack([1, 7, "no-such-op", {}])], p.BAD_REQUEST),
    ([p.pack([1, 7, "get", {"handle": 1, "addrs": [b"short"]}])], p.UNKNOWN_SESSION),
    ([p.pack([1, 7, "get", {"handle": "x", "addrs": []}])], p.UNKNOWN_SESSION),
    ([p.pack([1, 7, "open", {"spec": "ldb:/x"}])], "SpecError"),
    ([p.pack([1, 7, "open", {"spec": "/etc"}])], p.FORBIDDEN),
    ([p.pack([1, 7, "open", {"spec": "aws:t/b/*star"}])], "SpecError"),
    ([b"one", b"two"], p.BAD_REQUEST),
    ([b"one", b"two", b"three"], p.BAD_REQUEST),
    ([p.pack([1, 7, "hello", {}]), b"attached"], p.BAD_REQUEST),
    ([p.pack([1, 7, "table_chunks", {"data": b"x"}]), b"x"], p.BAD_REQUEST),
    ([p.pack([1, 7, "table_chunks", {}]), b"x", b"y"], p.BAD_REQUEST),
    ([p.encode_get_one(7, 1, b"a" * 20), b"attached"], p.BAD_REQUEST),
    ([p.encode_get_one(7, 1, b"a" * 20)[:-1]], p.BAD_REQUEST),
    ([bytes((p.COMPACT, 99)) + p.encode_get_one(7, 1, b"a" * 20)[2:]], p.UNSUPPORTED_PROTOCOL),
    ([p.encode_get_one(7, 12345, b"a" * 20)], p.UNKNOWN_SESSION),
])
def test_malformed_requests_get_error_replies(nbsd_daemon: Daemon, frames: list[bytes], kind: str) -> None:
    ctx, sock = raw_dealer(nbsd_daemon.endpoint, 5000)
    try:
        sock.send_multipart(frames)
        reply = p.unpack(sock.recv())
        assert reply[2] == p.ERROR and reply[3]["type"] == kind
        sock.send(p.encode_request(8, p.HELLO, {}))
        assert p.unpack(sock.recv())[2] == p.OK  # still serving
    finally:
        ctx.destroy(0)


def test_bad_fields_in_a_valid_session(nbsd_daemon: Daemon) -> None:
    ctx, sock = raw_dealer(nbsd_daemon.endpoint, 5000)
    try:
        sock.send(p.encode_request(1, p.OPEN, {"spec": nbsd_daemon.store_path("raw")}))
        handle = p.unpack(sock.recv())[3]["handle"]
        bodies: list[dict[str, object]] = [{"addrs": [b"short"]}, {"addrs": "nope"}, {"addrs": [b"x" * 20] * 5000}]
        for body in bodies:
            sock.send(p.encode_request(2, p.GET, {"handle": handle, **body}))
            assert p.unpack(sock.recv())[3]["type"] == p.BAD_REQUEST
        sock.send(p.encode_request(3, p.WRITE_TABLE, {"handle": handle, "data": b"not a table"}))
        assert p.unpack(sock.recv())[3]["type"] == "CorruptTableError"
        sock.send(p.encode_request(4, p.COMMIT, {"handle": handle, "current": 5, "last": None}))
        assert p.unpack(sock.recv())[3]["type"] == p.BAD_REQUEST
        sock.send(p.encode_request(5, p.OPEN, {"spec": nbsd_daemon.store_path("raw"), "contents": {"vers": 1}}))
        assert p.unpack(sock.recv())[3]["type"] == p.BAD_REQUEST
    finally:
        ctx.destroy(0)


def test_compact_gets_cold_hot_and_absent(nbsd_daemon: Daemon) -> None:
    """Pipelined compact gets: cold ones go to workers and their replies arrive while
    the daemon keeps taking requests; hot ones are answered from the cache."""
    path = nbsd_daemon.store_path("compact")
    addrs = populate(path, 12)
    expected = {bytes(a): new_local_store(path).get(a) for a in addrs}
    ctx, sock = raw_dealer(nbsd_daemon.endpoint, 5000)
    try:
        sock.send(p.encode_request(1, p.OPEN, {"spec": path}))
        handle = p.unpack(sock.recv())[3]["handle"]
        for attempt in ("cold", "hot"):
            for i, a in enumerate(addrs):
                sock.send(p.encode_get_one(100 + i, handle, bytes(a)))
            sock.send(p.encode_request(99, p.HELLO, {}))
            replies = {}
            for _ in range(len(addrs) + 1):
                request_id, body, error = p.decode_reply(sock.recv())
                assert error is None, attempt
                replies[request_id] = body
            assert replies.pop(99)["protocol"] == p.PROTOCOL_VERSION
            assert replies == {100 + i: expected[bytes(a)] for i, a in enumerate(addrs)}, attempt
            nbsd_daemon.stats()  # answered once the cold round's cache fills are done
        sock.send(p.encode_get_one(200, handle, bytes(Addr.of(b"absent"))))
        assert p.decode_reply(sock.recv()) == (200, None, None)
    finally:
        ctx.destroy(0)
    assert nbsd_daemon.stats()["cache"]["hits"] >= len(addrs)


def test_oversized_message_is_refused_and_daemon_survives() -> None:
    with Daemon(extra=["--max-message-size", "1MiB"]) as daemon:
        ctx, sock = raw_dealer(daemon.endpoint, 5000)
        try:
            sock.send(p.encode_request(1, p.HELLO, {"pad": b"x" * (2 << 20)}))
            with pytest.raises(zmq.Again):
                sock.recv()
        finally:
            ctx.destroy(0)
        with Connection(daemon.endpoint, timeout=5, retries=0) as conn:
            assert conn.request(p.HELLO, {})["protocol"] == p.PROTOCOL_VERSION
            with pytest.raises(p.ProtocolError):
                conn.max_message = 1 << 20
                conn.request(p.HELLO, {"pad": b"x" * (2 << 20)})


def test_socket_is_private_to_owner_and_group(nbsd_daemon: Daemon) -> None:
    mode = stat.S_IMODE(os.stat(nbsd_daemon.socket).st_mode)
    assert mode == 0o660
    assert stat.S_ISSOCK(os.stat(nbsd_daemon.socket).st_mode)


def test_refuses_stores_outside_local_roots(nbsd_daemon: Daemon, tmp_path: Path) -> None:
    for spec in [str(tmp_path), nbsd_daemon.store_path("../escape"), f"nbs:{nbsd_daemon.root}/../x"]:
        with pytest.raises(nbsclient.ForbiddenError):
            nbsclient.connect(spec, nbsd_daemon.endpoint)
    link = Path(nbsd_daemon.store_path("link-out"))
    link.symlink_to(tmp_path)
    with pytest.raises(nbsclient.ForbiddenError):
        nbsclient.connect(str(link), nbsd_daemon.endpoint)


def test_a_store_locked_by_a_stopped_process_fails_its_openers_in_bounded_time_and_others_are_served(
        nbsd_daemon: Daemon) -> None:
    """A process holding a store's LOCK without end gets the clients a typed error naming it, not a hang.

    Three clients open the store at once: those queued behind the first wait share its failure rather than
    waiting 20 s each in turn (the third would time out after 30 s otherwise).
    """
    locked, free = nbsd_daemon.store_path("locked"), nbsd_daemon.store_path("free")
    populate(locked, 3)
    free_addrs = populate(free, 3)
    with held_by_another_process(Path(locked) / "LOCK") as holder:
        with ThreadPoolExecutor(3) as pool:
            started = time.monotonic()
            openings = [pool.submit(nbsclient.connect, locked, nbsd_daemon.endpoint) for _ in range(3)]
            with nbsclient.connect(free, nbsd_daemon.endpoint) as other:  # served while the others wait
                assert len(other.get_many(free_addrs)) == 3
            assert not any(opening.done() for opening in openings)
            errors = [opening.exception(LOCK_WAIT_SECONDS + 10) for opening in openings]
        assert time.monotonic() - started < LOCK_WAIT_SECONDS + 10
        assert all(isinstance(error, StoreLockedError) for error in errors), errors
        assert all(f"held by pid {holder.pid} " in str(error) for error in errors)
    with nbsclient.connect(locked, nbsd_daemon.endpoint) as store:
        assert store.root() == new_local_store(locked).root()


def test_second_daemon_on_same_socket_refuses_to_start(nbsd_daemon: Daemon) -> None:
    proc = subprocess.run([sys.executable, "-m", "nbsd", "serve", "--socket", nbsd_daemon.socket,
                           "--cache-dir", os.path.join(nbsd_daemon.workdir, "other-cache")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "another nbsd" in proc.stderr
    with Connection(nbsd_daemon.endpoint, timeout=5, retries=0) as conn:
        assert conn.request(p.HELLO, {})["pid"] == nbsd_daemon.pid


# --- systemd notifications ------------------------------------------------------------------------------

def test_sd_notify_ready_status_watchdog_stopping() -> None:
    daemon = Daemon(env={"WATCHDOG_USEC": "400000"})
    try:
        daemon.start()
        assert daemon.notify is not None
        assert os.path.exists(daemon.socket)  # READY=1 came after the bind
        assert daemon.notify.wait_for("STATUS=").startswith("STATUS=")
        daemon.notify.messages.clear()
        daemon.notify.wait_for("WATCHDOG=1", timeout=5)
        daemon.notify.messages.clear()
        daemon.notify.wait_for("WATCHDOG=1", timeout=5)
        assert daemon.stop() == 0
        daemon.notify.wait_for("STOPPING=1", timeout=5)
        assert not os.path.exists(daemon.socket)
    finally:
        daemon.close()


# --- status commands ------------------------------------------------------------------------------------

def test_status_and_stats_commands(nbsd_daemon: Daemon) -> None:
    path = nbsd_daemon.store_path("status")
    addrs = populate(path, 20)
    with nbsclient.connect(path, nbsd_daemon.endpoint) as c:
        c.get_many(addrs)
    status = subprocess.run([sys.executable, "-m", "nbsd", "status", "--socket", nbsd_daemon.socket],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert f", pid {nbsd_daemon.pid}, " in status.stdout and "hit ratio" in status.stdout
    stats = subprocess.run([sys.executable, "-m", "nbsd", "stats", "--socket", nbsd_daemon.socket],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    figures = json.loads(stats.stdout)
    assert figures["pid"] == nbsd_daemon.pid and f"nbs:{os.path.realpath(path)}" in figures["stores"]
    assert figures["memory"]["rss"] > 0 and figures["open_files"]["budget"] == 64
    missing = subprocess.run([sys.executable, "-m", "nbsd", "status", "--socket", "/tmp/no-such-nbsd.sock"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "no nbsd socket at /tmp/no-such-nbsd.sock" in missing.stderr


# --- commit semantics across lost replies -------------------------------------------------------------

def test_retried_commit_is_answered_from_the_daemons_memory(nbsd_daemon: Daemon) -> None:
    path = nbsd_daemon.store_path("sigstop")
    with nbsclient.connect(path, nbsd_daemon.endpoint, timeout=1.0, commit_timeout=1.0, retries=10) as c:
        h = c.put(b"committed while stopped")
        c._flush()
        proc = psutil.Process(nbsd_daemon.pid)
        proc.suspend()
        threading.Timer(1.5, proc.resume).start()
        assert c.commit(h, c.root())  # first send timed out; the retry got the remembered reply
    assert new_local_store(path).root() == h


class _LosingConnection(Connection):
    """Delivers the first commit, then loses its reply while the daemon restarts."""

    def __init__(self, endpoint: str, daemon: Daemon) -> None:
        super().__init__(endpoint, timeout=10.0, retries=3)
        self.daemon = daemon
        self.lost = False

    def request(self, op: str, body: dict[str, Any], timeout: float | None = None,
                retries: int | None = None) -> Any:
        reply = super().request(op, body, timeout, retries)
        if op == p.COMMIT and not self.lost:
            self.lost = True
            assert reply["ok"]
            self.daemon.restart()  # the daemon forgets the commit it answered
            return super().request(op, body, timeout, retries)  # unknown session: the store reopens, resends
        return reply


def test_commit_that_landed_before_a_lost_reply_is_reported_landed() -> None:
    with Daemon() as daemon:
        path = daemon.store_path("lost-reply")
        store = nbsclient.connect(path, daemon.endpoint)
        store._conn = _LosingConnection(daemon.endpoint, daemon)
        store._connect()
        h = store.put(b"landed " + os.urandom(8))
        assert store.commit(h, store.root())
        assert store.root() == h
        assert new_local_store(path).root() == h
        store.close()


def test_stale_reader_slots_are_cleared(tmp_path: Path) -> None:
    """A client killed inside a read transaction leaves a reader slot; the daemon's maintenance frees it."""
    with Daemon() as daemon:
        path = daemon.store_path("readers")
        populate(path, 5)
        script = ("import nbsclient,sys,time;s=nbsclient.connect(sys.argv[1],sys.argv[2]);"
                  "txn=s._cache.env.begin();print('ready',flush=True);time.sleep(60)")
        child = subprocess.Popen([sys.executable, "-c", script, path, daemon.endpoint], cwd=ROOT,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        child.kill()
        child.wait()
        deadline = time.monotonic() + 15
        while "stale LMDB reader slots" not in daemon.log.read_text():
            assert time.monotonic() < deadline, daemon.log.read_text()
            time.sleep(0.2)
        with nbsclient.connect(path, daemon.endpoint) as c:
            assert c._cache is not None
            assert f" {child.pid} " not in c._cache.env.readers()


def test_request_in_flight_when_daemon_dies_is_resent_promptly() -> None:
    """A dropped connection is noticed within about a second, not after the (long) commit timeout."""
    with Daemon() as daemon:
        path = daemon.store_path("in-flight")
        store = nbsclient.connect(path, daemon.endpoint, timeout=120.0, commit_timeout=120.0, retries=5)
        h = store.put(b"in flight " + os.urandom(8))
        store._flush()
        psutil.Process(daemon.pid).suspend()  # the commit below is sent but never served
        outcome: list[object] = []
        worker = threading.Thread(target=lambda: outcome.append(store.commit(h, store.root())))
        started = time.monotonic()
        worker.start()
        time.sleep(1.0)
        daemon.restart()  # SIGKILL and start again
        worker.join(60)
        assert outcome == [True]
        assert time.monotonic() - started < 30
        assert new_local_store(path).root() == h
        store.close()
