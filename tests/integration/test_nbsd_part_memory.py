"""Parts of chunks in the client's part memory, with a real daemon, real memfds and a real forked child."""

from __future__ import annotations

import itertools
import logging
import os
import random
import shutil
import stat
import tempfile
from typing import Any

import pytest

import nbsclient
from nbs.addr import compute_addr
from nbsclient import protocol as p
from nbsclient.connection import Connection
from nbsclient.part_memory import PartMemory
from tests.daemon_harness import Daemon, raw_dealer
from tests.forking import in_child

PART = 2 << 20
REQUEST_IDS = itertools.count(1)


def chunks_of(total: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(4096) if i % 2 else b"{'row': %d} " % (i + 1000 * seed) * 300
            for i in range(total // 4096)]


def parts(daemon: Daemon) -> dict[str, Any]:
    return daemon.stats()["chunk_parts"]  # type: ignore[no-any-return]


def write_and_read_back(daemon: Daemon, name: str, chunks: list[bytes], **options: Any) -> None:
    with nbsclient.connect(daemon.store_path(name), daemon.endpoint, **options) as store:
        addrs = store.put_many(chunks)
        assert store.commit(addrs[-1], store.root())
    with nbsclient.connect(daemon.store_path(name), daemon.endpoint) as store:
        assert store.get_many(addrs) == {compute_addr(c): c for c in chunks}


def test_writes_go_in_part_memory_which_the_session_close_unmaps(nbsd_daemon: Daemon) -> None:
    before = parts(nbsd_daemon)
    assert before["parts_socket"] == nbsd_daemon.socket + ".parts"
    mode = stat.S_IMODE(os.stat(before["parts_socket"]).st_mode)
    assert mode == stat.S_IMODE(os.stat(nbsd_daemon.socket).st_mode) == 0o660
    chunks = chunks_of(5 * PART, 1)
    with nbsclient.connect(nbsd_daemon.store_path("part-memory"), nbsd_daemon.endpoint) as store:
        addrs = store.put_many(chunks)
        assert store.commit(addrs[-1], store.root())
        assert parts(nbsd_daemon)["memories"] == before["memories"] + 1
        assert store.get_many(addrs[:50]) == {compute_addr(c): c for c in chunks[:50]}
    after = parts(nbsd_daemon)
    assert after["shared_memory"] - before["shared_memory"] >= 5 and after["socket"] == before["socket"]
    assert after["memories"] == before["memories"]


def test_a_client_may_send_its_parts_through_the_socket(nbsd_daemon: Daemon) -> None:
    before = parts(nbsd_daemon)
    write_and_read_back(nbsd_daemon, "no-part-memory", chunks_of(3 * PART, 2), part_memory=False)
    after = parts(nbsd_daemon)
    assert after["socket"] - before["socket"] >= 3 and after["shared_memory"] == before["shared_memory"]


def test_a_forked_child_writes_through_part_memory_of_its_own(nbsd_daemon: Daemon) -> None:
    """The parent's part memory is shared with a forked child: were the child to write its parts there, they
    would overwrite the parent's in flight.  The child makes its own; the parent's stays as it was."""
    path = nbsd_daemon.store_path("forked-part-memory")
    store = nbsclient.connect(path, nbsd_daemon.endpoint)
    first = chunks_of(3 * PART, 3)
    store.put_many(first)
    parent_memory = store._parts  # white box: the memory the parent handed over
    assert parent_memory is not None
    before, parent_bytes = parts(nbsd_daemon), bytes(parent_memory._view)
    theirs = chunks_of(4 * PART, 4)

    def child() -> int:
        addrs = store.put_many(theirs)
        assert store.get_many(addrs) == {compute_addr(c): c for c in theirs}
        assert store.commit(addrs[-1], store.root())
        return len(addrs)

    assert in_child(child) == len(theirs)
    assert bytes(parent_memory._view) == parent_bytes
    middle = parts(nbsd_daemon)
    assert middle["shared_memory"] - before["shared_memory"] >= 4 and middle["socket"] == before["socket"]
    mine = chunks_of(4 * PART, 5)
    addrs = store.put_many(mine)
    assert store._parts is parent_memory  # still the parent's, still handed over
    assert store.get_many(addrs) == {compute_addr(c): c for c in mine}
    assert store.commit(addrs[-1], store.root()) is False  # the child committed first: this view is stale
    store.close()
    with nbsclient.connect(path, nbsd_daemon.endpoint) as reader:  # the child's commit landed whole
        assert reader.get_many([compute_addr(c) for c in theirs]) == {compute_addr(c): c for c in theirs}


def test_a_client_whose_handover_fails_says_so_once_and_sends_through_the_socket(
        caplog: pytest.LogCaptureFixture) -> None:
    with Daemon() as daemon:
        os.unlink(daemon.socket + ".parts")  # the daemon still listens, but no client can reach it
        with caplog.at_level(logging.WARNING, logger="nbsclient"):
            with nbsclient.connect(daemon.store_path("handover-fails"), daemon.endpoint) as store:
                for seed in (6, 7):
                    chunks = chunks_of(PART, seed)
                    addrs = store.put_many(chunks)
                    assert store.get_many(addrs) == {compute_addr(c): c for c in chunks}
        warnings = [r.getMessage() for r in caplog.records if "part memory unavailable" in r.getMessage()]
        assert len(warnings) == 1 and "No such file" in warnings[0]
        assert parts(daemon)["socket"] >= 2 and parts(daemon)["shared_memory"] == 0


def test_a_daemon_told_not_to_offers_no_part_memory() -> None:
    with Daemon(extra=["--no-client-part-memory"]) as daemon:
        assert parts(daemon)["parts_socket"] is None
        assert not os.path.exists(daemon.socket + ".parts")
        write_and_read_back(daemon, "refused", chunks_of(2 * PART, 8))
        assert parts(daemon)["shared_memory"] == 0 and parts(daemon)["socket"] >= 2


def test_the_parts_socket_goes_with_the_daemon() -> None:
    with Daemon() as daemon:
        write_and_read_back(daemon, "stopping", chunks_of(PART, 9))
        assert os.path.exists(daemon.socket + ".parts")
        assert daemon.stop() == 0
        assert not os.path.exists(daemon.socket + ".parts")


def call(sock: Any, op: str, body: dict[str, Any]) -> Any:
    """One hand-made request, as a buggy or hostile client would send it: the reply body, or the typed error."""
    request_id = next(REQUEST_IDS)
    sock.send(p.encode_request(request_id, op, body))
    _, reply_id, status, reply = p.unpack(sock.recv())
    assert reply_id == request_id
    return reply if status == p.OK else p.error_from_reply(reply["type"], reply["message"])


def test_a_part_in_part_memory_is_read_only_by_its_own_session_and_only_where_it_says(nbsd_daemon: Daemon) -> None:
    chunks = chunks_of(64 << 10, 10)
    size = sum(map(len, chunks))
    lengths = p.encode_lengths([len(c) for c in chunks])
    ctx, sock = raw_dealer(nbsd_daemon.endpoint, 10000)
    memory = PartMemory(2, 128 << 10)
    try:
        opened = [call(sock, p.OPEN, {"spec": nbsd_daemon.store_path(f"raw-part-memory-{i}")}) for i in (0, 1)]
        (mine, token), (other, _) = ((o["handle"], o["parts_token"]) for o in opened)
        memory.hand_over(nbsd_daemon.socket + ".parts", token, 5.0)
        shared = memory.put(0, chunks, size)
        assert shared is not None
        upload = call(sock, p.TABLE_BEGIN, {"handle": mine})["upload"]
        part = {"handle": mine, "upload": upload, "seq": 0, "lengths": lengths}
        bad_parts: list[tuple[dict[str, Any], str]] = [
            ({"shared": shared, "data": b"x" * size}, "one of them"),
            ({"shared": [shared[0], 200 << 10, size]}, "not in part memory"),
            ({"shared": [shared[0] ^ 1, 0, size]}, "no part memory")]
        for bad, message in bad_parts:
            with pytest.raises(p.DaemonError, match=message):  # BadRequest
                raise call(sock, p.TABLE_CHUNKS, {**part, **bad})
        upload = call(sock, p.TABLE_BEGIN, {"handle": mine})["upload"]  # a fresh upload for the good part
        reply = call(sock, p.TABLE_CHUNKS, {**part, "upload": upload, "shared": shared})
        assert reply["addrs"] == b"".join(compute_addr(c) for c in chunks)
        theirs = call(sock, p.TABLE_BEGIN, {"handle": other})["upload"]
        with pytest.raises(p.DaemonError, match="no part memory"):  # another session, even knowing the id
            raise call(sock, p.TABLE_CHUNKS, {**part, "handle": other, "upload": theirs, "shared": shared})
    finally:
        memory.close()
        sock.close(0)
        ctx.term()


def test_a_client_reaches_the_parts_socket_beside_the_socket_it_knows() -> None:
    """A daemon's directory mounted elsewhere (a container): the path the daemon names for its parts socket
    is not the client's, the one beside the client's socket is."""
    with Daemon() as daemon:
        elsewhere = tempfile.mkdtemp(dir="/tmp")
        try:
            for name in ("nbsd.sock", "nbsd.sock.parts"):
                os.link(os.path.join(daemon.workdir, name), os.path.join(elsewhere, name))
                os.unlink(os.path.join(daemon.workdir, name))  # the daemon's own paths: gone for this client
            endpoint = f"ipc://{elsewhere}/nbsd.sock"
            chunks = chunks_of(2 * PART, 11)
            with nbsclient.connect(daemon.store_path("mounted-elsewhere"), endpoint) as store:
                addrs = store.put_many(chunks)
                assert store.get_many(addrs) == {compute_addr(c): c for c in chunks}
            with Connection(endpoint) as conn:
                figures = conn.request(p.STATS, {})["chunk_parts"]
            assert figures["shared_memory"] >= 2 and figures["socket"] == 0
        finally:
            shutil.rmtree(elsewhere)
