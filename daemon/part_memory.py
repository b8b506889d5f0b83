"""Clients' part memory: parts of chunks handed over in a client's own shared memory, not through the socket.

Over ``ipc://`` a writing client creates a ``memfd``, hands it to the daemon
once per session over a Unix seqpacket socket beside the ZeroMQ one
(``<socket>.parts``, the same mode), and then sends each ``table_chunks`` part
as where its chunks lie in it (``shared: [memory id, offset, length]``).  That
saves the two socket copies of every byte (the client's write and the
daemon's read) and the client's join of each part.

Only the session that asked can use the memory: the handover carries the
session's token, 16 random bytes that only that session's ``open`` reply
held.  The file is the client's (its memory, its quota); the daemon seals it
against shrinking, since a read of a mapping past a shrunk file's end kills the
reader with ``SIGBUS``, and maps it read-only.  The client can still write to
it while the daemon reads, so every byte is copied once, into a chunk
worker's memory or a ``bytes`` per chunk, before it is hashed and encoded:
a stored chunk always matches the address the daemon computed for it.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import socket
import selectors
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import cast

from nbsclient import protocol as p
from nbsclient.part_memory import MEMORY_ID_SIZE, TOKEN_SIZE

log = logging.getLogger("nbsd.part_memory")

MAX_MEMORY = 64 << 20  # one client's part memory: a few parts in flight (nbsclient's: 10 MiB)
MAX_PER_SESSION = 2  # the memory in use and the one replacing it (a client drops its memory after a failure)
MAX_MAPPED = 256  # in the whole daemon: each mapping holds a descriptor (Python's mmap keeps a dup of the fd)
MAX_MAPPED_BYTES = 1 << 30  # in the whole daemon: reading a page the client never wrote allocates it, charged here
HANDOVER_WAIT_S = 2.0  # the most a connection may take to send its handover
MAX_PENDING = 64  # connections waiting for their handover at once (each holds a descriptor)
SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
OK = b"ok"


class PartMemoryError(Exception):
    """A handed-over file the daemon will not map: not a sealable memfd, or of a size out of bounds."""


def map_part_memory(fd: int) -> mmap.mmap:
    """A read-only mapping of the client's memfd ``fd``, sealed first so that it can never shrink under it."""
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        raise PartMemoryError("not a memfd")
    try:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
    except OSError as err:  # EINVAL: no memfd; EPERM: created without MFD_ALLOW_SEALING, or sealed otherwise
        raise PartMemoryError(f"cannot seal it against shrinking ({os.strerror(err.errno or 0)}): pass a memfd "
                              "made with MFD_ALLOW_SEALING") from None
    size = os.fstat(fd).st_size
    if not 0 < size <= MAX_MEMORY:
        raise PartMemoryError(f"{size} bytes: part memory holds 1 to {MAX_MEMORY} bytes")
    return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)


class MappedCount:
    """The part memories this process maps and their bytes, bounded: clients cannot run it out of descriptors,
    nor (by parts that point at pages they never wrote, which a read allocates) of memory."""

    def __init__(self, limit: int, limit_bytes: int) -> None:
        self.limit, self.limit_bytes = limit, limit_bytes
        self.held = self.held_bytes = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> None:
        with self._lock:
            if self.held >= self.limit or self.held_bytes + size > self.limit_bytes:
                raise PartMemoryError(f"the daemon maps {self.held} part memories of {self.held_bytes} bytes, "
                                      f"its most is {self.limit} of {self.limit_bytes} bytes")
            self.held += 1
            self.held_bytes += size

    def give_back(self, size: int) -> None:
        with self._lock:
            self.held -= 1
            self.held_bytes -= size


MAPPED = MappedCount(MAX_MAPPED, MAX_MAPPED_BYTES)


class SessionPartMemory:
    """The part memory a session handed over, by the id its client gave it; the newest ``MAX_PER_SESSION``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._maps: OrderedDict[int, mmap.mmap] = OrderedDict()
        self._closed = False

    def add(self, memory_id: int, fd: int) -> None:
        """Map the client's memfd ``fd`` as part memory ``memory_id`` (``PartMemoryError`` if refused)."""
        mapping = map_part_memory(fd)
        try:
            MAPPED.take(len(mapping))
        except PartMemoryError:
            mapping.close()
            raise
        with self._lock:
            dropped = [mapping] if self._closed else []  # the session closed meanwhile
            if not self._closed:
                old = self._maps.pop(memory_id, None)
                self._maps[memory_id] = mapping
                dropped += [old] if old is not None else []
                while len(self._maps) > MAX_PER_SESSION:
                    dropped.append(self._maps.popitem(last=False)[1])
        for gone in dropped:
            _unmap(gone)

    def view(self, shared: object) -> memoryview:
        """The bytes a part's ``shared: [memory id, offset, length]`` names, read in place."""
        if not (isinstance(shared, list) and len(shared) == 3 and all(type(v) is int for v in shared)):
            raise p.ProtocolError("table_chunks' shared is [memory id, offset, length] (three ints)")
        memory_id, offset, length = shared
        with self._lock:
            mapping = self._maps.get(memory_id)
        if mapping is None:
            raise p.ProtocolError(f"no part memory {memory_id} in this session (hand it over first)")
        if offset < 0 or length < 1 or offset + length > len(mapping):
            raise p.ProtocolError(f"bytes {offset} to {offset + length} are not in part memory {memory_id} "
                                  f"of {len(mapping)} bytes")
        return memoryview(mapping)[offset:offset + length]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            maps = list(self._maps.values())
            self._maps.clear()
        for mapping in maps:
            _unmap(mapping)


def _unmap(mapping: mmap.mmap) -> None:
    """Unmap now, or (a part still being read in it) when its last view goes; either way it no longer counts."""
    MAPPED.give_back(len(mapping))
    try:
        mapping.close()
    except BufferError:
        pass


class PartMemoryListener:
    """Takes clients' part memory on the socket ``path``, on a thread of its own.

    A handover is one message: the session's token and the memory's id
    (8 bytes, big-endian), with the memfd as its only descriptor.  The answer
    is ``ok``, or why the memory was refused; the client then sends its parts
    through the ZeroMQ socket as before.  Connections wait for their message
    side by side, each at most ``HANDOVER_WAIT_S`` and at most ``MAX_PENDING``
    at once, so one that sends nothing delays no other.
    """

    def __init__(self, path: str, mode: int, find: Callable[[bytes], SessionPartMemory | None]) -> None:
        self.path = path
        self._find = find
        self._stop = threading.Event()
        if os.path.exists(path):
            os.unlink(path)  # a crashed daemon's; the instance lock says none is running
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        old_umask = os.umask(0o177)
        try:
            self._sock.bind(path)
        finally:
            os.umask(old_umask)
        os.chmod(path, mode)
        self._sock.listen(64)
        self._sock.setblocking(False)
        self.waiting: dict[socket.socket, float] = {}  # connection -> when it is dropped unanswered
        self._thread = threading.Thread(target=self._serve, name="nbsd-part-memory", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        waiting = self.waiting
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(0.2):
                    if key.fileobj is self._sock:
                        self._accept(selector, waiting)
                    else:
                        conn = cast(socket.socket, key.fileobj)
                        selector.unregister(conn)
                        del waiting[conn]
                        self._answer(conn)
                now = time.monotonic()
                for conn in [c for c, deadline in waiting.items() if deadline <= now]:
                    selector.unregister(conn)
                    del waiting[conn]
                    conn.close()
            for conn in waiting:
                conn.close()

    def _accept(self, selector: selectors.BaseSelector, waiting: dict[socket.socket, float]) -> None:
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            log.exception("part memory: accept failed")
            return
        if len(waiting) >= MAX_PENDING:
            conn.close()  # the client finds no answer and sends its parts through the socket
            return
        conn.setblocking(False)
        selector.register(conn, selectors.EVENT_READ)
        waiting[conn] = time.monotonic() + HANDOVER_WAIT_S

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.send(self._take(conn))
            except OSError as err:
                log.debug("part memory: a handover failed: %s", err)

    def _take(self, conn: socket.socket) -> bytes:
        message, fds, flags, _ = socket.recv_fds(conn, TOKEN_SIZE + MEMORY_ID_SIZE + 1, 1)
        try:
            if len(fds) != 1 or len(message) != TOKEN_SIZE + MEMORY_ID_SIZE or flags & socket.MSG_CTRUNC:
                return b"a handover is a 16-byte token and an 8-byte id, with one descriptor"
            memory = self._find(message[:TOKEN_SIZE])
            if memory is None:
                return b"no session has that token (the daemon restarted or the session closed)"
            try:
                memory.add(int.from_bytes(message[TOKEN_SIZE:], "big"), fds[0])
            except (PartMemoryError, OSError, ValueError) as err:
                return f"part memory refused: {err}".encode()
            return OK
        finally:
            for fd in fds:
                os.close(fd)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
