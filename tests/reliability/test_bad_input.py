"""Bad input of every kind gives a typed error and never a crash (bounded fuzzing with hypothesis)."""

from __future__ import annotations

import os

import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from nbs.addr import Addr
from nbs.errors import NBSError
from nbs.file_manifest import format_manifest, parse_manifest
from nbs.manifest import ManifestContents, TableSpec
from nbs.spec import parse_store_spec
from nbs.store_name import validate_store_name
from nbs.table_writer import build_table
from nbsclient import protocol as p
from tests.daemon_harness import Daemon

GOOD = format_manifest(ManifestContents("7.18", Addr.of(b"l"), Addr.of(b"r"), (TableSpec(Addr.of(b"t"), 3),)))


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyz:\n -", max_size=120))
def test_manifest_text_fuzz(text: str) -> None:
    try:
        parse_manifest(text, "fuzz")
    except NBSError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(GOOD) - 1), st.characters(codec="ascii"))
def test_manifest_single_character_mutations(pos: int, char: str) -> None:
    mutated = GOOD[:pos] + char + GOOD[pos + 1:]
    try:
        parse_manifest(mutated, "fuzz")
    except NBSError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_spec_and_store_name_fuzz(text: str) -> None:
    for check in (parse_store_spec, validate_store_name, Addr.parse):
        try:
            check(text)
        except NBSError:
            pass


def test_too_many_requests_in_flight_are_refused_not_queued() -> None:
    with Daemon(extra=["--threads", "2"]) as daemon:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 60000)
        sock.connect(daemon.endpoint)
        try:
            sock.send(p.encode_request(1, p.OPEN, {"spec": daemon.store_path("busy")}))
            handle = p.unpack(sock.recv())[3]["handle"]
            table = build_table((Addr.of(c), c) for c in (os.urandom(4096) + bytes([i]) for i in range(256))).data
            n = 60
            for i in range(n):
                sock.send(p.encode_request(100 + i, p.WRITE_TABLE, {"handle": handle, "data": table}))
            replies = [p.unpack(sock.recv()) for _ in range(n)]
        finally:
            ctx.destroy(0)
        busy = [r for r in replies if r[2] == p.ERROR and r[3]["type"] == p.BUSY]
        served = [r for r in replies if r[2] == p.OK]
        assert busy and served and len(busy) + len(served) == n
        assert {r[1] for r in replies} == set(range(100, 100 + n))


@pytest.mark.parametrize("flip", [0, 5, 13, 30, 45, 60, 70, 90, -1, -9, -13, -17])
def test_corrupted_table_sent_to_the_daemon_is_refused(nbsd_daemon: Daemon, flip: int) -> None:
    import nbsclient

    data = bytearray(build_table((Addr.of(c), c) for c in [b"a" * 50, b"b" * 50]).data)
    data[flip] ^= 0xFF
    with nbsclient.connect(nbsd_daemon.store_path("bad-table"), nbsd_daemon.endpoint) as store:
        with pytest.raises(NBSError) as err:
            store._call(p.WRITE_TABLE, {"data": bytes(data)})
        assert type(err.value).__name__ == "CorruptTableError"
        assert not store.has(Addr.of(b"a" * 50))


def test_table_filing_a_chunk_under_a_wrong_address_is_refused_by_the_daemon(nbsd_daemon: Daemon) -> None:
    """Verification runs in batches on the daemon's threads: a lie in the last batch is still caught."""
    import nbsclient
    from nbs.chunk_workers import BATCH_CHUNKS
    from nbs.table_writer import TableWriter

    chunks = [os.urandom(200) for _ in range(3 * BATCH_CHUNKS)]
    wrong = Addr.of(b"a chunk the client never sent")
    writer = TableWriter()
    for i, chunk in enumerate(chunks):
        writer.add(wrong if i == len(chunks) - 2 else Addr.of(chunk), chunk)
    with nbsclient.connect(nbsd_daemon.store_path("lying-table"), nbsd_daemon.endpoint) as store:
        with pytest.raises(NBSError, match="does not hash to") as err:
            store._call(p.WRITE_TABLE, {"data": writer.finish().data})
        assert type(err.value).__name__ == "CorruptTableError"
        assert store.has_many([wrong, Addr.of(chunks[0])]) == {wrong, Addr.of(chunks[0])}
