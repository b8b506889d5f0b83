"""Part memory: what nbsd maps of a client's memfd, what it refuses, and the handover over a real Unix socket."""

from __future__ import annotations

import fcntl
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbsclient import protocol as p
from nbsclient.part_memory import PartMemory, PartMemoryUnavailable
from nbsd import part_memory as pm
from nbsd.part_memory import MAPPED, PartMemoryError, PartMemoryListener, SessionPartMemory, map_part_memory

TOKEN = bytes(range(16))


def memfd(size: int, sealing: bool = True) -> int:
    fd = os.memfd_create("test-parts", os.MFD_ALLOW_SEALING if sealing else 0)
    os.ftruncate(fd, size)
    return fd


@pytest.fixture()
def session_memory() -> Iterator[SessionPartMemory]:
    held = MAPPED.held, MAPPED.held_bytes
    memory = SessionPartMemory()
    yield memory
    memory.close()
    assert (MAPPED.held, MAPPED.held_bytes) == held  # every mapping counted is given back


def test_a_memfd_is_sealed_against_shrinking_and_mapped_read_only() -> None:
    fd = memfd(1 << 16)
    try:
        os.pwrite(fd, b"chunk bytes", 100)
        mapping = map_part_memory(fd)
        assert mapping[100:111] == b"chunk bytes"
        with pytest.raises(TypeError):
            mapping[0:1] = b"x"  # read-only
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 10)  # the client can no longer pull pages from under the daemon's reads
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_SHRINK
        mapping.close()
    finally:
        os.close(fd)


def test_a_regular_file_or_an_unsealable_memfd_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"x" * 4096)
    fd = os.open(path, os.O_RDWR)
    unsealable = memfd(4096, sealing=False)
    try:
        for bad in (fd, unsealable):
            with pytest.raises(PartMemoryError, match="cannot seal"):
                map_part_memory(bad)
    finally:
        os.close(fd)
        os.close(unsealable)
    r, w = os.pipe()
    try:
        with pytest.raises(PartMemoryError, match="not a memfd"):
            map_part_memory(r)
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("size", [0, pm.MAX_MEMORY + 1])
def test_part_memory_of_a_size_out_of_bounds_is_refused(size: int) -> None:
    fd = memfd(size)
    try:
        with pytest.raises(PartMemoryError, match="part memory holds"):
            map_part_memory(fd)
    finally:
        os.close(fd)


def test_a_part_is_read_where_its_client_says_and_nowhere_else(session_memory: SessionPartMemory) -> None:
    fd = memfd(8192)
    os.pwrite(fd, b"abcdef", 4096)
    session_memory.add(7, fd)
    os.close(fd)
    assert bytes(session_memory.view([7, 4096, 6])) == b"abcdef"
    for shared, message in [([8, 0, 1], "no part memory 8"), ([7, 8000, 200], "not in part memory"),
                            ([7, -1, 2], "not in part memory"), ([7, 0, 0], "not in part memory"),
                            ([7, 0], "three ints"), ((7, 0, 1), "three ints"), ([7, 0, True], "three ints")]:
        with pytest.raises(p.ProtocolError, match=message):
            session_memory.view(shared)


def test_a_session_keeps_its_two_newest_memories(session_memory: SessionPartMemory) -> None:
    held = MAPPED.held
    for memory_id in (1, 2, 3):
        fd = memfd(4096)
        os.pwrite(fd, bytes([memory_id]), 0)
        session_memory.add(memory_id, fd)
        os.close(fd)
    assert MAPPED.held == held + 2
    with pytest.raises(p.ProtocolError, match="no part memory 1"):
        session_memory.view([1, 0, 1])
    assert bytes(session_memory.view([3, 0, 1])) == b"\x03"


def test_a_part_being_read_keeps_its_memory_mapped_past_the_session_close() -> None:
    memory = SessionPartMemory()
    fd = memfd(4096)
    os.pwrite(fd, b"still here", 0)
    memory.add(1, fd)
    os.close(fd)
    view = memory.view([1, 0, 10])
    memory.close()
    assert bytes(view) == b"still here"
    view.release()
    with pytest.raises(p.ProtocolError):
        memory.view([1, 0, 10])


@pytest.mark.parametrize("limit", ["limit", "limit_bytes"])
def test_the_daemon_maps_no_more_part_memories_than_its_limits(monkeypatch: pytest.MonkeyPatch,
                                                                session_memory: SessionPartMemory, limit: str) -> None:
    held, held_bytes = MAPPED.held, MAPPED.held_bytes
    monkeypatch.setattr(MAPPED, limit, held + 1 if limit == "limit" else held_bytes + 4096)
    fds = [memfd(4096), memfd(4096)]
    try:
        session_memory.add(1, fds[0])
        assert (MAPPED.held, MAPPED.held_bytes) == (held + 1, held_bytes + 4096)
        with pytest.raises(PartMemoryError, match="its most"):
            SessionPartMemory().add(2, fds[1])
        assert (MAPPED.held, MAPPED.held_bytes) == (held + 1, held_bytes + 4096)  # the refused one counts nothing
    finally:
        for fd in fds:
            os.close(fd)


@pytest.fixture()
def listener(tmp_path: Path) -> Iterator[tuple[PartMemoryListener, SessionPartMemory]]:
    memory = SessionPartMemory()
    server = PartMemoryListener(str(tmp_path / "nbsd.sock.parts"), 0o660,
                                lambda token: memory if token == TOKEN else None)
    yield server, memory
    server.close()
    memory.close()


def test_a_client_hands_its_memory_to_its_session_over_the_socket(
        listener: tuple[PartMemoryListener, SessionPartMemory]) -> None:
    server, memory = listener
    assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o660
    client = PartMemory(3, 4096)
    try:
        client.hand_over(server.path, TOKEN, 5.0)
        shared = client.put(4, [b"ab", b"cd"], 4)
        assert shared == [client.memory_id, 4096, 4]  # slot 4 of 3 is slot 1
        assert bytes(memory.view(shared)) == b"abcd"
        assert client.put(0, [b"x" * 4097], 4097) is None  # larger than a slot: it goes through the socket
    finally:
        client.close()


def test_a_handover_with_another_token_or_without_a_memfd_is_refused(
        listener: tuple[PartMemoryListener, SessionPartMemory]) -> None:
    server, memory = listener
    client = PartMemory(2, 4096)
    try:
        with pytest.raises(PartMemoryUnavailable, match="no session has that token"):
            client.hand_over(server.path, bytes(16), 5.0)
    finally:
        client.close()
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.settimeout(5)
        sock.connect(server.path)
        sock.send(TOKEN + bytes(8))  # no descriptor
        assert b"one descriptor" in sock.recv(512)
    with pytest.raises(p.ProtocolError):
        memory.view([0, 0, 1])


def test_a_client_whose_daemon_has_no_parts_socket_is_told_why(tmp_path: Path) -> None:
    client = PartMemory(2, 4096)
    try:
        with pytest.raises(PartMemoryUnavailable, match="No such file"):
            client.hand_over(str(tmp_path / "absent.parts"), TOKEN, 1.0)
    finally:
        client.close()


def test_the_listener_removes_its_socket_when_it_closes(tmp_path: Path) -> None:
    server = PartMemoryListener(str(tmp_path / "s.parts"), 0o600, lambda token: None)
    server.close()
    assert not os.path.exists(tmp_path / "s.parts")


def test_a_connection_that_sends_nothing_delays_no_other_handover_and_is_dropped(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pm, "HANDOVER_WAIT_S", 1.5)
    memory = SessionPartMemory()
    server = PartMemoryListener(str(tmp_path / "s.parts"), 0o600, lambda token: memory if token == TOKEN else None)
    client = PartMemory(2, 4096)
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        idle.connect(server.path)
        client.hand_over(server.path, TOKEN, 1.0)  # answered while the idle connection still waits
        idle.settimeout(5)
        assert idle.recv(512) == b""  # then the idle one is dropped, unanswered
    finally:
        idle.close()
        client.close()
        server.close()
        memory.close()


def test_connections_beyond_the_most_waiting_are_turned_away(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    monkeypatch.setattr(pm, "MAX_PENDING", 1)
    server = PartMemoryListener(str(tmp_path / "s.parts"), 0o600, lambda token: None)
    client = PartMemory(2, 4096)
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        idle.connect(server.path)
        deadline = time.monotonic() + 5
        while not server.waiting and time.monotonic() < deadline:
            time.sleep(0.01)  # until the listener holds the idle connection
        with pytest.raises(PartMemoryUnavailable, match="closed the connection without an answer"):
            client.hand_over(server.path, TOKEN, 1.0)
    finally:
        idle.close()
        client.close()
        server.close()
