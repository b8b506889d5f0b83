"""The nbsd server: a ZeroMQ ROUTER on its own thread, workers for anything that blocks.

Only the main thread touches the ROUTER socket.  Requests that the cache can
answer are served inline; the rest run on a thread pool, whose replies come
back over an inproc PUSH/PULL pair for the main thread to send.  The loop
wakes at least every 200 ms for housekeeping: the systemd watchdog, session
expiry and cache maintenance (sync, stale reader slots).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import lmdb
import zmq

from nbs.upload_memory import UPLOAD_MEMORY
from nbsclient import protocol as p
from nbsclient.part_memory import PARTS_SOCKET_SUFFIX
from nbsclient.sockets import send_frame
from nbsd.cache import ChunkCache
from nbsd.config import Config, ConfigError
from nbsd.curve import CurveServer
from nbsd.heap import tune_allocator, release_free_memory
from nbsd.logs import set_level
from nbsd.metrics import MetricsServer
from nbsd.owner_lock import LockHeldError, take_owner_lock
from nbsd.part_memory import PartMemoryListener
from nbsd.reload import compare
from nbsd.sd_notify import Watchdog, notify
from nbsd.service import Service
from nbsd.stores import StoreOpener

log = logging.getLogger(__name__)

REPLIES = "inproc://nbsd-replies"
POLL_MS = 200
MAINTENANCE_S = 5.0
STATUS_S = 10.0
_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
_RCVMORE = int(zmq.RCVMORE)
MAX_SOCKET_PATH = 107  # bytes: sun_path holds 108, with the terminating NUL
CACHE_LOCK = "nbsd.lock"


class StartupError(Exception):
    """nbsd cannot start; the message says why in one line."""


class AlreadyRunningError(StartupError):
    """Another nbsd holds the socket's instance lock."""


class Server:
    def __init__(self, config: Config, load_config: Callable[[], Config] | None = None) -> None:
        """``load_config`` reads the configuration again, for a reload (``reload.set()``, on SIGHUP)."""
        tune_allocator()  # before any worker thread exists: each would get an arena of its own
        UPLOAD_MEMORY.limit = config.upload_memory
        self.config = config
        self._load_config = load_config
        self.stop = threading.Event()
        self.reload = threading.Event()
        self._instance_lock = self._lock_instance()
        self._cache_lock = self._lock_cache_dir()
        if not config.client_fast_path:  # no client reads the cache directly: nothing under it is theirs to see
            os.chmod(config.cache_dir, 0o700)
        cache_path = os.path.join(config.cache_dir, "chunks")
        try:
            self.cache = ChunkCache(cache_path, config.cache_size, shared=config.client_fast_path)
        except (OSError, lmdb.Error) as err:
            raise StartupError(f"cannot open the chunk cache in {cache_path}: {err}") from err
        self.opener = StoreOpener(config)
        self.service = Service(config, self.cache, self.opener)
        self.metrics: MetricsServer | None = None
        if config.metrics:
            try:
                self.metrics = MetricsServer(config.metrics, self.service)
            except OSError as err:
                self.cache.close()
                raise StartupError(f"cannot serve metrics on {config.metrics}: {err.strerror}") from err
        self.context = zmq.Context()
        self.curve = (CurveServer(self.context, config.curve_secret_key, config.curve_client_keys)
                      if config.curve else None)
        self.router = self.context.socket(zmq.ROUTER)
        if self.curve is not None:
            self.curve.secure(self.router)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, config.max_message_size + 4096)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self._bind()
        self.part_memory = self._listen_for_part_memory()
        if self.curve is not None:
            log.info("CURVE: %d allowed client keys in %s", len(self.curve.allowed.keys), config.curve_client_keys)
        self.replies = self.context.socket(zmq.PULL)
        self.replies.bind(REPLIES)
        self.pool = ThreadPoolExecutor(config.threads, thread_name_prefix="nbsd-worker")
        self._local = threading.local()
        self._pushers: list[zmq.Socket[bytes]] = []
        self._pushers_lock = threading.Lock()
        self._busy: Counter[bytes] = Counter()
        self._busy_lock = threading.Lock()
        self._handed_off = 0  # requests given to workers whose replies are not yet sent (main thread only)

    def _lock_instance(self) -> int | None:
        path = self.config.ipc_path
        if path is None:
            return None
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise StartupError(f"socket path {path} is {len(os.fsencode(path))} bytes long; "
                               f"the limit is {MAX_SOCKET_PATH}")
        try:
            os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
            return take_owner_lock(path + ".lock")
        except LockHeldError as err:
            raise AlreadyRunningError(f"another nbsd ({err.holder}) is serving {path}") from None
        except OSError as err:
            raise StartupError(f"cannot create the socket's lock file {path}.lock: {err.strerror}") from err

    def _lock_cache_dir(self) -> int:
        """Two daemons filling one cache would corrupt its byte count and eviction order: one owns it."""
        cache_dir = self.config.cache_dir
        try:
            os.makedirs(cache_dir, mode=0o750, exist_ok=True)
            return take_owner_lock(os.path.join(cache_dir, CACHE_LOCK))
        except LockHeldError as err:
            raise StartupError(f"another nbsd ({err.holder}) is using the cache directory {cache_dir}") from None
        except OSError as err:
            raise StartupError(f"cache directory {cache_dir} is not writable: {err.strerror}") from err

    def _bind(self) -> None:
        endpoint = self.config.resolved_endpoint()
        path = self.config.ipc_path
        if path is not None and os.path.exists(path):
            os.unlink(path)  # a stale socket of a crashed daemon; the instance lock proves it is dead
        old_umask = os.umask(0o177)  # the socket is created private, then opened to the group
        try:
            self.router.bind(endpoint)
        except zmq.ZMQError as err:
            self.router.close(0)
            if self.curve is not None:
                self.curve.stop()  # its ZAP socket would keep the context from terminating
            self.context.term()
            self.cache.close()
            if self.metrics is not None:
                self.metrics.close()
            reason = os.strerror(err.errno) if err.errno is not None else str(err)  # str(err) appends the address
            raise StartupError(f"cannot listen on {endpoint}: {reason}") from err
        finally:
            os.umask(old_umask)
        if path is not None:
            os.chmod(path, self.config.socket_mode)
        log.info("listening on %s", endpoint)

    def _listen_for_part_memory(self) -> PartMemoryListener | None:
        """The socket beside an ipc endpoint where writing clients hand over their part memory, if allowed.

        Without it (tcp, ``client_part_memory = false``, or a failure, which
        is logged) clients send their parts through the ZeroMQ socket.
        """
        path = self.config.ipc_path
        if path is None or not self.config.client_part_memory:
            return None
        try:
            listener = PartMemoryListener(path + PARTS_SOCKET_SUFFIX, self.config.socket_mode,
                                          self.service.sessions.part_memory)
        except OSError as err:
            log.warning("part memory: cannot listen on %s%s (%s); clients send parts through the socket",
                        path, PARTS_SOCKET_SUFFIX, err.strerror or err)
            return None
        self.service.parts_socket = listener.path
        return listener

    # -- the loop ------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve until ``stop`` is set.

        With nothing handed to a worker, the loop blocks in the ROUTER's own
        receive: a poll of both sockets costs more per request than the rest of a
        cache hit's round trip.  The poll is used only while worker replies may come.
        """
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.replies, zmq.POLLIN)
        self.router.setsockopt(zmq.RCVTIMEO, POLL_MS)
        watchdog = Watchdog()
        notify("READY=1")
        notify(f"STATUS=serving on {self.config.resolved_endpoint()}")
        next_tick = next_maintenance = next_status = time.monotonic()
        stopping = self.stop.is_set
        while not stopping():
            if self._handed_off:
                events = dict(poller.poll(POLL_MS))
                if self.replies in events:
                    self._forward_reply()
                if self.router in events:
                    self._receive_request(_NOBLOCK)
            else:
                self._receive_request(0)
            now = time.monotonic()
            if now < next_tick:
                continue
            next_tick = now + POLL_MS / 1000
            watchdog.tick()
            if self.reload.is_set():
                self.reload.clear()
                self._reload()
            if now >= next_maintenance:
                next_maintenance = now + MAINTENANCE_S
                self.pool.submit(self._maintenance)
            if now >= next_status:
                next_status = now + STATUS_S
                notify(f"STATUS=sessions={len(self.service.sessions)} cache={self.cache.total_bytes()}B", timeout=0)
        self._shutdown()

    def _receive_request(self, flags: int) -> None:
        """Take one message and answer it or hand it to a worker; a blocking wait ends after POLL_MS.

        A ROUTER message is the peer's identity, then what the peer sent: a
        request is one frame, or two when it has an attachment, which is read
        in place (no copy).  Plain ``recv``/``send`` with flags computed once
        cost a fraction of the ``*_multipart`` helpers, and a compact get that
        hits the cache is answered before any general decoding.
        """
        router = self.router
        try:
            identity = router.recv(flags)
        except zmq.Again:
            return
        frame = router.recv(_NOBLOCK)
        attachment = None
        if router.getsockopt(_RCVMORE):
            attachment = router.recv(_NOBLOCK, copy=False).buffer
            if router.getsockopt(_RCVMORE):
                while router.getsockopt(_RCVMORE):
                    router.recv(_NOBLOCK)
                self._send(identity, p.encode_error(0, p.BAD_REQUEST, "a request is one frame, or two with an "
                                                                      "attachment"))
                return
        reply = self.service.get_one_inline(frame) if attachment is None and frame[:1] == p.COMPACT_MARK else None
        if reply is None:
            reply = self._decode_and_serve(identity, frame, attachment)
        if reply is not None:
            self._send(identity, reply)

    def _decode_and_serve(self, identity: bytes, frame: bytes, attachment: memoryview | None) -> bytes | None:
        """The reply to any request, or None once it has been handed to a worker."""
        try:
            request = p.decode_request(frame, self.config.max_message_size, attachment)
        except p.UnsupportedProtocolError as err:
            return p.encode_error(err.request_id, p.UNSUPPORTED_PROTOCOL, str(err))
        except p.BadRequestError as err:
            return p.encode_error(err.request_id, p.BAD_REQUEST, str(err))
        except p.ProtocolError as err:
            return p.encode_error(0, p.BAD_REQUEST, str(err))
        received = time.perf_counter()
        reply = self.service.try_inline(identity, request)
        if reply is not None:
            return reply
        with self._busy_lock:
            busy = self._busy[identity] >= self.config.max_inflight_per_client
            if not busy:
                self._busy[identity] += 1
        if busy:
            self.service.refused(request)
            return p.encode_error(request.request_id, p.BUSY, "too many requests in flight")
        self._handed_off += 1
        self.pool.submit(self._work, identity, request, received)
        return None

    def _work(self, identity: bytes, request: p.Request, received: float) -> None:
        try:
            reply = self.service.handle(identity, request, received)
        finally:
            with self._busy_lock:
                self._busy[identity] -= 1
                if self._busy[identity] <= 0:
                    del self._busy[identity]
        self._pusher().send_multipart([identity, reply], copy=len(reply) < (1 << 20))

    def _pusher(self) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] | None = getattr(self._local, "push", None)
        if sock is None:
            sock = self.context.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(REPLIES)
            self._local.push = sock
            with self._pushers_lock:
                self._pushers.append(sock)
        return sock

    def _forward_reply(self) -> None:
        """Send one worker's reply (poll said it is waiting)."""
        identity, reply = self.replies.recv_multipart(zmq.NOBLOCK)
        self._handed_off -= 1
        self._send(identity, reply)

    def _send(self, identity: bytes, reply: bytes) -> None:
        try:
            send_frame(self.router, identity, _SNDMORE_NOBLOCK)
            send_frame(self.router, reply, _NOBLOCK, copy=len(reply) < (1 << 20))
        except zmq.Again:
            log.warning("dropping a reply to a client that is not reading")

    def _reload(self) -> None:
        """Apply what can change while running; name what waits for a restart.  A bad file changes nothing."""
        if self._load_config is None:
            log.warning("reload: this daemon was started without a way to read its configuration again")
            return
        try:
            new = self._load_config()
        except ConfigError as err:
            log.error("reload refused, the running configuration stays: %s", err)
            return
        change = compare(self.config, new)
        config = change.running(self.config, new)
        self.config = self.service.config = self.opener.config = config
        self.service.sessions.ttl = config.session_ttl
        set_level(config.log_level)
        if "cache_size" in change.applied:
            self.pool.submit(self.cache.set_budget, config.cache_size)
        UPLOAD_MEMORY.limit = config.upload_memory
        for key, (old, value) in change.applied.items():
            log.info("reload: %s changed from %s to %s", key, json.dumps(old), json.dumps(value))
        for key, (old, value) in change.pending.items():
            log.warning("reload: %s changed to %s in the configuration, but only a restart applies it; still %s",
                        key, json.dumps(value), json.dumps(old))
        if not change.applied and not change.pending:
            log.info("reload: the configuration is unchanged")

    def _maintenance(self) -> None:
        try:
            expired = self.service.sessions.expire()
            if expired:
                log.info("expired %d idle sessions", expired)
            cleared = self.cache.maintenance()
            if cleared:
                log.info("cleared %d stale LMDB reader slots", cleared)
            if self.curve is not None:
                self.curve.allowed.reload()
            release_free_memory()
        except Exception:
            log.exception("maintenance failed")

    def _shutdown(self) -> None:
        notify("STOPPING=1")
        log.info("stopping: finishing requests in flight")
        self.pool.shutdown(wait=True, cancel_futures=True)
        while self.replies.poll(0):
            self._forward_reply()
        if self.metrics is not None:
            self.metrics.close()
        if self.part_memory is not None:
            self.part_memory.close()
        self.service.close()
        self.opener.close()
        self.cache.close()
        for sock in self._pushers:
            sock.close(0)
        self.replies.close(0)
        self.router.close(0)
        if self.curve is not None:
            self.curve.stop()
        self.context.term()
        path = self.config.ipc_path
        if path is not None and os.path.exists(path):
            os.unlink(path)
        if self._instance_lock is not None:
            os.close(self._instance_lock)
        os.close(self._cache_lock)
        log.info("stopped")
