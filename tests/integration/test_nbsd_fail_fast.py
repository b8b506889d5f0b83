"""Clients that cannot reach a daemon fail fast and say why: no socket, no permission, no answer."""

from __future__ import annotations

import grp
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nbsclient
from tests.daemon_harness import ROOT, Daemon
from tests.os_faults import unprivileged

pytestmark = pytest.mark.timeout(180)

GREET_AND_DIE = """
import os, sys, zmq
sock = zmq.Context().socket(zmq.ROUTER)
sock.bind(sys.argv[1])
print("listening", flush=True)
sock.recv_multipart()
os._exit(0)  # as a killed daemon: no reply, and the socket file left behind
"""

SILENT_DAEMON = """
import sys, time, zmq
sock = zmq.Context().socket(zmq.ROUTER)
sock.bind(sys.argv[1])
print("listening", flush=True)
time.sleep(600)
"""


def _client(endpoint: str, spec: str, env: dict[str, str] | None = None, **run: object) -> tuple[
        subprocess.CompletedProcess[str], float]:
    """``nbsclient.connect`` in a process of its own; its outcome and how long it took."""
    code = ("import sys, nbsclient\n"
            "try:\n    nbsclient.connect(sys.argv[1], sys.argv[2])\n"
            "except nbsclient.DaemonUnavailableError as err:\n"
            "    print(type(err).__name__, err, sep='|'); sys.exit(3)\n")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code, spec, endpoint], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})}, **run)  # type: ignore[call-overload]
    return proc, time.monotonic() - started


def test_missing_socket_fails_at_once_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.sock"
    started = time.monotonic()
    with pytest.raises(nbsclient.DaemonNotRunningError, match=f"no nbsd socket at {path}"):
        nbsclient.connect(str(tmp_path / "db"), f"ipc://{path}")
    assert time.monotonic() - started < 5  # the design: under a second (a 0.5 s grace for a daemon's rebind)
    noms = subprocess.run([sys.executable, "-m", "nbs.noms.cli", "--nbsd", f"ipc://{path}", "ds", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert noms.returncode == 1 and f"no nbsd socket at {path}" in noms.stderr
    status = subprocess.run([sys.executable, "-m", "nbsd", "status", "--socket", str(path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 1 and status.stderr.startswith(f"nbsd: no nbsd socket at {path}")


def test_stale_socket_is_reported_after_the_connect_timeout(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as left:
        left.bind(str(path))  # a socket file nobody listens on, as a killed daemon leaves it
    proc, took = _client(f"ipc://{path}", str(tmp_path / "db"), {"NBSD_CONNECT_TIMEOUT": "1"})
    assert proc.returncode == 3 and proc.stdout.startswith(f"StaleSocketError|no nbsd listens on {path}")
    assert took < 30


def test_permission_denied_names_the_group(nbsd_daemon: Daemon) -> None:
    group = next(g for g in grp.getgrall() if g.gr_gid != os.getgid())
    os.chown(nbsd_daemon.socket, -1, group.gr_gid)
    os.chmod(nbsd_daemon.socket, 0o060)  # group only: this user (owner, but without root's bypass) may not connect
    try:
        proc, took = _client(nbsd_daemon.endpoint, nbsd_daemon.store_path("denied"), **unprivileged())
    finally:
        os.chmod(nbsd_daemon.socket, 0o660)
        os.chown(nbsd_daemon.socket, -1, os.getgid())
    assert proc.returncode == 3, proc
    kind, message = proc.stdout.strip().split("|", 1)
    assert kind == "DaemonPermissionError" and took < 30
    assert message.startswith(f"permission denied on the nbsd socket {nbsd_daemon.socket}")
    assert f"add it to group {group.gr_name}" in message


def test_a_daemon_that_never_answers_costs_the_connect_timeout(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path / 'silent.sock'}"
    silent = subprocess.Popen([sys.executable, "-c", SILENT_DAEMON, endpoint], stdout=subprocess.PIPE, text=True)
    try:
        assert silent.stdout is not None and silent.stdout.readline() == "listening\n"
        proc, took = _client(endpoint, str(tmp_path / "db"), {"NBSD_CONNECT_TIMEOUT": "1.5"})
        assert proc.returncode == 3 and took < 30
        assert proc.stdout.startswith(f"DaemonNotAnsweringError|nbsd at {endpoint} did not answer within 1.5s")
        started = time.monotonic()
        with pytest.raises(nbsclient.DaemonNotAnsweringError, match=endpoint):
            nbsclient.connect(str(tmp_path / "db"), endpoint)  # the default wait: seconds, not minutes
        assert time.monotonic() - started < 30
        with pytest.raises(nbsclient.DaemonNotAnsweringError, match="within 0.5s"):
            nbsclient.connect(str(tmp_path / "db"), endpoint, connect_timeout=0.5)
    finally:
        silent.kill()
        silent.wait()


def test_a_daemon_restarted_during_the_greeting_is_waited_for(tmp_path: Path) -> None:
    """A worker starting while the daemon is restarted after a crash: its greeting dies with the old daemon, the
    socket is stale for a while, and the new daemon answers within ``connect_timeout``."""
    socket_path = tmp_path / "restarting.sock"
    endpoint = f"ipc://{socket_path}"
    old = subprocess.Popen([sys.executable, "-c", GREET_AND_DIE, endpoint], stdout=subprocess.PIPE, text=True)
    assert old.stdout is not None and old.stdout.readline() == "listening\n"
    new = Daemon(endpoint=endpoint)
    code = "import sys, nbsclient\nnbsclient.connect(sys.argv[1], sys.argv[2], connect_timeout=60).close()\n"
    client = subprocess.Popen([sys.executable, "-c", code, new.store_path("db"), endpoint], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert old.wait(60) == 0  # it took the greeting and died
        time.sleep(1.5)  # the client sees the disconnect (within a second) while the socket is stale
        with new:
            _, errors = client.communicate(timeout=60)
            assert client.returncode == 0, errors
    finally:
        client.kill()
        old.kill()


def test_relative_paths_are_the_callers(nbsd_daemon: Daemon) -> None:
    """A relative path names a store under the caller's working directory, not the daemon's."""
    code = "import nbsclient, sys; s = nbsclient.connect('bobdb', sys.argv[1]); s.commit(s.put(b'x'), s.root())"
    proc = subprocess.run([sys.executable, "-c", code, nbsd_daemon.endpoint], cwd=nbsd_daemon.stores,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert os.path.isfile(os.path.join(nbsd_daemon.stores, "bobdb", "manifest"))
    outside = subprocess.run([sys.executable, "-c", code, nbsd_daemon.endpoint], cwd="/",
                             capture_output=True, text=True, timeout=60)
    assert "ForbiddenError: local store '/bobdb' is outside the daemon's local roots" in outside.stderr
    assert "refused open from client " in nbsd_daemon.log.read_text()  # refusals are logged, with the rule
