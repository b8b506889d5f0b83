"""Start and stop an nbsd process from Python (used by ``nbsd demo`` and the benchmarks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import Any

from nbsclient.connection import Connection
from nbsclient.protocol import STATS, DaemonUnavailableError


class DaemonProcess:
    """An nbsd child process on a private socket (or ``endpoint``), cache and local root under ``workdir``."""

    def __init__(self, workdir: str | None = None, cache_size: str = "1GiB", extra: list[str] | None = None,
                 env: dict[str, str] | None = None, endpoint: str | None = None) -> None:
        self.workdir = workdir or tempfile.mkdtemp(prefix="nbsd-")
        self.stores = os.path.join(self.workdir, "stores")
        os.makedirs(self.stores, exist_ok=True)
        self.socket = os.path.join(self.workdir, "nbsd.sock")
        self.endpoint = endpoint or f"ipc://{self.socket}"
        self.cache_dir = os.path.join(self.workdir, "cache")
        self.log_path = os.path.join(self.workdir, "nbsd.log")
        self.args = ["--endpoint", self.endpoint, "--cache-dir", self.cache_dir, "--local-root", self.stores,
                     "--cache-size", cache_size, *(extra or [])]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> DaemonProcess:
        """Start the daemon and wait until it answers."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "nbsd", "serve", *self.args],
                                         stdout=log, stderr=log, env={**os.environ, **(self.env or {})})
        deadline = time.monotonic() + timeout
        with Connection(self.endpoint, connect_timeout=1.0) as conn:
            while True:
                try:
                    conn.hello()
                    return self
                except DaemonUnavailableError:  # no socket yet, or no answer yet
                    if time.monotonic() >= deadline or self.proc.poll() is not None:
                        break
                    time.sleep(0.05)
        self.kill()
        with open(self.log_path) as log:
            raise RuntimeError(f"nbsd did not start:\n{log.read()}") from None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stats(self) -> Any:
        """The daemon's ``stats`` reply (what ``nbsd status --json`` shows)."""
        with Connection(self.endpoint, timeout=10, retries=1) as conn:
            return conn.request(STATS, {})

    def stop(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop()
            except subprocess.TimeoutExpired:
                self.kill()
