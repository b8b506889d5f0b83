import os
import socket
import time
from pathlib import Path

import pytest

from nbsd.sd_notify import Watchdog, notify


def test_notify_without_systemd_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False


def test_notify_sends_a_datagram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert notify("READY=1")
        assert sock.recv(100) == b"READY=1"


def test_notify_abstract_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"nbsd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("STATUS=hello")
        assert sock.recv(100) == b"STATUS=hello"


def test_watchdog_interval_and_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "wd")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(1)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        monkeypatch.setenv("WATCHDOG_USEC", "2000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        dog = Watchdog()
        assert dog.interval == 1.0
        dog.tick()
        dog.tick()  # too soon for a second ping
        assert sock.recv(100) == b"WATCHDOG=1"
        with pytest.raises(TimeoutError):
            sock.recv(100)
        monkeypatch.setenv("WATCHDOG_PID", "1")
        assert Watchdog().interval is None
        monkeypatch.delenv("WATCHDOG_USEC")
        assert Watchdog().interval is None


def test_notify_never_stalls_on_a_manager_that_does_not_read(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "unread")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        sent = [notify(f"STATUS={i}", timeout=0) for i in range(5000)]  # far more than the queue holds
        assert sent[0] and not all(sent)
        started = time.monotonic()
        assert notify("STOPPING=1", timeout=0.2) is False  # waited for room, then gave up
        assert time.monotonic() - started < 5
        assert sock.recv(100) == b"STATUS=0"


def test_notify_to_a_vanished_socket_fails_softly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert notify("READY=1") is False
