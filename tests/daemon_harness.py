"""Runs a real nbsd process for tests and waits for its systemd READY=1 notification."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import ClassVar

import zmq

from nbsd.runner import DaemonProcess

ROOT = Path(__file__).resolve().parents[1]


class NotifyListener:
    """A datagram socket standing in for systemd's notification socket, read as systemd reads it: always."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)  # so the reader notices close()
        self.messages: list[str] = []
        self._closed = False
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            with self._arrived:
                self.messages.extend(data.splitlines())
                self._arrived.notify_all()

    def wait_for(self, prefix: str, timeout: float = 20.0) -> str:
        with self._arrived:
            found = self._arrived.wait_for(
                lambda: next((m for m in self.messages if m.startswith(prefix)), None), timeout)
            if found is None:
                raise TimeoutError(f"no {prefix!r} notification; got {self.messages}")
            return found

    def close(self) -> None:
        self._closed = True
        self._reader.join(timeout=5)
        self.sock.close()


class Daemon(DaemonProcess):
    """nbsd with a private workdir, started under a stand-in systemd notify socket; restartable.

    A failing test shows the end of the log of every daemon it used: a ``with Daemon()`` block writes it to
    stderr as the failure leaves it, and conftest's report hook adds it for daemons still running (``live``).
    """

    live: ClassVar[set[Daemon]] = set()

    def __init__(self, cache_size: str = "256MiB", max_open_files: int = 64, extra: list[str] | None = None,
                 env: dict[str, str] | None = None, endpoint: str | None = None) -> None:
        super().__init__(tempfile.mkdtemp(prefix="nbsd-", dir="/tmp"), cache_size,
                         ["--max-open-files", str(max_open_files), *(extra or [])], env, endpoint)
        self.root = Path(self.stores)
        self.log = Path(self.log_path)
        self.notify: NotifyListener | None = None

    def start(self, timeout: float = 20.0) -> Daemon:
        """Start and wait for READY=1, which nbsd sends once its socket and cache are open."""
        if self.notify is not None:
            self.notify.close()
            os.unlink(self.notify.path)
        self.notify = NotifyListener(os.path.join(self.workdir, "notify"))
        env = {**os.environ, "NOTIFY_SOCKET": self.notify.path, **(self.env or {})}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "nbsd", "serve", *self.args], cwd=ROOT, env=env,
                                         stdout=log, stderr=log)
        try:
            self.notify.wait_for("READY=1", timeout)
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"nbsd did not start:\n{self.log.read_text()}") from None
        Daemon.live.add(self)
        return self

    def restart(self) -> Daemon:
        self.kill()
        return self.start()

    def store_path(self, name: str) -> str:
        return os.path.join(self.stores, name)

    def log_tail(self, lines: int = 80) -> str:
        """The last ``lines`` lines of the daemon's log (of every start), for a failure report."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as err:
            return f"(no log: {err})"

    def close(self) -> None:
        Daemon.live.discard(self)
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop()
            except subprocess.TimeoutExpired:
                self.kill()
        if self.notify is not None:
            self.notify.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if value is not None:
            sys.stderr.write(f"--- end of the nbsd log {self.log} ---\n{self.log_tail()}\n")
        self.close()


def raw_dealer(endpoint: str, timeout_ms: int) -> tuple[zmq.Context[zmq.Socket[bytes]], zmq.Socket[bytes]]:
    """A bare DEALER socket on ``endpoint`` (its own context), for hand-made requests a real client never sends."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.connect(endpoint)
    return ctx, sock
