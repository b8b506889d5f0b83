"""nbsd start-up failures: one line on stderr, ``nbsd: cannot start: <reason>``, exit status 1."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nbsclient import protocol as p
from nbsclient.connection import Connection
from nbsd.cli import main as nbsd_main
from tests.daemon_harness import ROOT, Daemon
from tests.os_faults import unprivileged

pytestmark = pytest.mark.timeout(120)


def serve(tmp_path: Path, *flags: str, **run: Any) -> str:
    """Start ``nbsd serve`` expecting it to refuse; returns the reason it printed."""
    args = ["--cache-dir", str(tmp_path / "cache"), "--local-root", str(tmp_path), *flags]
    if "--endpoint" not in flags and "--socket" not in flags:
        args += ["--socket", str(tmp_path / "nbsd.sock")]
    proc: subprocess.CompletedProcess[str] = subprocess.run(
        [sys.executable, "-m", "nbsd", "serve", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, **run)
    assert proc.returncode == 1, proc
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("nbsd: cannot start: "), proc.stderr
    return proc.stderr.removeprefix("nbsd: cannot start: ").strip()


def test_port_in_use(tmp_path: Path) -> None:
    assert nbsd_main(["keygen", "--dir", str(tmp_path / "keys"), "--name", "nbsd"]) == 0  # tcp takes CURVE keys
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        reason = serve(tmp_path, "--endpoint", f"tcp://127.0.0.1:{port}", "--curve-secret-key",
                       str(tmp_path / "keys" / "nbsd.key_secret"), "--curve-client-keys", str(tmp_path / "keys"))
    assert reason == f"cannot listen on tcp://127.0.0.1:{port}: Address already in use"


def test_socket_path_too_long(tmp_path: Path) -> None:
    path = f"/tmp/{'s' * 103}"  # 108 bytes
    assert serve(tmp_path, "--socket", path) == f"socket path {path} is 108 bytes long; the limit is 107"


def test_cache_dir_not_writable(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    assert serve(tmp_path, **unprivileged()) == f"cache directory {cache} is not writable: Permission denied"


def test_another_daemon_uses_the_cache_dir(nbsd_daemon: Daemon, tmp_path: Path) -> None:
    reason = serve(tmp_path, "--cache-dir", nbsd_daemon.cache_dir)
    assert reason == f"another nbsd (pid {nbsd_daemon.pid}) is using the cache directory {nbsd_daemon.cache_dir}"
    with Connection(nbsd_daemon.endpoint, timeout=5, retries=0) as conn:
        assert conn.request(p.HELLO, {})["pid"] == nbsd_daemon.pid
