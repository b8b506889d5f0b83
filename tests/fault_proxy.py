"""An HTTP proxy in front of the moto server that injects AWS failures.

Requests are forwarded unchanged; a request matched by a queued fault gets
that fault instead: a throttling or 5xx answer in the service's error format,
the real answer cut off mid-body by a TCP reset or by a clean close (a
truncated body), or the real answer held back past the client's read timeout
(the request has then taken effect, but the client cannot know).  It lets tests check
that retries happen over real HTTP, with the library's real client settings.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Match = Callable[[str, str, dict[str, str]], bool]  # (method, path, headers)

_S3_SLOW_DOWN = (503, "application/xml",
                 b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
                 b"<Message>Please reduce your request rate.</Message><RequestId>FAULT</RequestId></Error>")
_S3_INTERNAL = (500, "application/xml",
                b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
                b"<Message>We encountered an internal error.</Message><RequestId>FAULT</RequestId></Error>")
_DYNAMO_THROTTLED = (400, "application/x-amz-json-1.0",
                     b'{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate exceeded"}')
ANSWERS = {"s3-slow-down": _S3_SLOW_DOWN, "s3-internal-error": _S3_INTERNAL, "dynamo-throttled": _DYNAMO_THROTTLED}
RESET = "reset-mid-body"
TRUNCATED = "truncated-body"
STALL = "stall-after-forward"
STALL_SECONDS = 8.0  # twice the read timeout of clients used with STALL; loaded CI hosts answer slowly


def s3_ranged_get(method: str, path: str, headers: dict[str, str]) -> bool:
    return method == "GET" and "range" in headers


def s3_object_write(method: str, path: str, headers: dict[str, str]) -> bool:
    """PutObject or UploadPart (the tests create buckets without the proxy)."""
    return method == "PUT"


def dynamo_op(operation: str) -> Match:
    return lambda method, path, headers: headers.get("x-amz-target", "").endswith("." + operation)


def operation_of(method: str, headers: dict[str, str], body: bytes) -> str:
    """A label for a request: the S3 method (``GET range`` for ranged reads), or the DynamoDB
    operation, with ``GetItem table`` for reads of table items (key ``*name``) apart from manifest reads."""
    target = headers.get("x-amz-target")
    if not target:
        return f"{method} range" if "range" in headers else method
    operation = target.rsplit(".", 1)[-1]
    if operation == "GetItem":
        return "GetItem table" if b'"S": "*' in body or b'"S":"*' in body else "GetItem manifest"
    return operation


@dataclass
class Fault:
    kind: str  # a key of ANSWERS, RESET, TRUNCATED or STALL
    match: Match
    times: int = 1


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    injected: list[str] = field(default_factory=list)
    forwarded: int = 0
    operations: Counter[str] = field(default_factory=Counter)  # forwarded requests by operation
    answered_bytes: int = 0  # response bodies forwarded back to clients
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def inject(self, kind: str, match: Match, times: int = 1) -> None:
        with self._lock:
            self.faults.append(Fault(kind, match, times))

    def _take(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.match(method, path, headers):
                    fault.times -= 1
                    self.injected.append(fault.kind)
                    return fault.kind
            self.forwarded += 1
            self.operations[operation_of(method, headers, body)] += 1
            return None

    def start(self) -> FaultProxy:
        proxy = self
        target = urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                fault = proxy._take(self.command, self.path, headers, body)
                if fault in ANSWERS:
                    status, kind, payload = ANSWERS[fault]
                    self._reply(status, [("Content-Type", kind), ("x-amzn-RequestId", "FAULT")], payload)
                    return
                upstream = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
                try:
                    upstream.request(self.command, self.path, body, dict(self.headers.items()))
                    reply = upstream.getresponse()
                    payload = reply.read()
                    kept = [(k, v) for k, v in reply.getheaders()
                            if k.lower() not in ("content-length", "transfer-encoding", "connection")]
                finally:
                    upstream.close()
                with proxy._lock:
                    proxy.answered_bytes += len(payload)
                if fault == STALL:
                    time.sleep(STALL_SECONDS)
                    self.close_connection = True  # the client gave up on this connection
                    return
                if fault in (RESET, TRUNCATED) and len(payload) > 1:
                    self._reply(reply.status, kept, payload, cut=len(payload) // 2, reset=fault == RESET)
                else:
                    self._reply(reply.status, kept, payload)

            def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes, cut: int = -1,
                       reset: bool = False) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if cut < 0:
                    self.wfile.write(payload if self.command != "HEAD" else b"")
                    return
                self.wfile.write(payload[:cut])
                self.wfile.flush()
                if reset:
                    # SO_LINGER with a zero timeout makes close() send RST: the client sees a connection reset.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def reset_counts(self) -> None:
        with self._lock:
            self.forwarded = self.answered_bytes = 0
            self.operations.clear()
