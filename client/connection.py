"""A request/reply connection to nbsd with timeouts, retries and reconnection.

This is the Lazy Pirate pattern on a DEALER socket: send, wait for the reply
with the same request id up to a timeout, and on silence close the socket,
open a new one and send again.  Replies to earlier attempts are recognised by
their id and dropped.  Each thread gets its own socket, since ZeroMQ sockets
must not be shared between threads.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from types import TracebackType
from typing import Any

import zmq

from nbsclient import protocol as p

BACKOFF_START = 0.05
BACKOFF_MAX = 2.0
BUSY_RETRIES = 50


class Connection:
    def __init__(self, endpoint: str | None = None, timeout: float = 30.0, retries: int = 3) -> None:
        self.endpoint = endpoint or p.default_endpoint()
        self.timeout = timeout
        self.retries = retries
        self._pid = os.getpid()
        self._context = zmq.Context()
        self._local = threading.local()
        self._sockets: list[zmq.Socket[bytes]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(random.getrandbits(40))
        self.max_message = p.DEFAULT_MAX_MESSAGE

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _socket(self) -> zmq.Socket[bytes]:
        if os.getpid() != self._pid:
            raise p.ProtocolError("a connection cannot be used after fork; connect again in the child")
        sock: zmq.Socket[bytes] | None = getattr(self._local, "sock", None)
        if sock is None:
            sock = self._context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.IMMEDIATE, 1)
            sock.setsockopt(zmq.RECONNECT_IVL, 50)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
            sock.connect(self.endpoint)
            self._local.sock = sock
            with self._lock:
                self._sockets.append(sock)
        return sock

    def _reset(self) -> None:
        sock: zmq.Socket[bytes] | None = getattr(self._local, "sock", None)
        if sock is not None:
            self._local.sock = None
            with self._lock:
                self._sockets.remove(sock)
            sock.close(0)

    @property
    def last_attempts(self) -> int:
        """How many sends this thread's last request needed (more than 1 means it was retried)."""
        return int(getattr(self._local, "attempts", 0))

    def request(self, op: str, body: dict[str, Any], timeout: float | None = None,
                retries: int | None = None) -> Any:
        """Send one request and return the reply body; error replies raise typed exceptions."""
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        request_id = next(self._ids)
        frame = p.encode_request(request_id, op, body)
        if len(frame) > self.max_message:
            raise p.ProtocolError(f"request of {len(frame)} bytes exceeds the daemon's limit {self.max_message}")
        attempts = 0
        busy = 0
        backoff = BACKOFF_START
        while True:
            attempts += 1
            self._local.attempts = attempts
            outcome = self._attempt(frame, request_id, timeout)
            if not isinstance(outcome, _Silence):
                if isinstance(outcome, p.DaemonBusyError) and busy < BUSY_RETRIES:
                    busy += 1
                    attempts -= 1
                elif isinstance(outcome, Exception):
                    raise outcome
                else:
                    return outcome.body
            elif attempts > retries:
                raise p.DaemonUnavailableError(
                    f"no reply from nbsd at {self.endpoint} to {op!r} after {attempts} attempts of {timeout}s")
            time.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(BACKOFF_MAX, backoff * 2)

    def _attempt(self, frame: bytes, request_id: int, timeout: float) -> Any:
        sock = self._socket()
        deadline = time.monotonic() + timeout
        sock.setsockopt(zmq.SNDTIMEO, max(1, int(timeout * 1000)))
        try:
            sock.send(frame, 0, copy=len(frame) < (1 << 20))
        except zmq.Again:
            # Never connected within the timeout (IMMEDIATE): the daemon is down or restarting.
            self._reset()
            return _Silence()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sock.poll(int(remaining * 1000) + 1):
                self._reset()
                return _Silence()
            reply_id, body, error = p.decode_reply(sock.recv())
            if reply_id != request_id:
                continue  # a late reply to an attempt we gave up on
            return error if error is not None else _Reply(body)

    def close(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close(0)
        self._context.term()


class _Silence:
    """No reply within the timeout."""


class _Reply:
    def __init__(self, body: Any) -> None:
        self.body = body
