"""Tables streamed to a real nbsd in parts (table_begin / table_chunks or table_part / table_end) over real ZeroMQ."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

import nbsclient
from nbs.addr import Addr, compute_addr
from nbs.factory import new_local_store
from nbs.manifest import TableSpec
from nbs.file_table_persister import TABLE_TEMP_PREFIX
from tests.record_parts import TablePart, table_name, table_parts
from nbsclient import protocol as p
from nbsclient import store as client_store
from nbsclient.connection import Connection
from tests.daemon_harness import ROOT, Daemon, raw_dealer
from tests.forking import in_child

pytestmark = pytest.mark.timeout(300)

MEMTABLE = 256 << 10


def mixed(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(2000) if i % 2 else (b"{'row': %d} " % i) * 150 for i in range(count)]


def temp_files(directory: str) -> list[str]:
    return [name for name in os.listdir(directory) if name.startswith(TABLE_TEMP_PREFIX)] \
        if os.path.isdir(directory) else []


def table_files(directory: str) -> dict[str, bytes]:
    return {name: Path(directory, name).read_bytes() for name in os.listdir(directory) if len(name) == 32}


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of 16 KiB, so every table goes as many parts with several in flight."""
    monkeypatch.setattr(client_store, "PART_BYTES", 16 << 10)


def test_streamed_tables_commit_read_back_and_match_a_direct_store(nbsd_daemon: Daemon, tmp_path: Path,
                                                                   small_parts: None) -> None:
    chunks = mixed(600, 1)  # about 1 MiB: four memtables of 256 KiB, so four tables
    path = nbsd_daemon.store_path("streamed")
    before = nbsd_daemon.stats()["requests"].get(p.TABLE_CHUNKS, 0)
    with nbsclient.connect(path, nbsd_daemon.endpoint, memtable_size=MEMTABLE) as store:
        addrs = store.put_many(chunks)
        assert addrs == [compute_addr(c) for c in chunks]
        assert store.commit(addrs[-1], store.root())
    assert nbsd_daemon.stats()["requests"][p.TABLE_CHUNKS] - before > 20
    with nbsclient.connect(path, nbsd_daemon.endpoint) as reader:
        assert reader.root() == addrs[-1]
        assert reader.get_many(addrs) == dict(zip(addrs, chunks))
    direct_dir = str(tmp_path / "direct")
    os.makedirs(direct_dir)
    direct = new_local_store(direct_dir, MEMTABLE)
    assert direct.put_many(chunks) == addrs
    assert direct.commit(addrs[-1], direct.root())
    streamed = table_files(path)
    assert len(streamed) >= 4
    assert streamed == table_files(direct_dir)  # same names, same bytes
    assert not temp_files(path)


class RawSession:
    """A session driven by hand-made requests, as a buggy or hostile client would send them."""

    def __init__(self, sock: zmq.Socket[bytes], spec: str) -> None:
        self.sock = sock
        self.ids = iter(range(1, 1 << 30))
        self.handle = self.call(p.OPEN, {"spec": spec})["handle"]

    def call(self, op: str, body: dict[str, Any]) -> Any:
        request_id = next(self.ids)
        self.sock.send(p.encode_request(request_id, op, {**body, "handle": getattr(self, "handle", None)}))
        _, reply_id, status, reply = p.unpack(self.sock.recv())
        assert reply_id == request_id
        return reply if status == p.OK else p.error_from_reply(reply["type"], reply["message"])

    def part(self, upload: int, part: TablePart, **changes: object) -> Any:
        body = {"upload": upload, "seq": part.seq, "offset": part.offset, "records": [bytes(x) for x in part.pieces],
                "addrs": b"".join(part.addrs), "lengths": p.encode_lengths(part.lengths), **changes}
        return self.call(p.TABLE_PART, body)


def parts_of(chunks: list[bytes]) -> tuple[list[bytes], list[TablePart]]:
    addrs = [compute_addr(c) for c in chunks]
    return addrs, list(table_parts(addrs, chunks, 16 << 10))


@pytest.mark.parametrize("damage", ["address", "crc"])
def test_a_corrupt_part_is_refused_with_a_typed_error_and_leaves_no_temp_file(nbsd_daemon: Daemon,
                                                                              damage: str) -> None:
    path = nbsd_daemon.store_path(f"corrupt-{damage}")
    os.makedirs(path)
    addrs, parts = parts_of(mixed(100, 2))
    ctx, sock = raw_dealer(nbsd_daemon.endpoint, 10000)
    try:
        session = RawSession(sock, path)
        upload = session.call(p.TABLE_BEGIN, {})["upload"]
        assert session.part(upload, parts[0]) == {}
        assert len(temp_files(path)) == 1
        if damage == "address":
            wrong = bytearray(b"".join(parts[1].addrs))
            wrong[-1] ^= 1
            error = session.part(upload, parts[1], addrs=bytes(wrong))
        else:
            records = bytearray(b"".join(parts[1].pieces))
            records[parts[1].lengths[0] - 2] ^= 0x10
            error = session.part(upload, parts[1], records=[bytes(records)])
        assert isinstance(error, p.ERROR_CODES["CorruptTableError"])
        assert not temp_files(path)
        later = session.part(upload, parts[2])
        assert isinstance(later, p.ERROR_CODES["UploadError"]) and f"upload {upload} was discarded: " in str(later)
        assert str(error) in str(later)  # the part that ended the upload is named
        end = session.call(p.TABLE_END, {"upload": upload, "name": bytes(table_name(addrs)), "count": len(addrs)})
        assert isinstance(end, p.ERROR_CODES["UploadError"])
        absent = session.call(p.HAS, {"addrs": addrs[:10]})["absent"]
        assert len(absent) == 10  # nothing of the refused table is visible
    finally:
        ctx.destroy(0)
    assert not table_files(path)


def test_an_upload_abandoned_by_closing_the_session_leaves_no_temp_file(nbsd_daemon: Daemon) -> None:
    path = nbsd_daemon.store_path("abandoned-close")
    os.makedirs(path)
    _, parts = parts_of(mixed(100, 3))
    ctx, sock = raw_dealer(nbsd_daemon.endpoint, 10000)
    try:
        session = RawSession(sock, path)
        for _ in range(2):
            upload = session.call(p.TABLE_BEGIN, {})["upload"]
            assert session.part(upload, parts[0]) == {}
        assert len(temp_files(path)) == 2
        assert session.call(p.CLOSE, {}) == {"closed": True}
        assert not temp_files(path)
    finally:
        ctx.destroy(0)


def test_a_killed_client_s_upload_is_cleaned_up_when_its_session_expires(tmp_path: Path) -> None:
    with Daemon(extra=["--session-ttl", "1"]) as daemon:
        path = daemon.store_path("abandoned-kill")
        os.makedirs(path)
        script = (
            "import sys, os, nbsclient\n"
            "from nbsclient import store as s, protocol as p\n"
            "store = nbsclient.connect(sys.argv[1], sys.argv[2])\n"
            "original = store._conn.pipeline\n"
            "def pipeline(op, requests, window, on_reply, timeout=None):\n"
            "    if op != p.TABLE_CHUNKS:\n"
            "        return original(op, requests, window, on_reply, timeout)\n"
            "    body, attachment = next(iter(requests))\n"
            "    store._conn.request(op, {**body, 'data': attachment})\n"
            "    print('sent', flush=True)\n"
            "    sys.stdin.read()\n"
            "store._conn.pipeline = pipeline\n"
            "store.put_many([os.urandom(4000) for _ in range(100)])\n")
        child = subprocess.Popen([sys.executable, "-c", script, path, daemon.endpoint], cwd=ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "sent"
            assert len(temp_files(path)) == 1
            child.kill()
            child.wait()
            deadline = time.monotonic() + 30  # maintenance expires idle sessions every 5 s
            while temp_files(path):
                assert time.monotonic() < deadline, daemon.log.read_text()
                time.sleep(0.2)
        finally:
            child.kill()
            child.wait()


class _RestartingConnection(Connection):
    """Restarts the daemon (SIGKILL) just before the third part of the first upload is sent."""

    def __init__(self, endpoint: str, daemon: Daemon) -> None:
        super().__init__(endpoint, timeout=10.0, retries=3)
        self.daemon = daemon
        self.parts = 0
        self.restarted = False

    def _send_once(self, channel: Any, frame: bytes, attachment: bytes | None, op: str, timeout: float) -> None:
        if op == p.TABLE_CHUNKS:
            self.parts += 1
            if self.parts == 3 and not self.restarted:
                self.restarted = True
                self.daemon.restart()
        super()._send_once(channel, frame, attachment, op, timeout)


def test_a_daemon_restart_mid_upload_still_ends_in_a_correct_commit(small_parts: None) -> None:
    with Daemon() as daemon:
        path = daemon.store_path("restart-mid-upload")
        chunks = mixed(300, 4)
        store = nbsclient.connect(path, daemon.endpoint, memtable_size=MEMTABLE)
        conn = _RestartingConnection(daemon.endpoint, daemon)
        conn.max_message = store._conn.max_message
        store._conn = conn
        addrs = store.put_many(chunks)
        assert store.commit(addrs[-1], store.root())
        assert conn.restarted and conn.parts > 3
        store.close()
        reopened = new_local_store(path)
        assert reopened.root() == addrs[-1]
        assert reopened.get_many(addrs) == dict(zip(addrs, chunks))


class HeldEnds(threading.Event):
    """Set to let tables ending in the background send their ``table_end``; ``begun`` counts the uploads
    begun by then."""

    begun: list[int]


@pytest.fixture
def held_ends(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldEnds]:
    release = HeldEnds()
    release.begun = []
    real = client_store.DaemonStore._end_in_background
    begin = client_store.DaemonStore._begin_upload
    begins = [0]

    def counted(self: client_store.DaemonStore, handle: int) -> int:
        begins[0] += 1
        return begin(self, handle)

    def held(self: client_store.DaemonStore, handle: int, upload: int | None) -> tuple[TableSpec, int]:
        release.begun.append(begins[0])
        assert release.wait(60), "the test never released the table end"
        return real(self, handle, upload)

    monkeypatch.setattr(client_store.DaemonStore, "_begin_upload", counted)

    monkeypatch.setattr(client_store.DaemonStore, "_end_in_background", held)
    yield release
    release.set()


def _table_ends(daemon: Daemon) -> int:
    return int(daemon.stats()["requests"].get(p.TABLE_END, 0))


def _holds_exactly(path: str, addrs: list[Addr], chunks: list[bytes]) -> bool:
    reopened = new_local_store(path)
    return reopened.root() == addrs[-1] and reopened.get_many(addrs) == dict(zip(addrs, chunks))


def test_a_memtable_full_mid_write_ends_in_the_background_and_its_chunks_stay_readable(
        nbsd_daemon: Daemon, held_ends: HeldEnds) -> None:
    """``put_many`` goes on filling the next memtable while the full one's table ends (the daemon's index build
    and fsync); until the daemon has that table, its chunks are read from the client's memtable.  The next
    upload is begun before that end is sent, so the daemon answers it at once, not behind the end's work."""
    chunks = mixed(200, 8)  # about 400 KB: one memtable of 256 KiB fills, the rest stays open
    path = nbsd_daemon.store_path("background-end")
    before = _table_ends(nbsd_daemon)
    with nbsclient.connect(path, nbsd_daemon.endpoint, memtable_size=MEMTABLE) as store:
        addrs = store.put_many(chunks)
        assert _table_ends(nbsd_daemon) == before  # put_many returned with the full table's end held
        assert held_ends.begun == [2]
        assert store.get_many(addrs) == dict(zip(addrs, chunks))
        assert store.get(addrs[0]) == chunks[0] and not store.has_many(addrs)
        held_ends.set()
        assert store.commit(addrs[-1], store.root())
        assert _table_ends(nbsd_daemon) == before + 2
    assert _holds_exactly(path, addrs, chunks)


def test_a_background_end_lost_to_a_daemon_restart_sends_its_table_again(held_ends: HeldEnds) -> None:
    with Daemon() as daemon:
        path = daemon.store_path("background-end-restart")
        chunks = mixed(200, 9)
        with nbsclient.connect(path, daemon.endpoint, memtable_size=MEMTABLE) as store:
            addrs = store.put_many(chunks)
            daemon.restart()  # the upload of the ending table is lost with the daemon
            held_ends.set()
            assert store.commit(addrs[-1], store.root())
        assert _holds_exactly(path, addrs, chunks)


def test_a_child_forked_while_a_table_ends_sends_that_table_again_in_its_own_session(
        nbsd_daemon: Daemon, held_ends: HeldEnds) -> None:
    """The parent's background end cannot finish in a forked child (its thread is not there): the child must
    neither wait for it forever nor lose the table."""
    path = nbsd_daemon.store_path("background-end-fork")
    chunks = mixed(200, 10)
    store = nbsclient.connect(path, nbsd_daemon.endpoint, memtable_size=MEMTABLE)
    addrs = store.put_many(chunks)

    def commit_in_child() -> bool:
        with store:
            return store.commit(addrs[-1], store.root())

    assert in_child(commit_in_child, timeout=60)
    held_ends.set()
    store.close()
    assert _holds_exactly(path, addrs, chunks)


HUNG_END_THEN_EXIT = """
import sys, time
import nbsclient
from nbsclient import store
store.DaemonStore._end_in_background = lambda self, handle, upload: time.sleep(600)  # a table end that never comes
s = nbsclient.connect(sys.argv[1], sys.argv[2], memtable_size=256 << 10)
s.put_many([bytes([i % 256]) * 2000 + i.to_bytes(4, "big") for i in range(200)])  # one memtable fills
print("written", flush=True)
"""


def test_a_process_exits_without_waiting_for_a_table_end_it_did_not_commit(nbsd_daemon: Daemon) -> None:
    """Uncommitted writes are dropped at exit, so a table still ending then (its daemon hung, or slow) must
    not hold the process for the minutes a table end may take."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", HUNG_END_THEN_EXIT, nbsd_daemon.store_path("hung-end"),
                           nbsd_daemon.endpoint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "written\n", proc.stderr
    assert time.monotonic() - started < 60  # not the 600 s the end would take


@pytest.mark.parametrize(("retries", "lost", "lands"), [(6, 5, True), (1, 2, True), (1, 3, False)])
def test_a_table_is_sent_again_as_often_as_a_request_would_be(nbsd_daemon: Daemon, monkeypatch: pytest.MonkeyPatch,
                                                              retries: int, lost: int, lands: bool) -> None:
    """Uploads cut short (a daemon restart, a lost part reply) are resent up to the client's ``retries``
    (at least twice): a writer told to ride out several daemon restarts must not give up after three tries."""
    real = client_store.DaemonStore._send_chunks
    failures = [0]

    def flaky(self: client_store.DaemonStore, *args: Any, **kwargs: Any) -> Any:
        if failures[0] < lost:
            failures[0] += 1
            raise p.DaemonNotAnsweringError("a part's reply never came (test)")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(client_store.DaemonStore, "_send_chunks", flaky)
    chunks = mixed(50, retries + lost)
    with nbsclient.connect(nbsd_daemon.store_path(f"resent-{retries}-{lost}"), nbsd_daemon.endpoint,
                           retries=retries) as store:
        if lands:
            addrs = store.put_many(chunks)
            assert store.commit(addrs[-1], store.root())
            assert store.get_many(addrs) == dict(zip(addrs, chunks))
        else:
            with pytest.raises(p.DaemonNotAnsweringError):
                store.put_many(chunks)
    assert failures[0] == (lost if lands else max(2, retries) + 1)


def test_a_part_s_addresses_are_made_as_its_reply_comes_while_later_parts_go(
        nbsd_daemon: Daemon, small_parts: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client turns each ``table_chunks`` reply into addresses as it comes, between sending the later
    parts, not all at once after the last reply (the daemon's chunk workers would idle meanwhile)."""
    events: list[str] = []
    send_once, reply_addrs = Connection._send_once, client_store._reply_addrs

    def sent(self: Connection, *args: Any) -> None:
        events.append("sent")
        send_once(self, *args)

    def replied(reply: dict[str, Any]) -> list[Addr]:
        events.append("replied")
        return reply_addrs(reply)

    monkeypatch.setattr(Connection, "_send_once", sent)
    monkeypatch.setattr(client_store, "_reply_addrs", replied)
    chunks = mixed(100, 9)  # about 210 KiB: 13 parts of 16 KiB, at most 4 in flight
    with nbsclient.connect(nbsd_daemon.store_path("replies-as-they-come"), nbsd_daemon.endpoint) as store:
        assert store.put_many(chunks) == [compute_addr(c) for c in chunks]
    assert events.count("replied") == events.count("sent") > client_store.PARTS_IN_FLIGHT
    assert events.index("replied") < len(events) - 1 - events[::-1].index("sent")  # before the last part went


@pytest.mark.parametrize("form", ["shared", "attachment", "data"], ids=["part-memory", "attachments", "older-daemon"])
def test_puts_and_put_manys_with_repeats_make_the_tables_a_direct_store_makes(
        nbsd_daemon: Daemon, tmp_path: Path, small_parts: None, monkeypatch: pytest.MonkeyPatch,
        form: str) -> None:
    """The daemon hashes what ``put_many`` sends; a ``put`` chunk waits for the next part.  Chunks the store
    holds and repeats are stored once, in insertion order: the same tables as a direct store's.  Parts go in
    the client's part memory; to a daemon that offers none, as attachments; to one whose hello does not offer
    attachments either (an older one), in the request body."""
    hello = Connection.hello
    offered = {"shared": {}, "attachment": {"parts_socket": None},
               "data": {"parts_socket": None, "attachments": None}}[form]
    monkeypatch.setattr(Connection, "hello", lambda self: {**hello(self), **offered})
    forms: set[str] = set()
    pipeline = Connection.pipeline

    def spy(self: Connection, op: str, requests: Any, *args: Any) -> Any:
        def seen() -> Any:  # one at a time, as the pipeline takes them: a slot is reused once answered
            for body, attachment in requests:
                forms.update(key for key in ("shared", "data") if key in body)
                forms.update(["attachment"] if attachment is not None else [])
                yield body, attachment
        return pipeline(self, op, seen(), *args)

    monkeypatch.setattr(Connection, "pipeline", spy)
    chunks = mixed(400, 5)
    first, later = chunks[:100], chunks[60:300] + chunks[250:400]

    def write(store: Any) -> list[Any]:
        addrs: list[Any] = store.put_many(first)
        assert store.commit(addrs[-1], store.root())
        for chunk in later[:30]:
            addrs.append(store.put(chunk))
        addrs += store.put_many(later[30:])
        assert store.commit(addrs[-1], store.root())
        return addrs

    path = nbsd_daemon.store_path(f"puts-and-repeats-{form}")
    with nbsclient.connect(path, nbsd_daemon.endpoint, memtable_size=MEMTABLE) as store:
        via = write(store)
        assert store.get_many(via) == {compute_addr(c): c for c in first + later}
    assert forms == {form}
    direct_dir = str(tmp_path / "direct")
    os.makedirs(direct_dir)
    assert write(new_local_store(direct_dir, MEMTABLE)) == via
    assert table_files(path) == table_files(direct_dir)
    assert not temp_files(path)


def test_a_part_of_chunks_out_of_order_is_placed_after_its_predecessor_attached_or_not(nbsd_daemon: Daemon) -> None:
    path = nbsd_daemon.store_path("chunks-out-of-order")
    os.makedirs(path)
    chunks = mixed(60, 6)
    ctx, sock = raw_dealer(nbsd_daemon.endpoint, 10000)
    try:
        session = RawSession(sock, path)
        upload = session.call(p.TABLE_BEGIN, {})["upload"]
        halves = (chunks[30:], chunks[:30])
        for seq, half in zip((1, 0), halves):  # part 1 is sent (and waits) before part 0
            body = {"upload": upload, "seq": seq, "handle": session.handle,
                    "lengths": p.encode_lengths([len(c) for c in half])}
            if seq:  # as an attachment (what a client does), or in the body (what older clients do)
                sock.send_multipart([p.encode_request(100 + seq, p.TABLE_CHUNKS, body), b"".join(half)])
            else:
                sock.send(p.encode_request(100 + seq, p.TABLE_CHUNKS, {**body, "data": b"".join(half)}))
        replies = {}
        for _ in halves:
            _, reply_id, status, reply = p.unpack(sock.recv())
            assert status == p.OK
            replies[reply_id - 100] = reply["addrs"]
        assert replies[0] + replies[1] == b"".join(compute_addr(c) for c in chunks)
        end = session.call(p.TABLE_END, {"upload": upload})
        assert end["count"] == len(chunks)
        half_named = session.call(p.TABLE_END, {"upload": upload, "name": b"x"})  # a name needs its count
        assert isinstance(half_named, p.ERROR_CODES["BadRequest"])
    finally:
        ctx.destroy(0)
    assert len(table_files(path)) == 1 and not temp_files(path)


@pytest.fixture
def two_in_flight(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon that serves a client at most two requests at once (fewer than the parts a client sends)."""
    config = tmp_path / "nbsd.toml"
    config.write_text("max_inflight_per_client = 2\n")
    with Daemon(extra=["--config", str(config), "--threads", "4"]) as daemon:
        yield daemon


def test_a_part_refused_as_busy_ends_its_upload_and_frees_the_parts_waiting_for_it(two_in_flight: Daemon) -> None:
    """Parts 1 and 2 wait for part 0, which the daemon refuses: they are answered at once, as busy as it, not
    after their 30 s wait for a turn that cannot come, and the upload is gone."""
    path = two_in_flight.store_path("busy-part")
    os.makedirs(path)
    chunks = mixed(30, 7)
    ctx, sock = raw_dealer(two_in_flight.endpoint, 20000)  # well under the turn wait: its replies must come first
    try:
        session = RawSession(sock, path)
        upload = session.call(p.TABLE_BEGIN, {})["upload"]
        for seq in (1, 2, 0):
            part = chunks[10 * seq:10 * seq + 10]
            body = {"upload": upload, "seq": seq, "handle": session.handle,
                    "lengths": p.encode_lengths([len(c) for c in part])}
            sock.send_multipart([p.encode_request(100 + seq, p.TABLE_CHUNKS, body), b"".join(part)])
        replies = {}
        for _ in range(3):
            _, reply_id, status, reply = p.unpack(sock.recv())
            assert status == p.ERROR
            replies[reply_id - 100] = reply["type"]
        assert replies == {0: p.BUSY, 1: p.BUSY, 2: p.BUSY}  # behind a refused part, busy too: the client backs off
        assert isinstance(session.call(p.TABLE_END, {"upload": upload}), p.DaemonBusyError)
        assert session.call(p.COUNT, {}) == {"count": 0}  # the session serves on: no thread is held
    finally:
        ctx.destroy(0)
    assert not table_files(path) and not temp_files(path)


def test_put_many_with_more_parts_in_flight_than_the_daemon_serves_still_lands(
        two_in_flight: Daemon, small_parts: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts beyond the two the daemon serves get ``Busy``: the client sends the table again a part at a time,
    and the put lands whole."""
    refused: list[p.DaemonBusyError] = []
    pipeline = Connection.pipeline

    def spy(self: Connection, *args: Any) -> Any:
        try:
            return pipeline(self, *args)
        except p.DaemonBusyError as err:
            refused.append(err)
            raise

    monkeypatch.setattr(Connection, "pipeline", spy)
    path = two_in_flight.store_path("busy-put-many")
    os.makedirs(path)
    chunks = mixed(200, 8)
    with nbsclient.connect(path, two_in_flight.endpoint) as store:
        addrs = store.put_many(chunks)
        assert addrs == [compute_addr(c) for c in chunks]
        assert store.commit(addrs[-1], store.root())
    assert refused
    with nbsclient.connect(path, two_in_flight.endpoint) as store:
        assert store.get_many(addrs) == dict(zip(addrs, chunks))
    assert len(table_files(path)) == 1 and not temp_files(path)
