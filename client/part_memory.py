"""A writing client's part memory: a memfd whose slots carry ``table_chunks`` parts to nbsd, not the socket.

On an ipc endpoint whose ``hello`` names a parts socket, the client makes a
memfd of a few part-sized slots, hands it over once per session (its
session's token, from the ``open`` reply, and the memory's random id, with the
descriptor), then writes each part's chunks into a slot and sends only where
they lie.  The daemon seals the memfd against shrinking and maps it read-only
(``nbsd.part_memory``); nothing else can reach it, since it has no name.

A slot is written again only once the part last in it was answered: there
is one slot more than parts in flight.  A part the client gave up on (a
timeout) may still be read by the daemon later, so a failed write drops the
whole memory; the next write makes and hands over a new one.  A forked child
never writes to its parent's memory (it is shared): it makes its own.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import secrets
import socket
from collections.abc import Sequence

from nbsclient.reachability import IPC

TOKEN_SIZE = 16  # a session's parts_token
MEMORY_ID_SIZE = 8  # a memory's id in a handover, big-endian
PARTS_SOCKET_SUFFIX = ".parts"  # the daemon's parts socket lies beside its ipc socket
REPLY_LIMIT = 512
CLOSED = "the daemon closed the connection without an answer (too many handovers at once, or it is stopping)"


def parts_socket(endpoint: str) -> str | None:
    """Where the daemon at ``endpoint`` takes part memory, as this process sees it (None for tcp).

    Beside the socket this process reaches the daemon by, not at the path
    the daemon names: the two differ where the daemon's directory is mounted
    elsewhere in this process's mount namespace (a container).
    """
    return endpoint[len(IPC):] + PARTS_SOCKET_SUFFIX if endpoint.startswith(IPC) else None


class PartMemoryUnavailable(Exception):
    """The memory could not be made or the daemon refused it; parts then go through the socket."""


class PartMemory:
    """``slots`` slots of ``slot_size`` bytes in a sealed memfd of this process, mapped read-write here."""

    def __init__(self, slots: int, slot_size: int) -> None:
        self.slots, self.slot_size = slots, slot_size
        self.memory_id = secrets.randbits(63)
        try:
            self._fd = os.memfd_create("nbsclient-parts", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        except OSError as err:
            raise PartMemoryUnavailable(f"memfd_create: {err.strerror}") from None
        try:
            os.ftruncate(self._fd, slots * slot_size)
            fcntl.fcntl(self._fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
            self._map = mmap.mmap(self._fd, slots * slot_size)
        except OSError as err:
            os.close(self._fd)
            raise PartMemoryUnavailable(f"part memory of {slots * slot_size} bytes: {err.strerror}") from None
        self._view = memoryview(self._map)

    def hand_over(self, path: str, token: bytes, timeout: float) -> None:
        """Give the memory to the session whose token is ``token``, at the daemon's parts socket ``path``."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(timeout)
                sock.connect(path)
                socket.send_fds(sock, [token + self.memory_id.to_bytes(MEMORY_ID_SIZE, "big")], [self._fd])
                answer = sock.recv(REPLY_LIMIT)
        except (BrokenPipeError, ConnectionResetError):
            answer = b""
        except OSError as err:
            raise PartMemoryUnavailable(f"{path}: {err.strerror or err}") from None
        if answer != b"ok":
            raise PartMemoryUnavailable(f"{path}: {answer.decode(errors='replace') or CLOSED}")

    def put(self, seq: int, chunks: Sequence[bytes], size: int) -> list[int] | None:
        """Write a part's chunks (``size`` bytes in all) into slot ``seq``; its ``shared`` field, or None if the
        part is larger than a slot."""
        if size > self.slot_size:
            return None
        offset = at = (seq % self.slots) * self.slot_size
        view = self._view
        for chunk in chunks:
            end = at + len(chunk)
            view[at:end] = chunk
            at = end
        return [self.memory_id, offset, size]

    def close(self) -> None:
        self._view.release()
        self._map.close()
        os.close(self._fd)
