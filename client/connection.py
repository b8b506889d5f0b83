"""A request/reply connection to nbsd with timeouts, retries and reconnection.

This is the Lazy Pirate pattern on a DEALER socket: send, wait for the reply
with the same request id up to a timeout, and on silence close the socket,
open a new one and send again.  Replies to earlier attempts are recognised by
their id and dropped.  Each thread gets its own socket, since ZeroMQ sockets
must not be shared between threads; all connections of a process to one
endpoint share it, and all share one ZeroMQ context.  A forked child makes
its own context and sockets on first use and leaves the parent's alone.

Timeouts can be long (a commit may upload to S3 for minutes), so silence alone
would detect a dead daemon late.  A socket monitor reports disconnects: while
waiting, the client looks at it every second, and a dropped connection means
the request died with the daemon, so it is sent again at once.  The monitor
also reports refused CURVE handshakes, which end the request at once with
``AuthenticationError`` (see ``nbsclient.curve``).

The first contact, ``hello``, fails fast instead: a socket file that is
missing (for more than ``MISSING_GRACE``, which covers a daemon's swap of a
stale socket for its own) or forbidden is an error at once
(``nbsclient.reachability``); a daemon that does not answer a greeting, or a
socket no one listens on (a daemon being restarted, also one that died during
the greeting), is one after ``connect_timeout`` seconds (default 5, ``$NBSD_CONNECT_TIMEOUT``).  Long
waits are for requests to a daemon known to be alive, whose work may take minutes.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import threading
import time
from types import TracebackType
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import zmq

from nbs.forksafe import ProcessLocal, register
from nbsclient import curve
from nbsclient import protocol as p
from nbsclient.reachability import check_endpoint
from nbsclient.sockets import send_frame

BACKOFF_START = 0.05
BACKOFF_MAX = 2.0
BUSY_RETRIES = 50
LIVENESS_SLICE = 1.0
CONNECT_TIMEOUT_ENV = "NBSD_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 5.0
MISSING_GRACE = 0.5
PROBE_EVERY = 0.05
T = TypeVar("T")
MONITORED = zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | curve.REFUSALS


class Backoff:
    """Pauses between attempts of a request the daemon refused or left unanswered: jittered, doubling from
    ``BACKOFF_START`` to ``BACKOFF_MAX``, so that clients refused together do not return together."""

    def __init__(self) -> None:
        self._delay = BACKOFF_START

    def wait(self) -> None:
        time.sleep(self._delay * random.uniform(0.5, 1.0))
        self._delay = min(BACKOFF_MAX, self._delay * 2)


class _Channel:
    """One thread's socket to one endpoint, its monitor, what it last set on them and the handshake failures seen."""

    __slots__ = ("sock", "monitor", "millis", "attempts", "pid", "refused", "no_detail")

    def __init__(self, endpoint: str, keys: curve.ClientKeys | None) -> None:
        sock = _CONTEXT.get().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.RECONNECT_IVL, 50)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        curve.secure(sock, keys)
        self.monitor = sock.get_monitor_socket(MONITORED)
        sock.connect(endpoint)
        self.sock = sock
        self.millis = 0
        self.attempts = 0
        self.pid = os.getpid()
        self.refused = 0  # the monitor event of a refused handshake, once one is certain
        self.no_detail = 0  # handshake failures without detail since the last success

    def close(self) -> None:
        if self.pid == os.getpid():  # a forked child leaves its parent's sockets alone
            self.sock.disable_monitor()
            self.monitor.close(0)
            self.sock.close(0)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit the modules it needs may be gone
            self.close()  # its thread ended: its sockets go with it


class _Channels:
    """Each thread's channel to one endpoint (with one set of CURVE keys), shared by every connection of the process.

    A thread issues one request at a time, so the stores it uses can share a
    socket: descriptors grow with threads, not with stores.  A channel lives
    as long as its thread (or until a connection closes it).
    """

    def __init__(self, endpoint: str, keys: curve.ClientKeys | None) -> None:
        self.endpoint = endpoint
        self.keys = keys
        self._local = threading.local()
        self._inherited: list[threading.local] = []
        register(self)

    def current(self) -> _Channel | None:
        channel: _Channel | None = getattr(self._local, "channel", None)
        return channel

    def get(self) -> _Channel:
        """This thread's channel, opened on first use."""
        channel: _Channel | None = getattr(self._local, "channel", None)
        if channel is None:
            channel = self._local.channel = _Channel(self.endpoint, self.keys)
        return channel

    def reset(self) -> None:
        """Close this thread's channel; the next request opens a new one."""
        channel = self.current()
        self._local.channel = None
        if channel is not None:
            channel.close()

    def after_fork_in_child(self) -> None:
        # The parent's sockets stay referenced but unused: closing them here could disturb the parent.
        self._inherited.append(self._local)
        self._local = threading.local()


_CONTEXT: ProcessLocal[zmq.Context[zmq.Socket[bytes]]] = ProcessLocal(zmq.Context)  # one per process
_CHANNELS: dict[tuple[str, curve.ClientKeys | None], _Channels] = {}
_SNDMORE = int(zmq.SNDMORE)
_IDS = itertools.count(random.getrandbits(40))  # request ids, unique across the process's connections


def _channels(endpoint: str, keys: curve.ClientKeys | None) -> _Channels:
    channels = _CHANNELS.get((endpoint, keys))
    if channels is None:
        channels = _CHANNELS.setdefault((endpoint, keys), _Channels(endpoint, keys))
    return channels


class Connection:
    """Requests to one daemon endpoint, over the calling thread's shared channel."""

    def __init__(self, endpoint: str | None = None, timeout: float = 30.0, retries: int = 3,
                 curve_keys: curve.ClientKeys | None = None, connect_timeout: float | None = None) -> None:
        """``curve_keys`` default to the files ``$NBSD_CURVE_SECRET_KEY`` and ``$NBSD_CURVE_SERVER_KEY`` name;
        ``connect_timeout`` to ``$NBSD_CONNECT_TIMEOUT``, else 5 seconds."""
        self.endpoint = endpoint or p.default_endpoint()
        self.curve_keys = curve_keys if curve_keys is not None else curve.ClientKeys.from_env()
        self.timeout = timeout
        self.retries = retries
        self.connect_timeout = connect_timeout if connect_timeout is not None else _connect_timeout_from_env()
        self._channels = _channels(self.endpoint, self.curve_keys)
        self.max_message = p.DEFAULT_MAX_MESSAGE
        self.attachments = False  # whether the daemon reads attachments (its hello says)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def last_attempts(self) -> int:
        """How many sends this thread's last request needed (more than 1 means it was retried)."""
        channel = self._channels.current()
        return channel.attempts if channel is not None else 0

    def request(self, op: str, body: dict[str, Any], timeout: float | None = None,
                retries: int | None = None) -> Any:
        """Send one request and return the reply body; error replies raise typed exceptions."""
        request_id = next(_IDS)
        frame = p.encode_request(request_id, op, body)
        if len(frame) > self.max_message:
            raise p.ProtocolError(f"request of {len(frame)} bytes exceeds the daemon's limit {self.max_message}")
        return self._exchange(frame, request_id, op, timeout, retries)

    def hello(self) -> Any:
        """Greet the daemon: its reply, or a typed error within ``connect_timeout`` seconds saying why not.

        A daemon that goes away during the greeting (it is being restarted) is
        waited for again, within the same ``connect_timeout``.
        """
        deadline = time.monotonic() + self.connect_timeout
        while True:
            self._await_socket(deadline)
            try:
                return self.request(p.HELLO, {}, timeout=max(deadline - time.monotonic(), PROBE_EVERY), retries=0)
            except p.DaemonUnavailableError:
                if time.monotonic() < deadline:
                    continue  # cut short by a disconnect: the socket says whether a daemon is coming back
                check_endpoint(self.endpoint)  # the daemon may have gone meanwhile: say so rather than "no answer"
                raise p.DaemonNotAnsweringError(
                    f"nbsd at {self.endpoint} did not answer within {self.connect_timeout:g}s: it is hung, stopped or "
                    f"overloaded (${CONNECT_TIMEOUT_ENV} or connect_timeout= waits longer)") from None

    def _await_socket(self, deadline: float) -> None:
        """Return once the endpoint can be connected to: a stale socket is waited for until ``deadline``, a missing
        one for ``MISSING_GRACE``; otherwise raise the reason."""
        missing_since = None
        while True:
            try:
                check_endpoint(self.endpoint)
                return
            except p.StaleSocketError:
                missing_since = None
                if time.monotonic() >= deadline:
                    raise
            except p.DaemonNotRunningError:
                now = time.monotonic()
                missing_since = now if missing_since is None else missing_since
                if now >= min(deadline, missing_since + MISSING_GRACE):
                    raise
            time.sleep(PROBE_EVERY)

    def get_one(self, handle: int, addr: bytes) -> bytes | None:
        """One chunk by the compact get (a single read that missed the cache), or None if absent."""
        request_id = next(_IDS)
        chunk: bytes | None = self._exchange(p.encode_get_one(request_id, handle, addr), request_id, p.GET,
                                             None, None)
        return chunk

    def pipeline(self, op: str, requests: Iterable[tuple[dict[str, Any], bytes | None]], window: int,
                 on_reply: Callable[[Any], T], timeout: float | None = None) -> list[T]:
        """Send a request per ``(body, attachment or None)`` without waiting for each reply, at most ``window``
        unanswered; ``on_reply`` of each reply, in order.

        Each reply goes to ``on_reply`` as it comes, while the daemon works on
        the requests still unanswered, so the caller's work on the replies
        overlaps the daemon's rather than following the last one.

        Every reply must come (in any order) within ``timeout`` of the wait for
        it; nothing is resent.  Silence or a lost connection raises
        ``DaemonUnavailableError`` and an error reply its typed error, at once:
        the caller starts the whole sequence again (a part resent alone could
        not be told from a duplicate).  Replies still on their way then are
        dropped, unmatched, by later requests.
        """
        timeout = self.timeout if timeout is None else timeout
        channel = self._channels.get()
        channel.attempts = 1
        _set_waits(channel, max(1, int(timeout * 1000)))
        waiting: dict[int, int] = {}  # request id -> position
        replies: list[Any] = []  # every place filled by the time the last reply came
        for body, attachment in requests:
            request_id = next(_IDS)
            frame = p.encode_request(request_id, op, body)
            size = len(frame) + (0 if attachment is None else len(attachment))
            if size > self.max_message:
                raise p.ProtocolError(f"request of {size} bytes exceeds the daemon's limit {self.max_message}")
            while len(waiting) >= window:
                self._await_one(channel, waiting, replies, on_reply, op, timeout)
            self._send_once(channel, frame, attachment, op, timeout)
            waiting[request_id] = len(replies)
            replies.append(None)
        while waiting:
            self._await_one(channel, waiting, replies, on_reply, op, timeout)
        return replies

    def _send_once(self, channel: _Channel, frame: bytes, attachment: bytes | None, op: str, timeout: float) -> None:
        """Send a request frame, then its attachment if any."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                send_frame(channel.sock, frame, 0 if attachment is None else _SNDMORE, copy=len(frame) < (1 << 20))
                break
            except zmq.Again:
                _drain(channel)
                if channel.refused or time.monotonic() >= deadline:
                    self._channels.reset()
                    if channel.refused:
                        raise curve.refusal(channel.refused, self.endpoint, self.curve_keys) from None
                    raise p.DaemonUnavailableError(f"nbsd at {self.endpoint} took no {op!r} for {timeout}s") from None
        if attachment is None:
            return
        try:  # a message's later frames are queued with its first, whatever the high-water mark
            send_frame(channel.sock, attachment, 0, copy=len(attachment) < (1 << 20))
        except zmq.Again:  # never expected; a half-sent message must not stay queued ahead of the next request
            self._channels.reset()
            raise p.DaemonUnavailableError(f"nbsd at {self.endpoint} took {op!r} but not its attachment") from None

    def _await_one(self, channel: _Channel, waiting: dict[int, int], replies: list[Any],
                   on_reply: Callable[[Any], T], op: str, timeout: float) -> None:
        """Wait for the reply to one of ``waiting`` and put ``on_reply`` of it in its place in ``replies``; an
        error reply raises."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply_id, body, error = p.decode_reply(channel.sock.recv())
            except zmq.Again:
                if _drain(channel) or time.monotonic() >= deadline:
                    self._channels.reset()
                    raise p.DaemonUnavailableError(
                        f"no reply from nbsd at {self.endpoint} to {op!r} within {timeout}s") from None
                continue
            position = waiting.pop(reply_id, None)
            if position is not None:
                if error is not None:
                    raise error
                replies[position] = on_reply(body)
                return

    def _exchange(self, frame: bytes, request_id: int, op: str, timeout: float | None,
                  retries: int | None) -> Any:
        """Send ``frame`` until its reply comes, the Lazy Pirate way; error replies raise."""
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        millis = max(1, int(timeout * 1000))
        attempts = 0
        busy = 0
        backoff = Backoff()
        while True:
            attempts += 1
            channel = self._channels.get()
            channel.attempts = attempts
            reply = self._attempt(channel, frame, request_id, timeout, millis)
            if reply is not None:
                body, error = reply
                if error is None:
                    return body
                if not isinstance(error, p.DaemonBusyError) or busy >= BUSY_RETRIES:
                    raise error
                busy += 1
                attempts -= 1
            elif attempts > retries:
                raise p.DaemonUnavailableError(
                    f"no reply from nbsd at {self.endpoint} to {op!r} after {attempts} attempts of {timeout}s")
            backoff.wait()

    def _attempt(self, channel: _Channel, frame: bytes, request_id: int, timeout: float,
                 millis: int) -> tuple[Any, Exception | None] | None:
        """``(body, error)`` of the reply, or None when none came (the channel is then reset)."""
        sock = channel.sock
        _set_waits(channel, millis)
        deadline = time.monotonic() + timeout
        while True:
            try:
                send_frame(sock, frame, 0, copy=len(frame) < (1 << 20))
                break
            except zmq.Again:  # not connected yet (IMMEDIATE): the daemon is down, or refuses this client
                _drain(channel)
                refused = channel.refused
                if refused or time.monotonic() >= deadline:
                    self._channels.reset()
                    if refused:
                        raise curve.refusal(refused, self.endpoint, self.curve_keys) from None
                    return None
        while True:
            try:
                reply_id, body, error = p.decode_reply(sock.recv())
            except zmq.Again:
                # Checked only once a second of silence has passed: the check costs a few microseconds.
                # A disconnect seen here may predate this request; resending then is merely redundant.
                if _drain(channel) or time.monotonic() >= deadline:
                    self._channels.reset()  # the daemon went away with our request, or never answered
                    return None
                continue
            if reply_id == request_id:
                return body, error
            # Otherwise a late reply to an attempt we gave up on: keep waiting for ours.

    def close(self) -> None:
        """Close the calling thread's socket to the endpoint (any connection reopens it on its next request)."""
        self._channels.reset()


def _connect_timeout_from_env() -> float:
    text = os.environ.get(CONNECT_TIMEOUT_ENV)
    if not text:
        return DEFAULT_CONNECT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise p.ClientConfigError(f"${CONNECT_TIMEOUT_ENV} must be a number of seconds above 0, got {text!r}")
    return value


def _set_waits(channel: _Channel, millis: int) -> None:
    """The socket's send and receive timeouts for a wait of ``millis``; options cost a call, so set on change."""
    if channel.millis != millis:
        waits = min(millis, int(LIVENESS_SLICE * 1000))  # both waits look at the monitor between slices
        channel.sock.setsockopt(zmq.SNDTIMEO, waits)
        channel.sock.setsockopt(zmq.RCVTIMEO, waits)
        channel.millis = millis


def _drain(channel: _Channel) -> bool:
    """Consume pending monitor events; True if any was a disconnect.  Refused handshakes go in ``channel.refused``."""
    dropped = False
    monitor = channel.monitor
    while int(monitor.get(zmq.EVENTS)) & zmq.POLLIN:
        event = int.from_bytes(monitor.recv_multipart(zmq.NOBLOCK)[0][:2], "little")
        if event == zmq.EVENT_DISCONNECTED:
            dropped = True
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            channel.no_detail = 0
        elif event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            channel.no_detail += 1
            if channel.no_detail >= curve.NO_DETAIL_REPEATS:
                channel.refused = event
        elif event & curve.REFUSALS:
            channel.refused = event
    return dropped
