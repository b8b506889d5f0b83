"""Runs a real nbsd process for tests and waits for its systemd READY=1 notification."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from nbsclient.connection import Connection
from nbsclient.protocol import STATS

ROOT = Path(__file__).resolve().parents[1]


class NotifyListener:
    """A datagram socket standing in for systemd's notification socket."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages: list[str] = []

    def wait_for(self, prefix: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        for message in self.messages:
            if message.startswith(prefix):
                return message
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            for line in data.splitlines():
                self.messages.append(line)
                if line.startswith(prefix):
                    return line
        raise TimeoutError(f"no {prefix!r} notification; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


class Daemon:
    """One nbsd process with private socket, cache and local root; restartable on the same paths."""

    def __init__(self, root: Path | None = None, cache_size: str = "256MiB", max_open_files: int = 64,
                 extra: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="nbsd-", dir="/tmp"))
        self.root = root or self.workdir / "stores"
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket = str(self.workdir / "s")
        self.endpoint = f"ipc://{self.socket}"
        self.cache_dir = self.workdir / "cache"
        self.args = ["--socket", self.socket, "--cache-dir", str(self.cache_dir), "--local-root", str(self.root),
                     "--cache-size", cache_size, "--max-open-files", str(max_open_files), *(extra or [])]
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.notify: NotifyListener | None = None
        self.log = self.workdir / "log"

    def start(self) -> Daemon:
        if self.notify is not None:
            self.notify.close()
            os.unlink(self.notify.path)
        self.notify = NotifyListener(str(self.workdir / "notify"))
        env = {**os.environ, "NOTIFY_SOCKET": self.notify.path, **self.env}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "nbsd", "serve", *self.args], cwd=ROOT, env=env,
                                         stdout=log, stderr=log)
        try:
            self.notify.wait_for("READY=1")
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"nbsd did not start:\n{self.log.read_text()}") from None
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> Daemon:
        self.kill()
        return self.start()

    def stats(self) -> dict[str, Any]:
        with Connection(self.endpoint, timeout=10, retries=1) as conn:
            return conn.request(STATS, {})  # type: ignore[no-any-return]

    def store_path(self, name: str) -> str:
        return str(self.root / name)

    def close(self) -> None:
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
        self.close()
